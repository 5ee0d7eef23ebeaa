"""What a data file holds and where: the layout of its arrays, and what is wrong with a file.

A layout maps each array of a file (an NPY file, or each ``.npy`` member of an NPZ archive) to
its shape, dtype, order and the file offset of its first row, read from the NPY headers and,
for an archive, the zip headers; compressed members are decompressed only as far as their
header. Layouts are cached per file, keyed by its identity on disk. :func:`_open_arrays` opens
the files of one example and checks that the arrays chosen exist and have the same number of
rows; :func:`_keep` applies the short-file policy. A file that cannot be read as asked raises
:class:`DataFileError`; a short one skipped warns with :class:`ShortFileWarning`.

Files are untrusted input, so nothing a header claims is believed before it is checked
against the bytes that are really there, and every read is bounded before it is made:

* only regular files are opened (a FIFO would block the reader, a device never ends), and
  they are opened without blocking;
* an NPY header longer than :data:`MAX_HEADER_BYTES` is refused before it is read, and the
  one read is parsed as a Python literal, checked to be numpy's dict of ``descr``,
  ``fortran_order`` and ``shape``, with non-negative dimensions (at most :data:`MAX_NDIM`),
  a dtype without Python objects (they would need pickle), of items of at least a byte;
* the data a header's shape needs must fit in the file (or the member) after the header,
  and in an address space (``sys.maxsize`` bytes);
* a zip directory larger than :data:`MAX_DIRECTORY_BYTES` is refused before it is read;
  members are read only if stored or deflated, and a deflated member may not claim more
  bytes than deflate can produce from its compressed size, nor more than
  :data:`MAX_PACKED_BYTES` (it is decompressed whole when an activation starts).
"""

from __future__ import annotations

import ast
import math
import os
import re
import stat
import struct
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ..exceptions import DataError

PathLike = str | os.PathLike[str]

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NONBLOCK", 0)  # opening a FIFO for reading would wait for a writer
)

#: NPY headers longer than this are refused before they are read. numpy itself refuses those
#: over 10,000 bytes by default; ``np.save`` writes a few hundred bytes, more only for a
#: structured dtype of thousands of fields.
MAX_HEADER_BYTES = 64 * 1024

#: The most dimensions an array read may have (numpy 1.x cannot make more).
MAX_NDIM = 32

#: A zip directory (one entry of about 60 bytes per member) larger than this is refused
#: before it is read: about 17,000 members, where numpy writes one per array.
MAX_DIRECTORY_BYTES = 1024 * 1024

#: A compressed member is decompressed whole when an activation starts, into memory held
#: until it ends; a member whose array is larger than this is refused.
MAX_PACKED_BYTES = 1024**3

#: The most bytes deflate can produce per compressed byte (a run of 258-byte matches).
_DEFLATE_RATIO = 1032


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


def _size(nbytes: int) -> str:
    """``nbytes`` for a message: ``"900 bytes"``, ``"14.6 TiB"``."""
    if nbytes < 1024:
        return f"{nbytes} bytes"
    value, units = nbytes / 1024, ["KiB", "MiB", "GiB", "TiB", "PiB"]
    while value >= 1024 and len(units) > 1:
        value /= 1024
        units.pop(0)
    return f"{value:.1f} {units[0]}"


def _brief(value: Any) -> str:
    """The repr of a value from a file, cut short: it may be as long as a header."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _os_problem(exc: OSError) -> str:
    return exc.strerror or str(exc)


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _open(path: str) -> int:
    """Open a regular file for reading; anything else (or an OS error) is a DataFileError."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise DataFileError(path, _os_problem(exc)) from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        os.close(fd)
        raise DataFileError(path, _os_problem(exc)) from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "a special file")
        raise DataFileError(path, f"not a regular file ({kind})")
    return fd  # still O_NONBLOCK, which does nothing to the reads of a regular file


# ------------------------------------------------------------------------------ NPY headers
class _Array(NamedTuple):
    """Where one array lives in a file, and its type."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    offset: int  # of its first row: in the file, or in the member's data when `packed`
    member: str  # its name inside an NPZ archive ("" for an NPY file)
    row_bytes: int
    fortran: bool  # stored in Fortran (column-major) order; never for 0-d or 1-d arrays
    packed: bool  # a compressed member: it must be decompressed whole


_MAGIC = b"\x93NUMPY"
_VERSIONS = {1: "<H", 2: "<I", 3: "<I"}  # major version: the header length's format
_HEADER_KEYS = {"descr", "fortran_order", "shape"}
#: Python 2 wrote shapes as ``(10L, 3L)``: the ``L`` after a digit, outside a string.
_PY2_LONG = re.compile(r"""'[^']*'|"[^"]*"|(\d)L\b""")


