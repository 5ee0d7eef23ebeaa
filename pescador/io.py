"""Sample contiguous windows of rows from array files on disk: NPZ archives and NPY files.

The main job of pescador: a corpus too large for memory, stored as one file per example (a song,
a recording, a document), each holding arrays of equal length (features ``X``, labels ``Y``).
Each file becomes a stream of random windows of ``n`` consecutive rows; a
:class:`~pescador.StochasticMux` keeps a few files open at a time and mixes their windows:

>>> import numpy as np, pescador, pescador.io, tempfile, os
>>> corpus = tempfile.TemporaryDirectory()
>>> for k in range(4):
...     X, Y = np.ones((50, 8), np.float32), np.arange(50)
...     np.savez(os.path.join(corpus.name, f"song{k}.npz"), X=X, Y=Y)
>>> streams = pescador.io.npz_streamers(corpus.name, 16)
>>> mux = pescador.StochasticMux(streams, n_active=2, rate=8, random_state=0)
>>> batches = pescador.buffer_stream(mux, 4)
>>> batch = next(batches)
>>> batch["X"].shape, batch["Y"].shape
((4, 16, 8), (4, 16))
>>> bool((np.diff(batch["Y"], axis=1) == 1).all())  # each window is 16 consecutive rows
True
>>> batches.close()
>>> corpus.cleanup()

Files are opened at an iterator's first ``next`` and closed when it ends, is closed or is
dropped, so only the active files hold resources. Windows are new arrays (copies): nothing of
a file stays pinned once its activation is over.

Which files the streamers read, and how:

==========================  ===============================================================
``npz_windows(path, n)``    one ``.npz`` archive (``np.savez`` / ``np.savez_compressed``)
``npy_windows(files, n)``   ``.npy`` files, one per array: ``{"X": "a.X.npy", ...}``
``npz_streamers(src, n)``   a Streamer per ``.npz`` file of a directory (or a list of paths)
``npy_streamers(src, n)``   a Streamer per example of ``<example>.<key>.npy`` files
==========================  ===============================================================
"""

from __future__ import annotations

import ast
import math
import numbers
import os
import struct
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from . import _state
from ._rng import RandomStateLike, Seed, check_random_state, resolve_seed
from .core import ACTIVATION_RNG, Streamer, StreamIterator, iterator_factory
from .exceptions import DataError, PescadorError

__all__ = [
    "DataFileError",
    "ShortFileWarning",
    "WindowIterator",
    "group_npy_files",
    "npy_streamers",
    "npy_windows",
    "npz_streamers",
    "npz_windows",
]

PathLike = str | os.PathLike[str]

#: Arrays at most this large are read whole when an activation starts (one read instead of
#: one per window); larger ones are read window by window.
SMALL_ARRAY_BYTES = 64 * 1024

#: Window offsets are drawn in blocks of these sizes, then 1024 at a time: a short activation
#: (a mux's ``rate`` is often about 16) draws few numbers, a long one draws in large blocks.
_BLOCKS = (16, 32, 64, 128, 256, 512)
_BIG_BLOCK = 1024
_BLOCK_STARTS = [sum(_BLOCKS[:k]) for k in range(len(_BLOCKS) + 1)]

_SHORT_POLICIES = ("error", "skip")
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


def _pread_fallback(fd: int, buffers: list[Any], offset: int) -> int:
    """``os.preadv`` where the platform lacks it: seek, then read (each iterator has its fds)."""
    os.lseek(fd, offset, os.SEEK_SET)
    with open(fd, "rb", buffering=0, closefd=False) as raw:
        return raw.readinto(buffers[0]) or 0


_pread = getattr(os, "preadv", None) or _pread_fallback


