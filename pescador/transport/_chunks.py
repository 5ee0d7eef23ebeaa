"""Chunks of shared memory: a worker's :class:`ChunkFiles`, the consumer's :class:`ChunkMaps`
(private; see :mod:`pescador.transport`).

A worker's files, in the consumer's private directory, are split into chunks of one size each
(a power of two, :data:`MIN_CHUNK` bytes or more), so small items share a file and a held item
pins only its own chunk. A file is allocated in full when created (``posix_fallocate``): a full
``/dev/shm`` is a refusal then, never a ``SIGBUS`` on a later write. A worker's files total at
most ``limit`` bytes; a chunk that cannot be had is ``None``, and the caller sends its item
another way. Files live until the directory is removed.

The consumer maps each file once. It hands out an item's memory as one base array; when the
last view of it goes, a weak-reference callback queues the chunk, and the consumer returns it
to the worker with its next credit (:meth:`ChunkMaps.drain`, :meth:`ChunkFiles.release`).
"""

from __future__ import annotations

import collections
import contextlib
import mmap
import os
import weakref
from collections.abc import Callable, Iterable

import numpy as np

#: Smallest chunk, and smallest file.
MIN_CHUNK = 256
FILE_BYTES = 1 << 20


def chunk_size(n: int) -> int:
    """The size of the chunks that hold ``n`` bytes."""
    return max(MIN_CHUNK, 1 << (n - 1).bit_length())


def _path(directory: str, worker: int, fid: int) -> str:
    return os.path.join(directory, f"w{worker}-{fid}")


def create_file(path: str, size: int) -> mmap.mmap:
    """A new file of ``size`` bytes at ``path``, allocated in full, mapped read-write.

    Raises ``FileNotFoundError`` if the directory is gone, another ``OSError`` if there is no
    room (the file is not left behind).
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(fd, 0, size)
        else:  # pragma: no cover - macOS
            os.ftruncate(fd, size)
        return mmap.mmap(fd, size)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    finally:
        os.close(fd)


def map_file(path: str, writable: bool = True) -> mmap.mmap:
    """An existing file mapped whole (read-only unless ``writable``)."""
    with open(path, "r+b" if writable else "rb") as f:
        access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
        return mmap.mmap(f.fileno(), 0, access=access)


class ChunkFiles:
    """A worker's chunk files: chunks handed out, and reused once the consumer releases them
    (last released, first reused: still in the CPU's caches)."""

    def __init__(self, directory: str, worker: int, limit: int) -> None:
        self.directory = directory
        self.worker = worker
        self.limit = limit
        self.total = 0
        self.maps: list[mmap.mmap] = []  # file id -> mapping
        self.free: dict[int, list[tuple[int, int]]] = collections.defaultdict(list)
        self.size_of: dict[int, int] = {}  # file id -> its chunk size

    def release(self, chunks: Iterable[tuple[int, int]]) -> None:
        for fid, offset in chunks:
            self.free[self.size_of[fid]].append((fid, offset))

    def take(
        self, size: int, make_room: Callable[[], None] | None = None
    ) -> tuple[int, int] | None:
        """``(file id, offset)`` of a chunk of ``size`` bytes or more, or None if there is no
        room (the limit, a full ``/dev/shm``, the directory gone). If no released chunk fits,
        ``make_room`` is called first (to collect the chunks the consumer has released)."""
        chunk = chunk_size(size)
        free = self.free[chunk]
        if not free and make_room is not None:
            make_room()
        if free:
            return free.pop()
        file_bytes = max(chunk, FILE_BYTES)
        if self.total + file_bytes > self.limit:
            return None
        fid = len(self.maps)
        try:
            mapping = create_file(_path(self.directory, self.worker, fid), file_bytes)
        except FileNotFoundError:
            return None  # the directory is gone (the consumer is closing)
        except OSError:
            # /dev/shm is full: no more files (each refusal would cost a failed allocation).
            self.limit = self.total
            return None
        self.maps.append(mapping)
        self.size_of[fid] = chunk
        self.total += file_bytes
        free.extend((fid, offset) for offset in range(file_bytes - chunk, 0, -chunk))
        return fid, 0

    def close(self) -> None:
        for mapping in self.maps:
            with contextlib.suppress(BufferError):  # views still exist: unmapped with them
                mapping.close()
        self.maps.clear()


class _ChunkRef(weakref.ref):
    """A weak reference to an item's base array that remembers its chunk."""

    __slots__ = ("chunk",)
    chunk: tuple[int, int]


class ChunkMaps:
    """The consumer's side of one worker's chunk files: each mapped once, read-only unless
    ``writable``."""

    def __init__(self, directory: str, worker: int, writable: bool = True) -> None:
        self.directory = directory
        self.worker = worker
        self.writable = writable
        self.maps: dict[int, mmap.mmap] = {}
        # Chunks whose arrays died: appended by weak-reference callbacks (any thread, any
        # time), drained by the consumer and sent back with a credit.
        self.released: collections.deque[tuple[int, int]] = collections.deque()
        self.refs: dict[int, _ChunkRef] = {}  # keeps the references (and callbacks) alive
        refs, released = self.refs, self.released

        def on_release(ref: _ChunkRef) -> None:
            refs.pop(id(ref), None)
            released.append(ref.chunk)

        self._on_release = on_release

    def _map(self, fid: int) -> mmap.mmap:
        mapping = map_file(_path(self.directory, self.worker, fid), self.writable)
        self.maps[fid] = mapping
        return mapping

    def view(self, fid: int, offset: int, size: int) -> np.ndarray:
        """The ``size`` bytes at ``offset`` of file ``fid`` (untracked: see :meth:`base`)."""
        mapping = self.maps.get(fid) or self._map(fid)
        return np.frombuffer(mapping, np.uint8, size, offset)

    def base(self, fid: int, offset: int, size: int) -> np.ndarray:
        """The ``size`` bytes at ``offset`` of file ``fid``, as the base array of an item:
        the chunk is released when no array views it any more."""
        base = self.view(fid, offset, size)
        ref = _ChunkRef(base, self._on_release)
        ref.chunk = (fid, offset)
        self.refs[id(ref)] = ref
        return base

    def drain(self) -> list[tuple[int, int]]:
        """The chunks released since the last call."""
        released = self.released
        return [released.popleft() for _ in range(len(released))]

    def close(self) -> None:
        self.refs.clear()  # nobody to return chunks to any more
        for mapping in self.maps.values():
            with contextlib.suppress(BufferError):  # arrays still view it: unmapped with them
                mapping.close()
        self.maps.clear()