def _literal(text: str, major: int) -> Any:
    try:
        return ast.literal_eval(text)
    except SyntaxError:
        if major == 3:
            raise
        return ast.literal_eval(_PY2_LONG.sub(lambda m: m.group(1) or m.group(0), text))


def _npy_header(fp: Any, path: str, where: str) -> tuple[tuple[int, ...], np.dtype[Any], bool]:
    """Read and check the NPY header at ``fp``'s position: shape, dtype, Fortran order.

    At most :data:`MAX_HEADER_BYTES` (and 12 more) are read, and then checked before use. An
    OS error reading it is left to the caller.
    """

    def bad(why: str) -> DataFileError:
        return DataFileError(path, f"{where} is not a valid NPY array ({why})")

    prefix = fp.read(8)
    if not prefix or prefix[:6] != _MAGIC[: len(prefix)]:
        raise bad("no NPY magic string")
    if len(prefix) < 8:
        raise bad("the file ends in its header")
    major, minor = prefix[6], prefix[7]
    if major not in _VERSIONS or minor != 0:
        raise bad(f"unknown format version {major}.{minor}")
    length_format = _VERSIONS[major]
    field = fp.read(struct.calcsize(length_format))
    if len(field) < struct.calcsize(length_format):
        raise bad("the file ends in its header")
    (length,) = struct.unpack(length_format, field)
    if length > MAX_HEADER_BYTES:
        raise bad(f"a header of {_size(length)}, more than the {_size(MAX_HEADER_BYTES)} allowed")
    raw = fp.read(length)
    if len(raw) < length:
        raise bad(f"the file ends in its header: {len(raw)} of its {length} bytes are there")
    # A literal nested too deeply can exhaust the parser's stack (MemoryError before 3.9).
    try:
        header = _literal(raw.decode("utf-8" if major == 3 else "latin-1"), major)
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
        raise bad("its header is not a Python literal") from None
    if not isinstance(header, dict) or set(header) != _HEADER_KEYS:
        raise bad("its header is not a dict of 'descr', 'fortran_order' and 'shape'")
    shape, fortran = header["shape"], header["fortran_order"]
    if not isinstance(shape, tuple) or not all(type(d) is int and d >= 0 for d in shape):
        raise bad(f"shape {_brief(shape)}: expected a tuple of non-negative integers")
    if len(shape) > MAX_NDIM:
        raise bad(f"{len(shape)} dimensions, more than {MAX_NDIM}")
    if type(fortran) is not bool:
        raise bad(f"fortran_order {_brief(fortran)}: expected True or False")
    try:
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    except Exception:  # whatever numpy makes of a descr read from a file
        raise bad(f"descr {_brief(header['descr'])} is not a numpy dtype") from None
    if dtype.hasobject:
        raise DataFileError(
            path,
            f"{where} holds Python objects (dtype {dtype}): reading them needs pickle, "
            "which is refused",
        )
    if dtype.subdtype is not None or dtype.itemsize == 0:
        raise bad(f"dtype {dtype}: np.save writes neither subarray nor 0-byte item types")
    if math.prod(d for d in shape if d) * dtype.itemsize > sys.maxsize:
        raise bad(f"shape {_brief(shape)} of {dtype} is larger than any array can be")
    return shape, dtype, fortran and len(shape) > 1


def _array(path: str, where: str, fp: Any, member: str, end: int, packed: bool = False) -> _Array:
    """The layout of the NPY array at ``fp``'s position, whose data must end by ``end``."""
    shape, dtype, fortran = _npy_header(fp, path, where)
    offset = fp.tell()
    need = math.prod(shape) * dtype.itemsize
    if offset + need > end:
        there = _size(max(end - offset, 0))
        raise DataFileError(
            path, f"{where} is truncated: its data needs {_size(need)}, there are {there}"
        )
    if packed and need > MAX_PACKED_BYTES:
        raise DataFileError(
            path,
            f"{where} is compressed and would take {_size(need)} decompressed, more than the "
            f"{_size(MAX_PACKED_BYTES)} allowed for an array read whole (save it with np.savez, "
            "uncompressed, to read it window by window)",
        )
    row_bytes = math.prod(shape[1:]) * dtype.itemsize
    return _Array(shape, dtype, offset, member, row_bytes, fortran, packed)


# ------------------------------------------------------------------------------ NPZ archives
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


class _Bounded:
    """A file for ``zipfile``, whose reads may not be larger than ``limit`` bytes.

    ``zipfile`` reads the whole directory of an archive at once, as large as the archive
    says, and then makes an object per entry: the limit bounds both before anything is read.
    """

    def __init__(self, fp: Any, size: int, path: str, limit: int | None) -> None:
        self.fp, self.size, self.path, self.limit = fp, size, path, limit
        self.seek, self.tell = fp.seek, fp.tell

    def seekable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if self.limit is not None:
            want = self.size - self.fp.tell() if n is None or n < 0 else n
            if want > self.limit:
                raise DataFileError(
                    self.path,
                    f"not a valid NPZ (zip) archive (its directory claims {_size(want)}, more "
                    f"than the {_size(self.limit)} allowed)",
                )
        return self.fp.read(n)


