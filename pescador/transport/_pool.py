"""Chunks for a producer whose consumer sends nothing back (private; see
:mod:`pescador.transport`).

``ParallelStreamer`` and ``ZMQStreamer`` own their workers and their channels, and a consumer
returns released chunks with its credits. A producer started by someone else (a worker of
PyTorch's ``DataLoader``, which owns the pipes) gets no message back. So each such producer
process has a :class:`Pool`: its own private directory (:func:`make_directory`, so its owner
lock, its removal and the reclaiming of a killed producer's directory work as for the other
streamers), chunk files (:class:`ChunkFiles`), and one more file, ``held``, with one byte per
chunk: the producer sets a chunk's byte when it hands the chunk out, the consumer clears it
when no array views the chunk any more (:class:`PoolMaps`), and the producer takes the cleared
chunks back before it hands out the next one (the chunk released last is reused first).

The consumer maps each producer's directory when the first item from it arrives, drops the
mappings of a directory whose producer has removed it (on exit), and removes at its own exit
the directories it has mapped whose producer could not (a killed worker).
"""

from __future__ import annotations

import atexit
import contextlib
import mmap
import os
import threading
import weakref
from multiprocessing import util as _mp_util

import numpy as np

from ._chunks import ChunkFiles, ChunkMaps, create_file, map_file
from ._directory import default_limit, make_directory, remove_directory

__all__ = ["Pool", "PoolMaps", "pool"]

#: Chunks a producer can hand out over its life (one byte each in ``held``).
SLOTS = 1 << 15  # 1 GiB of the smallest chunks a DataLoader worker uses (32 KiB)
_HELD = "held"


class Pool:
    """A producer's chunks: :meth:`take` one, write the item into :meth:`buffer`, send
    ``(directory, fid, offset, slot)``; the consumer's :class:`PoolMaps` gives it back.

    Parameters
    ----------
    tag : str
        Part of the directory's name (``pescador-<pid>-<tag>...``).
    limit : int
        Bytes of chunk files at most.
    shares : int
        How many producers share the machine's shared memory: the limit is also at most
        :func:`default_limit` for them.

    The directory is removed when the process exits (and reclaimed by the next
    :func:`make_directory` on the machine if the process is killed). Without room for it, or
    for the ``held`` file, :meth:`take` always answers ``None``.
    """

    def __init__(self, tag: str, limit: int, shares: int = 1) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()  # a pickling thread (a queue's feeder) may take chunks
        self.directory: str | None = None
        self.held: mmap.mmap | None = None  # (a mapping: its items read and write fastest)
        try:
            self.directory = make_directory(tag)
        except OSError:  # no room for the directory: items travel another way
            return
        _mp_util.Finalize(self, remove_directory, args=(self.directory,), exitpriority=10)
        try:
            self.held = create_file(os.path.join(self.directory, _HELD), SLOTS)
        except OSError:
            return
        limit = min(limit, default_limit(self.directory, shares))
        self.files = ChunkFiles(self.directory, 0, limit)
        self.slot_of: dict[tuple[int, int], int] = {}
        self.chunk_of: list[tuple[int, int]] = []  # slot -> chunk
        self.out: list[int] = []  # slots in the consumer's hands, or lately released by it
        self.arrays: list[np.ndarray] = []  # file id -> the file's bytes

    def take(self, size: int) -> tuple[int, int, int] | None:
        """``(fid, offset, slot)`` of a chunk of at least ``size`` bytes, marked held; or
        ``None`` (no room: the limit, a full ``/dev/shm``, no free slot)."""
        if self.held is None:
            return None
        with self.lock:
            if self.out:  # first the chunks released lately: still in the CPU's caches
                self._collect()
            chunk = self.files.take(size)
            if chunk is None:
                return None
            slot = self.slot_of.get(chunk)
            if slot is None:
                slot = len(self.chunk_of)
                if slot >= SLOTS:
                    self.files.release([chunk])
                    return None
                self.slot_of[chunk] = slot
                self.chunk_of.append(chunk)
            self.held[slot] = 1
            self.out.append(slot)
            return (*chunk, slot)

    def _collect(self) -> None:
        """Take back the chunks the consumer has released."""
        held = self.held
        assert held is not None
        out: list[int] = []
        back: list[tuple[int, int]] = []
        for slot in self.out:
            if held[slot]:
                out.append(slot)
            else:
                back.append(self.chunk_of[slot])
        if back:
            self.out = out
            self.files.release(back)

    def buffer(self, fid: int, offset: int, size: int) -> np.ndarray:
        """The ``size`` bytes at ``offset`` of file ``fid`` (in a chunk taken), to write into."""
        arrays = self.arrays
        while len(arrays) <= fid:
            arrays.append(np.frombuffer(self.files.maps[len(arrays)], np.uint8))
        return arrays[fid][offset : offset + size]


_POOL: Pool | None = None


def pool(tag: str, limit: int, shares: int = 1) -> Pool:
    """This process's :class:`Pool` (made at the first call in each process; the arguments
    are those of :class:`Pool`)."""
    global _POOL
    if _POOL is None or _POOL.pid != os.getpid():
        _POOL = Pool(tag, limit, shares)
    return _POOL


def _release(held: mmap.mmap, slot: int) -> None:
    with contextlib.suppress(ValueError):  # the mapping is closed: nothing to release
        held[slot] = 0


class PoolMaps:
    """The consumer's side: every producer directory it has received items from, mapped."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # items are rebuilt by the loop or a pinning thread
        self.maps: dict[str, tuple[ChunkMaps, mmap.mmap]] = {}
        atexit.register(self.remove_all)

    def base(self, directory: str, fid: int, offset: int, slot: int, size: int) -> np.ndarray:
        """The ``size`` bytes of the chunk, as the base array of an item: the chunk goes back
        to its producer when no array views it any more."""
        with self.lock:
            mapped = self.maps.get(directory)
            if mapped is None:
                self._forget_gone()
                held = map_file(os.path.join(directory, _HELD))
                mapped = self.maps[directory] = (ChunkMaps(directory, 0), held)
            maps, held = mapped
            base = maps.view(fid, offset, size)
        weakref.finalize(base, _release, held, slot)
        return base

    def _forget_gone(self) -> None:
        """Drop the mappings of directories whose producer has removed them (it has exited)."""
        for directory in [d for d in self.maps if not os.path.isdir(d)]:
            self.maps.pop(directory)[0].close()

    def remove_all(self) -> None:
        """Remove the directories of producers that did not (killed ones); at exit."""
        for directory in list(self.maps):
            remove_directory(directory)