def _read_whole(fd: int, path: str, info: _Array) -> np.ndarray:
    """Read a whole array into memory (a small one, or one that cannot be read in place)."""
    if info.offset >= 0:
        array = np.empty(info.shape, info.dtype)
        if _pread(fd, [array], info.offset) != array.nbytes:
            raise DataFileError(path, "the file shrank while being read")
        return array
    import zipfile

    with open(fd, "rb", closefd=False) as fp:
        try:
            if info.member:
                with zipfile.ZipFile(fp) as archive, archive.open(info.member) as stream:
                    return np.lib.format.read_array(stream, allow_pickle=False)
            fp.seek(0)
            return np.lib.format.read_array(fp, allow_pickle=False)
        except _zip_errors() as exc:
            where = f"member {info.member!r}" if info.member else "the array"
            raise DataFileError(path, f"{where} cannot be read ({exc})") from None


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


# ------------------------------------------------------------------------------ the windows
def _block(index: int) -> tuple[int, int]:
    """The block holding window ``index``: its number and the index of its first window."""
    starts = _BLOCK_STARTS
    if index < starts[-1]:
        k = sum(start <= index for start in starts) - 1
        return k, starts[k]
    k = len(_BLOCKS) + (index - starts[-1]) // _BIG_BLOCK
    return k, starts[-1] + (k - len(_BLOCKS)) * _BIG_BLOCK


def _windows(
    files: Sequence[tuple[str, str]],
    keys: Sequence[str] | None,
    n: int,
    short: str,
    rng: np.random.Generator,
    done: int,
    tags: Mapping[str, Any] | None,
) -> Iterator[dict[str, Any]]:
    """The raw windows of one activation; the files are opened at its first ``next``.

    The descriptors live in this generator's frame and are closed by its ``finally``, when
    the activation ends, is closed, or is dropped (nothing refers back to the generator, so
    CPython frees it at once).
    """
    fds: list[int] = []
    try:
        chosen, rows = _open_arrays(files, keys, fds)
        path = files[0][0]
        if not _keep(path, rows, n, short):
            return
        # Per key: (key, fd, file offset, row bytes, window shape, dtype, window bytes), or
        # (key, -1, array, ...) for an array read whole.
        steps: list[tuple[Any, ...]] = []
        in_use = set()
        for key, where, info, fd in chosen:
            row = info.row_bytes
            if info.offset < 0 or rows * row <= SMALL_ARRAY_BYTES:
                steps.append((key, -1, _read_whole(fd, where, info), 0, (), None, 0))
            else:
                steps.append(
                    (key, fd, info.offset, row, (n, *info.shape[1:]), info.dtype, n * row)
                )
                in_use.add(fd)
        if len(in_use) < len(fds):  # some files were read whole: close them now
            for fd in [fd for fd in fds if fd not in in_use]:
                fds.remove(fd)
                os.close(fd)
        extra = dict(tags) if tags else None
        pread, empty, starts = _pread, np.empty, rows - n + 1
        k, first = _block(done) if done else (0, 0)
        skip = done - first
        if first:  # resuming: jump over the draws of earlier blocks (one per window)
            advance = getattr(rng.bit_generator, "advance", None)
            if advance is not None:
                advance(first)
            else:
                rng.random(first)
        while True:
            size = _BLOCKS[k] if k < len(_BLOCKS) else _BIG_BLOCK
            k += 1
            # Uniform on [0, starts): the floor of a 53-bit uniform float times `starts`.
            offsets = (rng.random(size) * starts).astype(np.intp).tolist()
            if skip:
                del offsets[:skip]
                skip = 0
            for i in offsets:
                window = {}
                for key, fd, at, row, shape, dtype, nbytes in steps:
                    if fd < 0:
                        window[key] = at[i : i + n].copy()
                    else:
                        buf = window[key] = empty(shape, dtype)
                        if pread(fd, [buf], at + i * row) != nbytes:
                            raise DataFileError(path, "the file shrank while being read")
                if extra:
                    window.update(extra)
                yield window
    finally:
        while fds:
            os.close(fds.pop())


def _is_activation_generator(rng: np.random.Generator, seed: Seed) -> bool:
    """Whether ``rng`` is the generator a Streamer made for this activation (ACTIVATION_RNG)."""
    seq = getattr(rng.bit_generator, "seed_seq", None)
    return (
        isinstance(seq, np.random.SeedSequence)
        and seq.entropy == seed.entropy
        and tuple(seq.spawn_key) == (*seed.key, 0)
    )


