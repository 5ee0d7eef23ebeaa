"""Which worker process this is, for streams run by ParallelStreamer (private).

Kept apart from :mod:`pescador.parallel` so that the muxes can ask "am I the outermost mux in
a worker?" without importing multiprocessing machinery.
"""

from __future__ import annotations

from dataclasses import dataclass

from .exceptions import PescadorError


@dataclass(frozen=True)
class WorkerInfo:
    """Which worker process this is: ``index`` in ``range(n_workers)``."""

    index: int
    n_workers: int


_WORKER: WorkerInfo | None = None
_SHARD_PENDING = False


def set_worker(info: WorkerInfo) -> None:
    """Called once in a worker process, before its stream starts."""
    global _WORKER, _SHARD_PENDING
    _WORKER = info
    _SHARD_PENDING = True


def worker_info() -> WorkerInfo | None:
    """In a :class:`~pescador.parallel.ParallelStreamer` worker, its index and the number of
    workers; ``None`` elsewhere.

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


def take_shard() -> WorkerInfo | None:
    """For the outermost mux opened in a worker: the share to run (given out once)."""
    global _SHARD_PENDING
    if _SHARD_PENDING:
        _SHARD_PENDING = False
        return _WORKER
    return None


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
