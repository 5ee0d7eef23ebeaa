"""Which consumer of a split stream this is, and how a stream is split (private).

A *consumer* is one process (or DataLoader worker) running a share of a stream: the workers of
a :class:`~pescador.parallel.ParallelStreamer`, or the ``world_size x num_workers`` DataLoader
workers of :class:`pescador.torch.StreamDataset`. Kept apart from :mod:`pescador.parallel` so
that the muxes can ask "am I the outermost mux in a worker?" without importing multiprocessing
machinery (nor torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .exceptions import PescadorError


@dataclass(frozen=True)
class WorkerInfo:
    """Which consumer this is: ``index`` in ``range(n_workers)``, among all consumers.

    ``n_workers`` counts every consumer that shares the stream: the workers of a
    ParallelStreamer, or, in a :class:`pescador.torch.StreamDataset`, the DataLoader workers of
    every rank (``world_size * max(1, num_workers)``; consumer ``rank * max(1, num_workers) +
    worker``). ``rank`` and ``world_size`` are the distributed rank of this process and the
    number of ranks (0 and 1 outside distributed training).
    """

    index: int
    n_workers: int
    rank: int = 0
    world_size: int = 1


_WORKER: WorkerInfo | None = None
_SHARD_PENDING = False


def set_worker(info: WorkerInfo) -> None:
    """Called once in a worker process, before its stream starts."""
    global _WORKER, _SHARD_PENDING
    _WORKER = info
    _SHARD_PENDING = True


def worker_info() -> WorkerInfo | None:
    """In a consumer of a split stream, which one it is; ``None`` elsewhere.

    Consumers are the workers of a :class:`~pescador.parallel.ParallelStreamer`, and the
    DataLoader workers (or, with ``num_workers=0``, the training process while the stream
    runs) of a :class:`pescador.torch.StreamDataset`, on every rank. ``index`` and
    ``n_workers`` count all consumers; ``rank`` and ``world_size`` are the distributed ones.

    A generator function can use it to read only its share of a source:

    >>> import pescador
    >>> def lines(paths):
    ...     info = pescador.worker_info()
    ...     mine = paths if info is None else paths[info.index :: info.n_workers]
    ...     yield from mine
    >>> list(pescador.Streamer(lines, ["a", "b", "c"]))
    ['a', 'b', 'c']
    """
    return _WORKER


def swap_worker(info: WorkerInfo | None, shard: bool = False) -> WorkerInfo | None:
    """Make ``info`` this process's worker information (``shard``: the next outermost mux
    opened takes its share); return the previous one, to put back with ``swap_worker``."""
    global _WORKER, _SHARD_PENDING
    previous = _WORKER
    _WORKER = info
    _SHARD_PENDING = shard and info is not None
    return previous


def take_shard() -> WorkerInfo | None:
    """For the outermost mux opened in a worker: the share to run (given out once)."""
    global _SHARD_PENDING
    if _SHARD_PENDING:
        _SHARD_PENDING = False
        return _WORKER
    return None


def shard_pending() -> bool:
    """Whether the next outermost mux opened will take its share (see :func:`take_shard`)."""
    return _SHARD_PENDING


def rearm_shard() -> None:
    """Make the next mux opened take its share again: a cycle's next pass in a worker, whose
    previous pass's outermost mux took it (each pass opens that mux anew)."""
    global _SHARD_PENDING
    _SHARD_PENDING = _WORKER is not None


def check_start_method(start_method: str | None) -> None:
    """Raise :class:`~pescador.exceptions.PescadorError` unless ``start_method`` is None or a
    multiprocessing start method this platform has."""
    if start_method is None:
        return
    import multiprocessing

    available = multiprocessing.get_all_start_methods()
    if start_method not in available:
        raise PescadorError(
            f"start_method={start_method!r} is not available here; expected one of "
            f"{', '.join(available)}"
        )


# ------------------------------------------------------------------------- splitting a stream
def outermost_mux(stream: Any, depth: int = 0) -> Any:
    """The mux that a split takes shares of: ``stream`` itself if it is a mux, else the first
    mux found among a Streamer's source and arguments (``Streamer(buffer_stream, mux, 32)``),
    depth first; ``None`` if there is none."""
    from .core import Streamer
    from .mux import BaseMux

    if isinstance(stream, BaseMux):
        return stream
    if depth > 8 or not isinstance(stream, Streamer):
        return None
    for candidate in (stream.streamer, *stream.args, *stream.kwargs.values()):
        found = outermost_mux(candidate, depth + 1)
        if found is not None:
            return found
    return None


def share_weights(stream: Any, k: int) -> list[float]:
    """The total weight of each of ``k`` consumers' shares ``streamers[i::k]`` of the stream's
    outermost mux (equal if there is none, or its streamers are not a list)."""
    from .mux._args import weights_or_uniform  # here: the muxes import this module

    mux = outermost_mux(stream)
    if mux is None:
        return [1.0] * k
    n = len(mux.streamers) if isinstance(mux.streamers, list) else k
    w = weights_or_uniform(getattr(mux, "weights", None), n).tolist()
    return [sum(w[i::k]) for i in range(k)]