class WindowIterator(StreamIterator[dict[str, Any]]):
    """One activation of a window streamer (:func:`npz_windows`, :func:`npy_windows`).

    It yields ``{key: array of n rows, ...}`` forever (nothing for a short file skipped),
    each window starting at an offset drawn uniformly among all the valid ones. The files are
    opened at the first ``next`` and closed when the iterator ends, is closed or is dropped.

    State (:meth:`state_dict`): the windows delivered and the bit generator's state when the
    activation started. Offsets are drawn in blocks (16, 32, ... 512, then 1024 at a time),
    one raw draw each, so a restored iterator jumps to its block in O(1), draws it again and
    skips the windows already delivered.
    """

    __slots__ = ("_files", "_keys", "_n", "_random_state", "_rng_start", "_short", "_tags")

    kind = "windows"

    def __init__(
        self,
        files: Sequence[tuple[str, str]],
        keys: Sequence[str] | None,
        n: int,
        short: str,
        random_state: Any,
        tags: Mapping[str, Any] | None,
    ) -> None:
        super().__init__()
        self._files = files
        self._keys = keys
        self._n = n
        self._short = short
        self._random_state = random_state
        self._tags = tags
        self._rng_start: Mapping[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} over {self._files[0][0]!r}, n={self._n}>"

    def _generator(self) -> np.random.Generator:
        given = self._random_state
        if given is ACTIVATION_RNG or given is None:
            return resolve_seed(None, self._seed).generator()
        if (
            isinstance(given, np.random.Generator)
            and self._seed is not None
            and _is_activation_generator(given, resolve_seed(None, self._seed))
        ):
            return given  # made for this activation alone
        return resolve_seed(given).generator()  # a fixed seed: every activation replays it

    def _open(self) -> tuple[Iterator[dict[str, Any]], None]:
        resume = self._resume
        if resume is not None and resume.get("done"):
            return iter(()), None
        rng = self._generator()
        done = 0
        if resume is not None and resume["n"]:
            rng.bit_generator.state = resume["rng"]
            done = resume["n"]
        self._rng_start = rng.bit_generator.state
        raw = _windows(self._files, self._keys, self._n, self._short, rng, done, self._tags)
        return raw, None

    def _own_state(self) -> dict[str, Any]:
        return {"window": self._n, "rng": self._rng_start}

    def _check_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        checked = _state.check(state, self.kind)
        if checked.get("n") and not checked.get("done"):
            _state.check(state, self.kind, window=self._n)
            if not isinstance(checked.get("rng"), Mapping):
                raise _state.StateError(f"a {self.kind} state needs the generator state 'rng'")
        return checked


# ------------------------------------------------------------------------------ arguments
def _window_size(n: Any) -> int:
    if isinstance(n, numbers.Integral) and not isinstance(n, bool) and int(n) >= 1:
        return int(n)
    raise PescadorError(f"n={n!r}: expected a window size, a positive integer number of rows")


def _check_keys(keys: Any) -> tuple[str, ...]:
    names = (keys,) if isinstance(keys, str) else keys
    try:
        names = tuple(names)
    except TypeError:
        names = ()
    if not names or not all(isinstance(k, str) and k for k in names):
        names = ()
    if not names or len(set(names)) != len(names):
        raise PescadorError(
            f"keys={keys!r}: expected None (every array), an array name, or a list of distinct "
            "array names"
        )
    return names


def _check_options(short: Any, random_state: Any, tags: Any) -> None:
    if short not in _SHORT_POLICIES:
        raise PescadorError(f"short={short!r}: expected 'error' or 'skip'")
    if random_state is not ACTIVATION_RNG:
        check_random_state(random_state)
    if tags is not None and not isinstance(tags, Mapping):
        raise PescadorError(f"tags={tags!r}: expected None or a mapping of extra items")


