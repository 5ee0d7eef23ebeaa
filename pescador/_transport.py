"""Shared-memory transport of items between a worker process and the consumer (private).

Array payloads never travel through a pipe and are never pickled. A worker copies each item's
arrays (one ``memcpy`` each) into a *slot*: a region of a memory-mapped file in a directory on
``/dev/shm`` (RAM) that the consumer owns. Only a small description (keys, dtypes, shapes,
offsets, and any non-array values) is pickled and sent. The consumer maps the same file and
builds the arrays as views of it: no copy on the consumer's side.

Lifetime: all of an item's arrays are views of one base array; when the consumer's last
reference to them goes, a finaliser returns the slot to the worker for reuse. Arrays are
writable (the slot belongs to the consumer until released). Every file lives in the consumer's
private directory, which the consumer deletes when it closes, so no segment outlives it, even
when a worker is killed.
"""

from __future__ import annotations

import collections
import contextlib
import mmap
import os
import pickle
import shutil
import sys
import tempfile
import threading
import weakref
from typing import Any

import numpy as np

#: Alignment of arrays inside a slot (cache line; enough for every dtype).
ALIGN = 64
#: Smallest slot file a worker creates.
MIN_SLOT = 1 << 20


def make_directory() -> str:
    """A private directory for slot files: in RAM (``/dev/shm``) where available."""
    base = "/dev/shm" if sys.platform.startswith("linux") and os.path.isdir("/dev/shm") else None
    return tempfile.mkdtemp(prefix="pescador-", dir=base)


def remove_directory(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


class SlotWriter:
    """The worker's side: a pool of slot files, reused once the consumer releases them."""

    def __init__(self, directory: str, worker: int) -> None:
        self.directory = directory
        self.worker = worker
        self.files: dict[int, tuple[mmap.mmap, int]] = {}  # id -> (mapping, capacity)
        self.free: list[int] = []
        self.next_id = 0

    def _slot(self, size: int) -> int:
        best = None
        for fid in self.free:
            capacity = self.files[fid][1]
            if capacity >= size and (best is None or capacity < self.files[best][1]):
                best = fid
        if best is not None:
            self.free.remove(best)
            return best
        fid = self.next_id
        self.next_id += 1
        capacity = max(MIN_SLOT, 1 << (size - 1).bit_length())
        path = os.path.join(self.directory, f"w{self.worker}-{fid}")
        with open(path, "w+b") as f:
            f.truncate(capacity)
            mapping = mmap.mmap(f.fileno(), capacity)
        self.files[fid] = (mapping, capacity)
        return fid

    def release(self, fid: int) -> None:
        if fid in self.files:
            self.free.append(fid)

    def pack(self, item: Any) -> Any:
        """The picklable description of ``item``, its arrays copied into a slot."""
        if isinstance(item, dict):
            arrays = [
                (k, v)
                for k, v in item.items()
                if isinstance(v, np.ndarray) and not v.dtype.hasobject and v.nbytes
            ]
            if arrays:
                size = sum(_aligned(v.nbytes) for _, v in arrays)
                fid = self._slot(size)
                mapping = self.files[fid][0]
                layout = []
                offset = 0
                for key, value in arrays:
                    target = np.ndarray(value.shape, value.dtype, mapping, offset)
                    np.copyto(target, value, casting="no")
                    layout.append((key, value.dtype.str, value.shape, offset))
                    offset += _aligned(value.nbytes)
                rest = {k: v for k, v in item.items() if not _in(k, arrays)}
                order = list(item)
                return ("slot", fid, size, layout, rest, order)
        return ("plain", item)

    def close(self) -> None:
        for mapping, _ in self.files.values():
            mapping.close()
        self.files.clear()


def _in(key: Any, arrays: list[tuple[Any, np.ndarray]]) -> bool:
    return any(k is key or k == key for k, _ in arrays)


class SlotReader:
    """The consumer's side: maps slot files and rebuilds items as views of them."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.maps: dict[tuple[int, int], mmap.mmap] = {}
        # Slots whose arrays died, per worker: sent back with the next credit. Appended from
        # finalisers (any thread), drained by the consumer.
        self.released: dict[int, collections.deque[int]] = collections.defaultdict(
            collections.deque
        )
        self.lock = threading.Lock()

    def _mapping(self, worker: int, fid: int) -> mmap.mmap:
        key = (worker, fid)
        mapping = self.maps.get(key)
        if mapping is None:
            path = os.path.join(self.directory, f"w{worker}-{fid}")
            with open(path, "r+b") as f:
                mapping = mmap.mmap(f.fileno(), 0)
            self.maps[key] = mapping
        return mapping

    def unpack(self, worker: int, message: Any) -> Any:
        if message[0] == "plain":
            return message[1]
        _, fid, size, layout, rest, order = message
        base = np.frombuffer(self._mapping(worker, fid), np.uint8, size)
        arrays = {
            key: base[offset : offset + _nbytes(dtype, shape)].view(dtype).reshape(shape)
            for key, dtype, shape, offset in layout
        }
        weakref.finalize(base, self.released[worker].append, fid)
        return {k: arrays[k] if k in arrays else rest[k] for k in order}

    def drain(self, worker: int) -> list[int]:
        released = self.released[worker]
        out = []
        while released:
            out.append(released.popleft())
        return out

    def close(self) -> None:
        for mapping in self.maps.values():
            with contextlib.suppress(BufferError):  # arrays still view it: unmapped with them
                mapping.close()
        self.maps.clear()


def _nbytes(dtype: str, shape: tuple[int, ...]) -> int:
    return int(np.dtype(dtype).itemsize * int(np.prod(shape, dtype=np.int64)))


def dumps(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
