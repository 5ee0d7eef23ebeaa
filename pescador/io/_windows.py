"""The windows of one activation: :class:`WindowIterator`, its offsets, reads and state.

An activation opens its example's files (see ``_layout``), reads the small arrays (and the
compressed ones) whole and the others window by window with ``pread``, and draws each
window's offset uniformly from a numpy ``Generator``, in blocks of growing size. A window of
an array in Fortran order is one read per column (its rows are not contiguous). Its state is
the windows delivered and the generator's state at the start: a restored iterator jumps to
its block and skips the windows already delivered.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .. import _state
from .._seeds import Seed, resolve_seed
from ..core import ACTIVATION_RNG, StreamIterator
from ._layout import (
    DataFileError,
    _Array,
    _keep,
    _open_arrays,
    _open_zip,
    _os_problem,
    _zip_errors,
)

#: Arrays at most this large are read whole when an activation starts (one read instead of
#: one per window); larger ones are read window by window.
SMALL_ARRAY_BYTES = 64 * 1024

#: Window offsets are drawn in blocks of these sizes, then 1024 at a time: a short activation
#: (a mux's ``rate`` is often about 16) draws few numbers, a long one draws in large blocks.
_BLOCKS = (16, 32, 64, 128, 256, 512)
_BIG_BLOCK = 1024
_BLOCK_STARTS = [sum(_BLOCKS[:k]) for k in range(len(_BLOCKS) + 1)]

#: Compressed members are decompressed this much at a time.
_CHUNK = 1 << 20


def _pread_fallback(fd: int, buffers: list[Any], offset: int) -> int:
    """``os.preadv`` where the platform lacks it: seek, then read (each iterator has its fds)."""
    os.lseek(fd, offset, os.SEEK_SET)
    with open(fd, "rb", buffering=0, closefd=False) as raw:
        return raw.readinto(buffers[0]) or 0


_pread = getattr(os, "preadv", None) or _pread_fallback


def _fill(fd: int, storage: np.ndarray, offset: int, got: int) -> bool:
    """Finish a read of ``storage`` of which ``got`` bytes came; False if the file ends first.

    One read stops short of a request at the end of the file, and on Linux at 2 GiB.
    """
    raw = storage.reshape(-1).view(np.uint8)
    while got < raw.nbytes:
        more = _pread(fd, [raw[got:]], offset + got)
        if more <= 0:
            return False
        got += more
    return True


def _shape_in_memory(info: _Array, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The C-order shape whose transpose is ``shape`` in Fortran order (else ``shape``)."""
    return shape[::-1] if info.fortran else shape


def _read_whole(fd: int, path: str, info: _Array) -> np.ndarray:
    """Read a whole array into memory (a small one, or a compressed member)."""
    if not info.packed:
        storage = np.empty(_shape_in_memory(info, info.shape), info.dtype)
        try:
            if not _fill(fd, storage, info.offset, 0):
                raise DataFileError(path, "the file shrank while being read")
        except OSError as exc:
            raise DataFileError(path, f"cannot be read ({_os_problem(exc)})") from None
        return storage.T if info.fortran else storage
    # Decompressed into a buffer that grows as data comes, not one of the size claimed.
    need = math.prod(info.shape) * info.dtype.itemsize
    data = bytearray()
    where = f"member {info.member!r}"
    with open(fd, "rb", closefd=False) as fp:
        try:
            size = os.fstat(fd).st_size
            with _open_zip(fp, size, path) as archive, archive.open(info.member) as stream:
                stream.read(info.offset)  # its header, read before
                while len(data) < need:
                    chunk = stream.read(min(_CHUNK, need - len(data)))
                    if not chunk:
                        raise DataFileError(path, f"{where} is truncated")
                    data += chunk
        except _zip_errors() as exc:
            raise DataFileError(path, f"{where} cannot be read ({exc})") from None
    flat = np.frombuffer(data, info.dtype) if need else np.empty(0, info.dtype)
    storage = flat.reshape(_shape_in_memory(info, info.shape))
    return storage.T if info.fortran else storage