def _path(value: Any, name: str) -> str:
    try:
        return os.fspath(value)
    except TypeError:
        raise PescadorError(f"{name}={value!r}: expected a path (str or os.PathLike)") from None


# ------------------------------------------------------------------------------ streamers
@iterator_factory
def npz_windows(
    path: PathLike,
    n: int,
    keys: str | Sequence[str] | None = None,
    *,
    short: str = "error",
    tags: Mapping[str, Any] | None = None,
    random_state: RandomStateLike = ACTIVATION_RNG,
) -> WindowIterator:
    """Endless random windows of ``n`` consecutive rows from the arrays of one NPZ archive.

    Parameters
    ----------
    path : str or path-like
        An archive written by ``np.savez`` or ``np.savez_compressed``, whose arrays (those
        read) all have the same number of rows (their first dimension).
    n : int > 0
        Rows per window.
    keys : str, list of str, or None
        The arrays to read, in this order; ``None`` (default) reads all, in archive order.
    short : {"error", "skip"}
        A file with fewer than ``n`` rows: raise :class:`DataFileError` naming it (default),
        or yield nothing from it and warn (:class:`ShortFileWarning`).
    tags : mapping, optional
        Items added unchanged to every window, for instance ``{"file": 7}`` to tell which file
        a window came from.
    random_state : optional
        Where the window offsets come from. By default (:data:`pescador.ACTIVATION_RNG`) each
        activation draws from its own generator, seeded by the parent mux's seed (a seeded mux
        makes the whole stream reproducible) or, without one, from numpy's global RNG. An
        int, ``SeedSequence``, ``RandomState`` or ``Generator`` is a fixed seed: *every
        activation replays the same offsets* (useful for tests; for training, seed the mux).

    Returns
    -------
    WindowIterator
        Yields ``{key: array of shape (n, *row_shape)}`` (plus ``tags``) forever. Each
        window's start is drawn uniformly among the ``rows - n + 1`` valid ones (the last
        included); arrays are new, writable copies.

    Raises
    ------
    PescadorError
        At the call, for a bad ``n``, ``keys``, ``short``, ``tags`` or ``random_state``.
    DataFileError
        At the first ``next``, naming the file: missing or unreadable, not an NPZ archive,
        corrupt, no array named as a key, arrays of different lengths, 0-d arrays, or fewer
        than ``n`` rows (with ``short="error"``).

    Notes
    -----
    Memory: members stored uncompressed (``np.savez``) are read in place, one window at a
    time, with ``pread``: an active iterator holds one file descriptor, plus the arrays of at
    most 64 KiB (read whole at the start, e.g. the labels). Compressed members
    (``np.savez_compressed``), Fortran-ordered or object arrays are decompressed whole when
    the activation starts and held until it ends. The archive's layout (member offsets,
    shapes, dtypes) is cached per file, keyed by its inode, size and mtime.

    Order: random, with replacement. Infinite. RNG: a numpy ``Generator`` (PCG64), one draw
    per window, drawn in blocks. State: the windows delivered and the generator's state.

    Examples
    --------
    >>> import numpy as np, pescador, tempfile, os
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "song.npz")
    >>> np.savez(path, X=np.arange(20.0).reshape(10, 2), Y=np.arange(10))
    >>> stream = pescador.Streamer(npz_windows, path, 4, random_state=0)
    >>> [w["Y"].tolist() for w in stream.iterate(max_iter=3)]
    [[6, 7, 8, 9], [2, 3, 4, 5], [5, 6, 7, 8]]
    >>> with npz_windows(path, 10, keys="X") as windows:  # only one window fits
    ...     next(windows)["X"].shape
    (10, 2)
    >>> tmp.cleanup()
    """
    # Called at every activation: the common case is checked first, and quickly.
    if type(n) is not int or n < 1:
        n = _window_size(n)
    chosen = None if keys is None else _check_keys(keys)
    if short != "error" or tags is not None or random_state is not ACTIVATION_RNG:
        _check_options(short, random_state, tags)
    target = path if type(path) is str else _path(path, "path")
    return WindowIterator(((target, ""),), chosen, n, short, random_state, tags)


