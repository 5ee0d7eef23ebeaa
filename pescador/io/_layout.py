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

import os
import warnings
from collections.abc import Sequence
from typing import Any

from ._files import (
    MAX_DIRECTORY_BYTES,
    MAX_HEADER_BYTES,
    MAX_NDIM,
    MAX_PACKED_BYTES,
    DataFileError,
    PathLike,
    ShortFileWarning,
    _open,
    _os_problem,
)
from ._npy import _Array, _array
from ._zip import _npz_layout, _open_zip, _zip_errors

__all__ = [
    "MAX_DIRECTORY_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_NDIM",
    "MAX_PACKED_BYTES",
    "DataFileError",
    "PathLike",
    "ShortFileWarning",
    "_Array",
    "_keep",
    "_open_arrays",
    "_open_zip",
    "_os_problem",
    "_zip_errors",
]

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
