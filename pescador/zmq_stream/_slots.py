"""Shared memory for ZMQStreamer items: slots in memory-mapped files on ``/dev/shm``.

Where the platform has it (Linux ``/dev/shm``: :func:`_shm_available`), the worker copies
the arrays of an item of 32 KiB or more once into a *slot*, a file of its own in the
consumer's private directory (:class:`_SlotWriter`), and the consumer maps the file and builds
the item's arrays on that memory (:class:`_SlotReader`): no copy on its side, no trip through
the kernel's socket buffers. A slot is reused once the consumer has dropped every array of
its item: a weak reference to their common base queues the slot's release, which goes back
to the worker with the next credit. The worker keeps at most a bounded number of slots;
beyond that, or if ``/dev/shm`` is full, items go through the socket.
"""

from __future__ import annotations

import collections
import contextlib
import mmap
import os
import sys
import weakref
from collections.abc import Iterable
from typing import Any

import numpy as np

#: The shared-memory directory, where there is one.
_SHM_DIR = "/dev/shm"


def _shm_available() -> bool:
    return (
        sys.platform.startswith("linux")
        and os.path.isdir(_SHM_DIR)
        and os.access(_SHM_DIR, os.W_OK)
        and hasattr(os, "posix_fallocate")
    )


class _SlotWriter:
    """The worker's pool of shared-memory slots: one file each, reused once released.

    At most ``limit`` slots exist; when all are in use the item goes through the socket.
    A slot file is created in the consumer's private directory; the consumer deletes the
    name as soon as it has mapped it. A free slot too small for an item is evicted (the
    consumer is told, and unmaps it). Released slots are reused last-in first-out: the most
    recent one is still in the CPU caches.
    """

    def __init__(self, directory: str, limit: int) -> None:
        self.directory = directory
        self.limit = limit
        self.maps: dict[int, mmap.mmap] = {}
        self.sizes: dict[int, int] = {}
        self.free: list[int] = []
        self.evicted: list[int] = []
        #: Per slot and header, the arrays to copy an item's arrays into.
        self.views: dict[int, dict[bytes, list[np.ndarray | None]]] = {}
        self.next_id = 0
        self.broken = False

    def acquire(self, size: int) -> int | None:
        free = self.free
        if free and size <= self.sizes[free[-1]] <= 4 * size:
            return free.pop()
        best = None
        for sid in free:
            capacity = self.sizes[sid]
            if capacity >= size and (best is None or capacity < self.sizes[best]):
                best = sid
        if best is not None and (self.sizes[best] <= 4 * size or len(self.maps) >= self.limit):
            free.remove(best)
            return best
        if self.broken:
            return None
        if len(self.maps) >= self.limit:
            if not free:
                return None
            victim = max(free, key=self.sizes.__getitem__)
            free.remove(victim)
            self.drop(victim)
            self.evicted.append(victim)
        return self.create(size)

    def create(self, size: int) -> int | None:
        sid = self.next_id
        self.next_id += 1
        capacity = -(-size // mmap.PAGESIZE) * mmap.PAGESIZE
        path = os.path.join(self.directory, str(sid))
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            # Reserve the memory now: on a full /dev/shm (small in containers) a plain
            # ftruncate would succeed and the first write would kill us with SIGBUS.
            os.posix_fallocate(fd, 0, capacity)
            self.maps[sid] = mmap.mmap(fd, capacity)
        except OSError:
            os.unlink(path)
            self.broken = True  # no more shared memory for this iteration: use the socket
            return None
        finally:
            os.close(fd)
        self.sizes[sid] = capacity
        self.views[sid] = {}
        return sid

    def targets(
        self,
        sid: int,
        body: bytes,
        arrays: list[tuple[Any, np.ndarray, str]],
        offsets: list[int],
    ) -> list[np.ndarray | None]:
        """Arrays on slot ``sid`` laid out as ``body`` says (built once per slot and layout)."""
        views = self.views[sid]
        found = views.get(body)
        if found is None:
            mapping = self.maps[sid]
            found = [
                None
                if where < 0
                else np.ndarray(
                    value.shape,
                    value.dtype,
                    mapping,
                    where,
                    order=order,  # type: ignore[arg-type]
                )
                for (_, value, order), where in zip(arrays, offsets, strict=True)
            ]
            if len(views) > 8:
                views.clear()
            views[body] = found
        return found

    def release(self, ids: Iterable[int]) -> None:
        for sid in ids:
            if sid in self.maps and sid not in self.free:
                self.free.append(sid)

    def drop(self, sid: int) -> None:
        del self.views[sid]
        mapping = self.maps.pop(sid)
        del self.sizes[sid]
        with contextlib.suppress(BufferError):
            mapping.close()

    def close(self) -> None:
        for sid in list(self.maps):
            self.drop(sid)


class _SlotRef(weakref.ref):
    """A weak reference to the base array of an item, knowing the slot it lives in."""

    __slots__ = ("sid",)
    sid: int


class _SlotReader:
    """The consumer's side: maps slot files once and builds items as views of them.

    Each item's arrays are views of one base array; when the last of them is gone, a weak
    reference callback queues the slot for release (sent to the worker with the next credit).
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.maps: dict[int, mmap.mmap] = {}
        self.refs: dict[int, _SlotRef] = {}
        self.released: collections.deque[int] = collections.deque()
        append = self.released.append

        def on_release(ref: _SlotRef) -> None:  # any thread, at any time: only append
            append(ref.sid)

        self.on_release = on_release

    def evict(self, ids: Iterable[int]) -> None:
        for sid in ids:
            self.maps.pop(sid, None)  # unmapped when no array views it any more
            self.refs.pop(sid, None)

    def base(self, sid: int, size: int) -> np.ndarray:
        """The memory of an item in slot ``sid`` (``size`` bytes, the whole slot)."""
        mapping = self.maps.get(sid)
        if mapping is None:
            path = os.path.join(self.directory, str(sid))
            fd = os.open(path, os.O_RDWR)
            try:
                mapping = self.maps[sid] = mmap.mmap(fd, size)
            finally:
                os.close(fd)
                os.unlink(path)
        base = np.frombuffer(mapping, np.uint8, size)
        ref = _SlotRef(base, self.on_release)
        ref.sid = sid
        self.refs[sid] = ref
        return base

    def drain(self) -> list[int]:
        released = self.released
        return [released.popleft() for _ in range(len(released))]

    def close(self) -> None:
        self.refs.clear()  # no more releases to report: there is no worker any more
        self.maps.clear()  # mappings still viewed by arrays live on with them