@iterator_factory
def npy_windows(
    files: Mapping[str, PathLike],
    n: int,
    *,
    short: str = "error",
    tags: Mapping[str, Any] | None = None,
    random_state: RandomStateLike = ACTIVATION_RNG,
) -> WindowIterator:
    """Endless random windows of ``n`` consecutive rows from NPY files, one file per array.

    Parameters
    ----------
    files : mapping of str to path
        The key of each array in a window, and its ``.npy`` file (written by ``np.save``);
        every file must have the same number of rows. :func:`group_npy_files` builds these
        from ``<example>.<key>.npy`` file names.
    n : int > 0
        Rows per window.
    short : {"error", "skip"}
        A file with fewer than ``n`` rows: raise :class:`DataFileError` naming it (default),
        or yield nothing from it and warn (:class:`ShortFileWarning`).
    tags : mapping, optional
        Items added unchanged to every window, for instance ``{"file": 7}`` to tell which file
        a window came from.
    random_state : optional
        Where the window offsets come from. By default (:data:`pescador.ACTIVATION_RNG`) each
        activation draws from its own generator, seeded by the parent mux's seed (a seeded mux
        makes the whole stream reproducible) or, without one, from numpy's global RNG. An
        int, ``SeedSequence``, ``RandomState`` or ``Generator`` is a fixed seed: *every
        activation replays the same offsets* (useful for tests; for training, seed the mux).

    Returns
    -------
    WindowIterator
        Yields ``{key: array of shape (n, *row_shape)}`` (plus ``tags``) forever, with the
        keys in the order of ``files``; as :func:`npz_windows`.

    Raises
    ------
    PescadorError
        At the call, for bad arguments (``files`` must map at least one key to a path).
    DataFileError
        At the first ``next``, naming the file, as for :func:`npz_windows`.

    Notes
    -----
    Memory: rows are read in place with ``pread``, like a memory map without mapping: each
    active iterator holds one descriptor per file read this way, plus the arrays of at most
    64 KiB, read whole at the start (e.g. labels). Fortran-ordered or object arrays are read
    whole. Order, RNG and state: as :func:`npz_windows`.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> tmp = tempfile.TemporaryDirectory()
    >>> files = {key: os.path.join(tmp.name, f"a.{key}.npy") for key in ("X", "Y")}
    >>> np.save(files["X"], np.zeros((10, 3), np.float32))
    >>> np.save(files["Y"], np.arange(10))
    >>> with npy_windows(files, 4, random_state=1) as windows:
    ...     window = next(windows)
    >>> window["X"].shape, window["Y"].tolist()
    ((4, 3), [4, 5, 6, 7])
    >>> tmp.cleanup()
    """
    if type(n) is not int or n < 1:
        n = _window_size(n)
    if not isinstance(files, Mapping) or not files:
        raise PescadorError(
            f"files={files!r}: expected a mapping of array names to .npy paths, e.g. "
            "{'X': 'a.X.npy', 'Y': 'a.Y.npy'}"
        )
    _check_keys(tuple(files))
    pairs = [(_path(p, f"files[{k!r}]"), k) for k, p in files.items()]
    _check_options(short, random_state, tags)
    return WindowIterator(pairs, None, n, short, random_state, tags)