def _open_zip(fp: Any, size: int, path: str) -> Any:
    """The zip archive of ``size`` bytes at ``fp``, its directory read within the limit."""
    import zipfile  # here: it costs milliseconds to import, and only NPZ files need it

    bounded = _Bounded(fp, size, path, MAX_DIRECTORY_BYTES)
    try:
        archive = zipfile.ZipFile(bounded)
    except _zip_errors() as exc:
        raise DataFileError(path, f"not a valid NPZ (zip) archive ({exc})") from None
    bounded.limit = None
    return archive


def _npz_layout(fp: Any, size: int, path: str) -> dict[str, _Array]:
    """The arrays of an NPZ archive; stored (uncompressed) members are located in the file."""
    import zipfile

    errors = _zip_errors()
    archive = _open_zip(fp, size, path)
    arrays = {}
    with archive:
        for info in archive.infolist():
            name = info.filename
            if not name.endswith(".npy"):
                continue
            where = f"member {name!r}"
            if info.flag_bits & 1:
                raise DataFileError(path, f"{where} cannot be read (it is encrypted)")
            if info.compress_type == zipfile.ZIP_STORED:
                if not 0 <= info.header_offset < size:
                    raise DataFileError(path, f"{where} has a corrupt zip header")
                fp.seek(info.header_offset)
                magic, name_len, extra_len = _LOCAL_HEADER.unpack(fp.read(30).ljust(30))
                if magic != b"PK\x03\x04":
                    raise DataFileError(path, f"{where} has a corrupt zip header")
                start = info.header_offset + 30 + name_len + extra_len
                fp.seek(start)
                found = _array(path, where, fp, name, min(start + info.file_size, size))
            elif info.compress_type == zipfile.ZIP_DEFLATED:
                if info.compress_size > size - info.header_offset:
                    raise DataFileError(path, f"{where} runs past the end of the archive")
                if info.file_size > info.compress_size * _DEFLATE_RATIO + 1024:
                    raise DataFileError(
                        path,
                        f"{where} is corrupt: {_size(info.compress_size)} deflated cannot "
                        f"hold the {_size(info.file_size)} it claims",
                    )
                try:
                    with archive.open(info) as stream:
                        found = _array(path, where, stream, name, info.file_size, packed=True)
                except errors as exc:
                    raise DataFileError(path, f"{where} cannot be read ({exc})") from None
            else:
                raise DataFileError(
                    path,
                    f"{where} cannot be read (zip compression method {info.compress_type}: "
                    "only stored and deflated members are read)",
                )
            arrays[name[:-4]] = found
    if not arrays:
        raise DataFileError(path, "the archive holds no arrays (no .npy members)")
    return arrays


# ------------------------------------------------------------------------------ the cache
#: Layouts of the files read so far, keyed by path and identity (device, inode, size, mtime),
#: so that a file changed on disk is read again. Bounded by files and by the arrays they
#: hold (an archive may hold thousands): the oldest quarter goes when either is full.
_LAYOUTS: dict[tuple[Any, ...], dict[str, _Array]] = {}
_LAYOUT_CACHE_SIZE = 16384
_LAYOUT_CACHE_ARRAYS = 65536
_cached_arrays = 0  # about: tests clear _LAYOUTS, and the next eviction counts again


def _remember(key: tuple[Any, ...], found: dict[str, _Array]) -> None:
    global _cached_arrays
    if len(_LAYOUTS) >= _LAYOUT_CACHE_SIZE or _cached_arrays + len(found) > _LAYOUT_CACHE_ARRAYS:
        for stale in list(_LAYOUTS)[: max(1, len(_LAYOUTS) // 4)]:
            _LAYOUTS.pop(stale, None)
        _cached_arrays = sum(map(len, list(_LAYOUTS.values())))
    _LAYOUTS[key] = found
    _cached_arrays += len(found)


def _layout(fd: int, path: str, npz: bool) -> dict[str, _Array]:
    st = os.fstat(fd)
    key = (path, npz, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    found = _LAYOUTS.get(key)
    if found is None:
        with open(fd, "rb", closefd=False) as fp:
            try:
                if npz:
                    found = _npz_layout(fp, st.st_size, path)
                else:
                    found = {"": _array(path, "the file", fp, "", st.st_size)}
            except OSError as exc:
                raise DataFileError(path, f"cannot be read ({_os_problem(exc)})") from None
        _remember(key, found)
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
        fd = _open(path)
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
