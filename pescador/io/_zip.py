"""NPZ archives: their directory read within limits, and the layout of their members (private)."""

from __future__ import annotations

import struct
from typing import Any

from ._files import _DEFLATE_RATIO, MAX_DIRECTORY_BYTES, DataFileError, _size
from ._npy import _Array, _array

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