# ------------------------------------------------------------------------------ many files
def group_npy_files(paths: Iterable[PathLike]) -> dict[str, dict[str, str]]:
    """Group ``<example>.<key>.npy`` files by example: ``{example: {key: path}}``.

    The example is the path without ``.<key>.npy``: ``songs/a.X.npy`` and ``songs/a.Y.npy``
    form the example ``songs/a``, with keys ``X`` and ``Y``. Examples are sorted by name, and
    so are the keys of each.

    Raises
    ------
    DataFileError
        For a file not named ``<example>.<key>.npy``.

    Examples
    --------
    >>> group_npy_files(["d/b.X.npy", "d/a.Y.npy", "d/a.X.npy", "d/b.Y.npy"])
    {'d/a': {'X': 'd/a.X.npy', 'Y': 'd/a.Y.npy'}, 'd/b': {'X': 'd/b.X.npy', 'Y': 'd/b.Y.npy'}}
    """
    groups: dict[str, dict[str, str]] = {}
    for value in paths:
        path = _path(value, "path")
        example, _, key = path[:-4].rpartition(".")
        name = os.path.basename(example)
        if not path.endswith(".npy") or not name or not key or "/" in key or os.sep in key:
            raise DataFileError(path, "expected an NPY file named <example>.<key>.npy")
        groups.setdefault(example, {})[key] = path
    return {example: dict(sorted(groups[example].items())) for example in sorted(groups)}


