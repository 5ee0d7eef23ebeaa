"""Items from DataLoader workers to the training process through reused shared memory (private).

torch sends each tensor of a worker's batch through a new shared-memory segment, whose file
descriptor the training process fetches from a thread of the worker (which waits for the
worker's GIL). For large tensors that costs more than 1 ms a batch (fresh pages to fault in,
a round trip through a busy worker), small items pay ~0.5 ms each: more than many pipelines
spend making them.

So a worker's items are wrapped (:func:`wrap`) in dict and list subclasses that torch's
collate functions keep, and that pickle themselves: small tensors (under ``_MIN_BYTES``) as
numpy arrays inside the pickle; large ones copied into a *chunk*, a file of a private
directory on ``/dev/shm`` that the worker and the training process both map once and reuse.
The training process rebuilds plain dicts and lists of tensors that are views of the chunk;
when the last of them is freed, a flag shared with the worker marks the chunk free again.

A chunk is allocated in full when created (``posix_fallocate``), so a full ``/dev/shm``
fails there, and the item travels inside the pickle instead. A worker keeps at most
``_MAX_CHUNKS`` chunks and ``_MAX_BYTES`` bytes. Its directory is removed when it exits, and
by the training process at exit (for a worker killed before cleaning up); the training process
drops its mappings of a directory once it is gone.
"""

from __future__ import annotations

import atexit
import contextlib
import mmap
import os
import shutil
import tempfile
import threading
import weakref
from multiprocessing import util as _mp_util
from typing import Any

import numpy as np
import torch

__all__ = ["wrap"]

_MIN_BYTES = 1 << 15
_MAX_CHUNKS = 64
_MAX_BYTES = 1 << 30
_SMALLEST_CHUNK = 1 << 16
_ALIGN = 64
_SHM = "/dev/shm"


# ------------------------------------------------------------------------------ worker side
class _Pool:
    """A worker's chunks: files in its own directory, and one flag byte per chunk (1: in the
    training process's hands)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        where = _SHM if os.path.isdir(_SHM) else None
        self.directory = tempfile.mkdtemp(prefix=f"pescador-torch-{self.pid}-", dir=where)
        _mp_util.Finalize(self, shutil.rmtree, args=(self.directory, True), exitpriority=10)
        self.flags = _map(os.path.join(self.directory, "flags"), _MAX_CHUNKS, create=True)
        self.chunks: list[np.ndarray] = []
        self.total = 0
        self.lock = threading.Lock()
        self.full = False

    def take(self, nbytes: int) -> int | None:
        """A free chunk of at least ``nbytes`` (marked taken), or None."""
        with self.lock:
            best = None
            for i, chunk in enumerate(self.chunks):
                fits = self.flags[i] == 0 and len(chunk) >= nbytes
                if fits and (best is None or len(chunk) < len(self.chunks[best])):
                    best = i
            if best is None:
                best = self._new(nbytes)
            if best is not None:
                self.flags[best] = 1
            return best

    def _new(self, nbytes: int) -> int | None:
        size = max(_SMALLEST_CHUNK, 1 << (nbytes - 1).bit_length())
        if self.full or len(self.chunks) >= _MAX_CHUNKS or self.total + size > _MAX_BYTES:
            return None
        try:
            chunk = _map(self.path(len(self.chunks)), size, create=True)
        except OSError:  # /dev/shm is full: items go inside the pickle from now on
            self.full = True
            return None
        self.chunks.append(chunk)
        self.total += size
        return len(self.chunks) - 1

    def path(self, index: int) -> str:
        return os.path.join(self.directory, str(index))


def _map(path: str, size: int, create: bool = False) -> np.ndarray:
    """A writable uint8 array over a shared file (created and allocated in full if asked)."""
    flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
    fd = os.open(path, flags, 0o600)
    try:
        if create:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, 0, size)
            else:  # pragma: no cover - not Linux
                os.ftruncate(fd, size)
        return np.frombuffer(mmap.mmap(fd, size), dtype=np.uint8)
    finally:
        os.close(fd)


_POOL: _Pool | None = None


def _pool() -> _Pool:
    global _POOL
    if _POOL is None or _POOL.pid != os.getpid():
        _POOL = _Pool()
    return _POOL


def _as_array(value: Any) -> np.ndarray | None:
    """A CPU tensor's data as a numpy array (sharing memory), if it has a numpy dtype."""
    if (
        type(value) is not torch.Tensor
        or value.device.type != "cpu"
        or value.requires_grad
        or value.layout != torch.strided
    ):
        return None
    try:
        return value.numpy()
    except (TypeError, RuntimeError):  # bfloat16 and other types numpy lacks
        return None


