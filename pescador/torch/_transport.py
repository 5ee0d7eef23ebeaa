"""Items from DataLoader workers to the training process through reused shared memory (private).

torch sends each tensor of a worker's batch through a new shared-memory segment, whose file
descriptor the training process fetches from a thread of the worker (which waits for the
worker's GIL). For large tensors that costs more than 1 ms a batch (fresh pages to fault in,
a round trip through a busy worker), small items pay ~0.5 ms each: more than many pipelines
spend making them.

So a worker's items are wrapped (:func:`wrap`) in dict and list subclasses that torch's
collate functions keep, and that pickle themselves: small tensors (under ``_MIN_BYTES``) as
numpy arrays inside the pickle; large ones copied into one *chunk* of the worker's
:class:`pescador.transport.Pool` (shared-memory files in a private directory on ``/dev/shm``
that the worker and the training process both map once and reuse). The training process
rebuilds plain dicts and lists of tensors that are views of the chunk
(:class:`pescador.transport.PoolMaps`); when the last of them is freed, the chunk goes back
to the worker. This module is only the shape of the pickle; the chunks, their limits and the
directories' life cycle are :mod:`pescador.transport`'s.

A chunk that cannot be had (a worker's files total at most ``_MAX_BYTES``, and at most half of
``/dev/shm``'s free space shared among the workers; ``/dev/shm`` full) sends the item inside
the pickle instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.utils.data

from ..transport import Pool, PoolMaps, pool

__all__ = ["wrap"]

_MIN_BYTES = 1 << 15
_MAX_BYTES = 1 << 30
_ALIGN = 64
_TAG = "torch-"


# ------------------------------------------------------------------------------ worker side
def _pool() -> Pool:
    info = torch.utils.data.get_worker_info()
    return pool(_TAG, _MAX_BYTES, 1 if info is None else info.num_workers)


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
    taken = None
    if any(big):
        shared = _pool()
        taken = shared.take(sum(sizes))
    encoded: list[Any] = []
    offset = 0
    for value, array, size in zip(values, arrays, sizes, strict=True):
        if array is None:
            encoded.append(("v", value))
        elif size and taken is not None:
            target = shared.buffer(taken[0], taken[1] + offset, array.nbytes)
            np.copyto(target.view(array.dtype).reshape(array.shape), array)
            encoded.append(("c", offset, array.dtype.str, array.shape))
            offset += size
        else:
            encoded.append(("a", np.ascontiguousarray(array)))
    if taken is None:
        return (None, 0, 0, 0, 0, tuple(encoded))
    return (shared.directory, *taken, offset, tuple(encoded))


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
_MAPS = PoolMaps()


def _unpack(
    directory: str | None, fid: int, offset: int, slot: int, used: int, encoded: Any
) -> list[Any]:
    # The item's own array over the chunk: the views made from it (and the tensors over them)
    # keep it as their base, and the chunk goes back once it is gone.
    item = None if directory is None else _MAPS.base(directory, fid, offset, slot, used)
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
