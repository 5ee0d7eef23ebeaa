"""Data files as untrusted input: opening them, the errors they raise, and the limits (private).

Only regular files are opened (a FIFO would block the reader, a device never ends), without
blocking; an OS error becomes a :class:`DataFileError` naming the file. The limits on what a
file's headers may claim are here, used by :mod:`._npy` and :mod:`._zip`.
"""

from __future__ import annotations

import os
import stat
from typing import Any

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
