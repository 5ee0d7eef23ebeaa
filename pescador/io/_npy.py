"""NPY headers: read, checked against the file, and turned into an array's layout (private)."""

from __future__ import annotations

import ast
import math
import re
import struct
import sys
from typing import Any, NamedTuple

import numpy as np

from . import _files
from ._files import MAX_HEADER_BYTES, MAX_NDIM, DataFileError, _brief, _size


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
    limit = _files.MAX_PACKED_BYTES  # looked up at each call: tests lower it
    if packed and need > limit:
        raise DataFileError(
            path,
            f"{where} is compressed and would take {_size(need)} decompressed, more than the "
            f"{_size(limit)} allowed for an array read whole (save it with np.savez, "
            "uncompressed, to read it window by window)",
        )
    row_bytes = math.prod(shape[1:]) * dtype.itemsize
    return _Array(shape, dtype, offset, member, row_bytes, fortran, packed)
