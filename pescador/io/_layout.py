"""What a data file holds and where: the layout of its arrays, and what is wrong with a file.

A layout maps each array of a file (an NPY file, or each ``.npy`` member of an NPZ archive) to
its shape, dtype and the file offset of its first row, read from the NPY headers and, for an
archive, the zip headers; compressed members are decompressed only as far as their header.
Layouts are cached per file, keyed by its identity on disk. :func:`_open_arrays` opens the
files of one example and checks that the arrays chosen exist and have the same number of rows;
:func:`_keep` applies the short-file policy. A file that cannot be read as asked raises
:class:`DataFileError`; a short one skipped warns with :class:`ShortFileWarning`.
"""

from __future__ import annotations

import ast
import math
import os
import struct
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ..exceptions import DataError

PathLike = str | os.PathLike[str]

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


class DataFileError(DataError):
    """A data file cannot be read as asked: it is missing, corrupt, or not shaped as expected.

    The message starts with the file's path and says what is wrong; both are also attributes.

    Attributes
    ----------
    path : str
        The file.
    problem : str
        What is wrong with it.

    Examples
    --------
    >>> err = DataFileError("songs/a.npz", "no array named 'Z' (it has: X, Y)")
    >>> print(err)
    songs/a.npz: no array named 'Z' (it has: X, Y)
    """

    def __init__(self, path: PathLike, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple[type[DataFileError], tuple[str, str]]:
        return (type(self), (self.path, self.problem))


class ShortFileWarning(UserWarning):
    """A file has fewer rows than one window and is skipped (``short="skip"``)."""


# ------------------------------------------------------------------------------ file layout
class _Array(NamedTuple):
    """Where one array lives in a file, and its type."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    offset: int  # of its first row in the file; -1 when it must be read whole with numpy
    member: str  # its name inside an NPZ archive ("" for an NPY file)
    row_bytes: int


def _npy_header(fp: Any, where: str) -> tuple[tuple[int, ...], np.dtype[Any], bool]:
    """Read an NPY header at ``fp``'s position: shape, dtype, and whether rows are in place.

    Rows can be read in place when the array is in C order and holds no Python objects.
    """
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(fp)
        else:  # (3, 0): as 2.0, with a UTF-8 header
            (size,) = struct.unpack("<I", fp.read(4))
            header = ast.literal_eval(fp.read(size).decode("utf-8"))
            shape, fortran = header["shape"], header["fortran_order"]
            dtype = fmt.descr_to_dtype(header["descr"])
        shape = tuple(int(d) for d in shape)
    except (ValueError, TypeError, KeyError, OSError, EOFError, SyntaxError, struct.error) as exc:
        raise ValueError(f"{where} is not a valid NPY array ({exc})") from None
    return shape, dtype, not (fortran or dtype.hasobject)


def _array(path: str, where: str, fp: Any, member: str, end: int) -> _Array:
    """The layout of the NPY array at ``fp``'s position, whose data must end by ``end``."""
    try:
        shape, dtype, in_place = _npy_header(fp, where)
    except ValueError as exc:
        raise DataFileError(path, str(exc)) from None
    offset = fp.tell()
    need = math.prod(shape) * dtype.itemsize
    if in_place and offset + need > end:
        raise DataFileError(
            path, f"{where} is truncated: its data needs {need} bytes, there are {end - offset}"
        )
    row_bytes = math.prod(shape[1:]) * dtype.itemsize
    return _Array(shape, dtype, offset if in_place else -1, member, row_bytes)


_LOCAL_HEADER = struct.Struct("<4s22xHH")


def _zip_errors() -> tuple[type[BaseException], ...]:
    """What reading a bad archive can raise: corrupt, truncated, encrypted, exotic."""
    import zipfile
    import zlib

    return (
        zipfile.BadZipFile,
        zlib.error,
        OSError,
        EOFError,
        ValueError,
        RuntimeError,  # encrypted
        NotImplementedError,  # a compression method zipfile does not support
        struct.error,
    )


def _npz_layout(fp: Any, size: int, path: str) -> dict[str, _Array]:
    """The arrays of an NPZ archive; stored (uncompressed) members are located in the file."""
    import zipfile  # here: it costs milliseconds to import, and only NPZ files need it

    errors = _zip_errors()
    try:
        archive = zipfile.ZipFile(fp)
    except errors as exc:
        raise DataFileError(path, f"not a valid NPZ (zip) archive ({exc})") from None
    arrays = {}
    with archive:
        for info in archive.infolist():
            name = info.filename
            if not name.endswith(".npy"):
                continue
            where = f"member {name!r}"
            if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 1:
                fp.seek(info.header_offset)
                magic, name_len, extra_len = _LOCAL_HEADER.unpack(fp.read(30).ljust(30))
                if magic != b"PK\x03\x04":
                    raise DataFileError(path, f"{where} has a corrupt zip header")
                start = info.header_offset + 30 + name_len + extra_len
                fp.seek(start)
                found = _array(path, where, fp, name, min(start + info.file_size, size))
            else:  # compressed: only its header is decompressed here
                try:
                    with archive.open(info) as stream:
                        found = _array(path, where, stream, name, info.file_size)
                    found = found._replace(offset=-1)
                except errors as exc:
                    raise DataFileError(path, f"{where} cannot be read ({exc})") from None
            arrays[name[:-4]] = found
    if not arrays:
        raise DataFileError(path, "the archive holds no arrays (no .npy members)")
    return arrays


#: Layouts of the files read so far, keyed by path and identity (device, inode, size, mtime),
#: so that a file changed on disk is read again. Bounded: the oldest quarter goes when full.
_LAYOUTS: dict[tuple[Any, ...], dict[str, _Array]] = {}
_LAYOUT_CACHE_SIZE = 16384


def _layout(fd: int, path: str, npz: bool) -> dict[str, _Array]:
    st = os.fstat(fd)
    key = (path, npz, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    found = _LAYOUTS.get(key)
    if found is None:
        with open(fd, "rb", closefd=False) as fp:
            if npz:
                found = _npz_layout(fp, st.st_size, path)
            else:
                found = {"": _array(path, "the file", fp, "", st.st_size)}
        if len(_LAYOUTS) >= _LAYOUT_CACHE_SIZE:
            for stale in list(_LAYOUTS)[: _LAYOUT_CACHE_SIZE // 4]:
                _LAYOUTS.pop(stale, None)
        _LAYOUTS[key] = found
    return found


# ------------------------------------------------------------------------------ an example
def _open_arrays(
    files: Sequence[tuple[str, str]], keys: Sequence[str] | None, fds: list[int]
) -> tuple[list[tuple[str, str, _Array, int]], int]:
    """Open the files of one example: the chosen arrays as (key, path, layout, fd), and rows.

    ``files`` is ``[(path, "")]`` for an NPZ archive (its arrays are its members), or
    ``[(path, key), ...]`` for NPY files. Each descriptor opened is appended to ``fds``.
    """
    chosen = []
    for path, key in files:
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            raise DataFileError(path, exc.strerror or str(exc)) from None
        fds.append(fd)
        arrays = _layout(fd, path, not key)
        if key:
            chosen.append((key, path, arrays[""], fd))
            continue
        for name in arrays if keys is None else keys:
            if name not in arrays:
                have = ", ".join(map(str, arrays))
                raise DataFileError(path, f"no array named {name!r} (it has: {have})")
            chosen.append((name, path, arrays[name], fd))
    rows = -1
    for key, path, info, _ in chosen:
        if not info.shape:
            raise DataFileError(path, f"array {key!r} is 0-dimensional: it has no rows to window")
        if rows < 0:
            rows = info.shape[0]
        elif info.shape[0] != rows:
            listed = ", ".join(f"{k} has {a.shape[0]}" for k, _, a, _ in chosen)
            raise DataFileError(path, f"arrays have different lengths: {listed} rows")
    return chosen, rows


def _keep(path: str, rows: int, n: int, short: str) -> bool:
    """Whether a file of ``rows`` rows gives windows of ``n``; if not, raise or warn."""
    if rows >= n:
        return True
    problem = f"{rows} rows, fewer than one window of {n}"
    if short == "error":
        raise DataFileError(path, problem)
    warnings.warn(f"{path}: {problem}; skipped", ShortFileWarning, stacklevel=4)
    return False