def _pack(values: list[Any]) -> tuple[Any, ...]:
    """``values`` encoded for the pickle: ``("c", offset, dtype, shape)`` for an array copied
    into the chunk, ``("a", array)`` for a small array, ``("v", value)`` for anything else."""
    arrays = [_as_array(v) for v in values]
    big = [a is not None and a.nbytes >= _MIN_BYTES for a in arrays]
    sizes = [-(-a.nbytes // _ALIGN) * _ALIGN if b else 0 for a, b in zip(arrays, big, strict=True)]  # type: ignore[union-attr]
    chunk = None
    pool = None
    if any(big):
        pool = _pool()
        chunk = pool.take(sum(sizes))
    encoded: list[Any] = []
    offset = 0
    for value, array, size in zip(values, arrays, sizes, strict=True):
        if array is None:
            encoded.append(("v", value))
        elif size and chunk is not None and pool is not None:
            target = pool.chunks[chunk][offset : offset + array.nbytes]
            np.copyto(target.view(array.dtype).reshape(array.shape), array)
            encoded.append(("c", offset, array.dtype.str, array.shape))
            offset += size
        else:
            encoded.append(("a", np.ascontiguousarray(array)))
    if chunk is None or pool is None:
        return (None, None, 0, 0, tuple(encoded))
    return (pool.directory, chunk, len(pool.chunks[chunk]), offset, tuple(encoded))


class _SharedDict(dict):
    """A worker's dict item: pickles its tensors through the worker's chunks."""

    __slots__ = ()

    def __copy__(self) -> _SharedDict:  # torch's collate functions copy it, then update it
        return _SharedDict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[Any, Any]:
        import copy

        return copy.deepcopy(dict(self), memo)

    def __reduce__(self) -> Any:
        keys = list(self)
        return (_rebuild_dict, (keys, *_pack([self[k] for k in keys])))


class _SharedList(list):
    """A worker's tuple or list item (it arrives as a list, as torch makes of a tuple)."""

    __slots__ = ()

    def __copy__(self) -> _SharedList:
        return _SharedList(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        import copy

        return copy.deepcopy(list(self), memo)

    def __reduce__(self) -> Any:
        return (_rebuild_list, _pack(list(self)))


def wrap(item: Any) -> Any:
    """``item`` ready to travel from a DataLoader worker (dicts, tuples and lists)."""
    kind = type(item)
    if kind is dict:
        return _SharedDict(item)
    if kind is tuple or kind is list:
        return _SharedList(item)
    return item


# ------------------------------------------------------------------------------ main side
_LOCK = threading.Lock()
_MAPS: dict[str, dict[int, np.ndarray]] = {}  # directory -> chunk -> mapping
_FLAGS: dict[str, np.ndarray] = {}


def _forget_gone() -> None:
    """Drop the mappings of directories whose worker has removed them (it has exited)."""
    for directory in [d for d in _MAPS if not os.path.isdir(d)]:
        del _MAPS[directory]
        _FLAGS.pop(directory, None)


@atexit.register
def _remove_all() -> None:
    """At exit, remove the directories of workers that did not (killed ones)."""
    for directory in list(_MAPS):
        shutil.rmtree(directory, ignore_errors=True)


def _chunk(directory: str, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    with _LOCK:
        chunks = _MAPS.get(directory)
        if chunks is None:
            _forget_gone()
            chunks = _MAPS[directory] = {}
            _FLAGS[directory] = _map(os.path.join(directory, "flags"), _MAX_CHUNKS)
        chunk = chunks.get(index)
        if chunk is None or len(chunk) != size:
            chunk = chunks[index] = _map(os.path.join(directory, str(index)), size)
        return chunk, _FLAGS[directory]


def _release(flags: np.ndarray, index: int) -> None:
    with contextlib.suppress(ValueError):  # the mapping is closed: nothing to release
        flags[index] = 0


def _unpack(directory: str | None, index: int, size: int, used: int, encoded: Any) -> list[Any]:
    item = None
    if directory is not None:
        chunk, flags = _chunk(directory, index, size)
        # This item's own array over the mapping: the views made from it (and the tensors
        # over them) keep it, and not the chunk's array, as their base.
        item = np.frombuffer(chunk.base, dtype=np.uint8, count=used)  # type: ignore[arg-type]
        weakref.finalize(item, _release, flags, index)
    out: list[Any] = []
    for entry in encoded:
        if entry[0] == "v":
            out.append(entry[1])
        elif entry[0] == "a":
            out.append(torch.from_numpy(entry[1]))
        else:
            _, offset, dtype, shape = entry
            dt = np.dtype(dtype)
            n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
            assert item is not None
            out.append(torch.from_numpy(item[offset : offset + n].view(dt).reshape(shape)))
    return out


def _rebuild_dict(keys: list[Any], *packed: Any) -> dict[Any, Any]:
    return dict(zip(keys, _unpack(*packed), strict=True))


def _rebuild_list(*packed: Any) -> list[Any]:
    return _unpack(*packed)