def _fortran_window(
    fd: int, start: int, column: int, shape: tuple[int, ...], dtype: np.dtype[Any]
) -> np.ndarray | None:
    """A window of ``shape`` from a Fortran-order array: one read per column (None if short).

    ``start`` is the file offset of the window's first row in the first column, ``column``
    the bytes from one column to the next. The window is returned in C order.
    """
    storage = np.empty(shape[::-1], dtype)  # its transpose is the window in Fortran order
    for k, segment in enumerate(storage.reshape(-1, shape[0])):
        at = start + k * column
        got = _pread(fd, [segment], at)
        if got != segment.nbytes and not _fill(fd, segment, at, got):
            return None
    return np.ascontiguousarray(storage.T)


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
    meter: list[int],
) -> Iterator[dict[str, Any]]:
    """The raw windows of one activation; the files are opened at its first ``next``.

    ``meter`` receives the bytes of the arrays read whole, and the bytes each window reads
    (:attr:`WindowIterator.bytes_read`).

    The descriptors live in this generator's frame and are closed by its ``finally``, when
    the activation ends, is closed, or is dropped (nothing refers back to the generator, so
    CPython frees it at once).
    """
    fds: list[int] = []
    try:
        chosen, rows = _open_arrays(files, keys, fds)
        if not _keep(files[0][0], rows, n, short):
            return
        # Per key: (key, path, fd, file offset, bytes from one row to the next, bytes from
        # one column to the next (0 in C order), window shape, dtype, window bytes), or
        # (key, path, -1, array, ...) for an array read whole.
        steps: list[tuple[Any, ...]] = []
        in_use = set()
        for key, where, info, fd in chosen:
            row = info.row_bytes
            if info.packed or rows * row <= SMALL_ARRAY_BYTES:
                whole = _read_whole(fd, where, info)
                steps.append((key, where, -1, whole, 0, 0, (), None, 0))
                continue
            item = info.dtype.itemsize
            step, column = (item, rows * item) if info.fortran else (row, 0)
            shape = (n, *info.shape[1:])
            steps.append((key, where, fd, info.offset, step, column, shape, info.dtype, n * row))
            in_use.add(fd)
        meter[0] = sum(s[3].nbytes for s in steps if s[2] < 0)
        meter[1] = sum(s[8] for s in steps)
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
        where = files[0][0]
        try:
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
                    for key, where, fd, at, step, column, shape, dtype, nbytes in steps:
                        if fd < 0:
                            window[key] = at[i : i + n].copy()
                        elif not column:
                            buf = window[key] = empty(shape, dtype)
                            got = pread(fd, [buf], at + i * step)
                            if got != nbytes and not _fill(fd, buf, at + i * step, got):
                                raise DataFileError(where, "the file shrank while being read")
                        else:
                            part = _fortran_window(fd, at + i * step, column, shape, dtype)
                            if part is None:
                                raise DataFileError(where, "the file shrank while being read")
                            window[key] = part
                    if extra:
                        window.update(extra)
                    yield window
        except OSError as exc:  # an I/O error of the disk, or of a network file system
            raise DataFileError(where, f"cannot be read ({_os_problem(exc)})") from None
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

    __slots__ = (
        "_files",
        "_keys",
        "_meter",
        "_n",
        "_random_state",
        "_rng_start",
        "_short",
        "_tags",
    )

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
        # Bytes of the arrays read whole, bytes read per window, windows not read (resumed).
        self._meter = [0, 0, 0]

    @property
    def bytes_read(self) -> int:
        """The bytes of array data this activation has read from its files so far: the
        arrays read whole at the start, and each window delivered (headers not included)."""
        whole, per_window, skipped = self._meter
        return whole + per_window * (self.items_delivered - skipped)

    @property
    def path(self) -> str:
        """The example's file (its first file, for NPY files)."""
        return self._files[0][0]

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
            _state.generator_state(rng, resume["rng"], f"{self.kind} state", "rng")
            done = resume["n"]
        self._rng_start = rng.bit_generator.state
        self._meter[2] = done
        raw = _windows(
            self._files, self._keys, self._n, self._short, rng, done, self._tags, self._meter
        )
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