def _listing(source: Any, suffix: str) -> list[str] | None:
    """The files of a directory (sorted) or the one file ``source`` names; None for a list."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    path = os.fspath(source)
    if os.path.isdir(path):
        found = sorted(e.path for e in os.scandir(path) if e.name.endswith(suffix) and e.is_file())
        if not found:
            raise DataFileError(path, f"no {suffix} files in this directory")
        return found
    if os.path.isfile(path):
        return [path]
    raise DataFileError(path, "no such file or directory")


def _streamers(
    factory: Any,
    targets: Sequence[Any],
    files: Sequence[list[tuple[str, str]]],
    keys: tuple[str, ...] | None,
    n: int,
    short: str,
    validate: bool,
    id_key: str | None,
    random_state: Any,
) -> list[Streamer]:
    """A Streamer of ``factory(target, n, ...)`` per target (after validation, if asked)."""
    _check_options(short, random_state, None)
    if id_key is not None and not isinstance(id_key, str):
        raise PescadorError(f"id_key={id_key!r}: expected None or a key name (str)")
    if not targets:
        raise PescadorError(f"{factory.__name__}: `source` names no files")
    kept = list(range(len(targets)))
    if validate:  # read every header now; drop (or raise for) short files
        kept = []
        for index, example in enumerate(files):
            fds: list[int] = []
            try:
                rows = _open_arrays(example, keys, fds)[1]
            finally:
                while fds:
                    os.close(fds.pop())
            if _keep(example[0][0], rows, n, short):
                kept.append(index)
    args: tuple[Any, ...] = (keys,) if keys is not None else ()
    options: dict[str, Any] = {} if short == "error" else {"short": short}
    if random_state is not ACTIVATION_RNG:
        options["random_state"] = random_state
    streams: list[Streamer] = []
    for index in kept:
        tags = {} if id_key is None else {"tags": {id_key: len(streams)}}
        streams.append(Streamer(factory, targets[index], n, *args, **options, **tags))
    return streams


def npz_streamers(
    source: PathLike | Iterable[PathLike],
    n: int,
    keys: str | Sequence[str] | None = None,
    *,
    short: str = "error",
    validate: bool = False,
    id_key: str | None = None,
    random_state: RandomStateLike = ACTIVATION_RNG,
) -> list[Streamer]:
    """One window :class:`~pescador.Streamer` (:func:`npz_windows`) per NPZ archive.

    Parameters
    ----------
    source : path, or iterable of paths
        A directory (its ``*.npz`` files, sorted; not those of its subdirectories: pass
        ``sorted(root.rglob("*.npz"))`` for them), one archive, or a list of archives.
    n, keys, short, random_state
        As for :func:`npz_windows`.
    validate : bool
        Read every archive's headers now (not its data): a bad archive raises here rather
        than when the mux reaches it, and with ``short="skip"`` short archives are left out.
    id_key : str, optional
        Add ``{id_key: i}`` to every window of the ``i``-th streamer returned, to tell which
        file a window came from.

    Returns
    -------
    list of Streamer
        In the order of ``source``. Nothing is opened until a streamer is iterated (unless
        ``validate``).

    Raises
    ------
    DataFileError
        If ``source`` does not exist or holds no ``.npz`` file; with ``validate``, for the
        first archive that cannot be read as asked.

    Examples
    --------
    >>> import numpy as np, pescador, tempfile, os
    >>> tmp = tempfile.TemporaryDirectory()
    >>> for k in range(3):
    ...     np.savez(os.path.join(tmp.name, f"{k}.npz"), X=np.zeros((20, 2)), Y=np.ones(20))
    >>> streams = npz_streamers(tmp.name, 8, keys=["X"], id_key="file")
    >>> mux = pescador.ShuffledMux(streams, random_state=0)
    >>> sorted(next(iter(mux)))
    ['X', 'file']
    >>> tmp.cleanup()
    """
    n = _window_size(n)
    chosen = None if keys is None else _check_keys(keys)
    paths = _listing(source, ".npz")
    if paths is None:
        paths = [_path(p, "source") for p in source]  # type: ignore[union-attr]
    files = [[(p, "")] for p in paths]
    return _streamers(npz_windows, paths, files, chosen, n, short, validate, id_key, random_state)


def npy_streamers(
    source: PathLike | Iterable[PathLike] | Iterable[Mapping[str, PathLike]],
    n: int,
    keys: str | Sequence[str] | None = None,
    *,
    short: str = "error",
    validate: bool = False,
    id_key: str | None = None,
    random_state: RandomStateLike = ACTIVATION_RNG,
) -> list[Streamer]:
    """One window :class:`~pescador.Streamer` (:func:`npy_windows`) per example of NPY files.

    Files pair up by name, ``<example>.<key>.npy``: ``a.X.npy`` and ``a.Y.npy`` are the example
    ``a`` with arrays ``X`` and ``Y`` (see :func:`group_npy_files`).

    Parameters
    ----------
    source : path, iterable of paths, or iterable of mappings
        A directory (its ``*.npy`` files), a list of ``.npy`` paths (grouped by name), or a
        list of ``{key: path}`` mappings, one per example.
    n, short, random_state
        As for :func:`npy_windows`.
    keys : str, list of str, or None
        The arrays to read, in this order (every example must have them); ``None`` reads
        every key of each example.
    validate, id_key
        As for :func:`npz_streamers`.

    Returns
    -------
    list of Streamer
        One per example: sorted by example name, or in the order of the mappings given.

    Raises
    ------
    DataFileError
        If ``source`` does not exist or holds no ``.npy`` file, for a file not named
        ``<example>.<key>.npy``, or an example lacking one of ``keys``.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> tmp = tempfile.TemporaryDirectory()
    >>> for name in ("a", "b"):
    ...     np.save(os.path.join(tmp.name, f"{name}.X.npy"), np.zeros((20, 3)))
    ...     np.save(os.path.join(tmp.name, f"{name}.Y.npy"), np.arange(20))
    >>> streams = npy_streamers(tmp.name, 5)
    >>> len(streams), sorted(next(iter(streams[0])))
    (2, ['X', 'Y'])
    >>> tmp.cleanup()
    """
    n = _window_size(n)
    chosen = None if keys is None else _check_keys(keys)
    paths = _listing(source, ".npy")
    groups: list[Mapping[str, Any]]
    if paths is not None:
        groups = list(group_npy_files(paths).values())
    else:
        given: list[Any] = list(source)  # type: ignore[arg-type]
        if given and all(isinstance(g, Mapping) for g in given):
            groups = given
        else:
            groups = list(group_npy_files(given).values())
    examples = []
    for group in groups:
        named = {str(k): _path(p, f"source[{k!r}]") for k, p in group.items()}
        for key in chosen or ():
            if key not in named:
                raise DataFileError(
                    next(iter(named.values()), "?"),
                    f"its example has no array {key!r} (no file <example>.{key}.npy)",
                )
        examples.append({k: named[k] for k in chosen} if chosen else named)
    files = [[(p, k) for k, p in example.items()] for example in examples]
    return _streamers(npy_windows, examples, files, None, n, short, validate, id_key, random_state)
