"""The Ray actor that runs one share of a :class:`~pescador.ray.RayStreamer` (private).

An actor is the Ray counterpart of a :class:`~pescador.parallel.ParallelStreamer` worker
process: it records which consumer it is (:func:`pescador._sharding.set_worker`), so that the
outermost mux of the stream takes its share ``streamers[index::count]`` when it opens, with a
seed derived from the iteration's seed, exactly as in a worker process. The consumer asks it for
items with :meth:`ShareActor.next_batch`, many per call (a call costs about a millisecond);
each answer carries the stream's state after its last item, so the consumer can describe
exactly what it has delivered.

Nothing the stream raises escapes a call: the items produced before it are returned with an
error report (:func:`pescador.transport.error_report`), which the consumer re-raises as
:class:`~pescador.exceptions.WorkerError` with the remote traceback, as ParallelStreamer does.
"""

from __future__ import annotations

import contextlib
import pickle
import time
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from .. import transport as _transport
from .._seeds import Seed
from .._sharding import WorkerInfo, set_worker
from ..exceptions import PescadorError

__all__ = ["Batch", "Job", "ShareActor"]


class Job(NamedTuple):
    """What an actor is to do: the share ``consumer`` of ``consumers`` (in part ``rank`` of
    ``world_size``) of the stream, with ``seed``, one pass or passes again and again
    (``cycle``), from ``resume`` (``{"state", "skip"}``) or from the start."""

    consumer: int
    consumers: int
    rank: int
    world_size: int
    seed: list[Any]  # Seed.to_json()
    cycle: bool
    resume: Mapping[str, Any] | None


class Batch(NamedTuple):
    """One answer: items, the stream's state after the last of them, whether the share has
    ended, and the error report that follows the items (None if none)."""

    items: list[Any]
    state: dict[str, Any] | None
    ended: bool
    error: dict[str, Any] | None


def nbytes(item: Any) -> int:
    """The bytes of the arrays of an item (an array, or a dict, tuple or list of them)."""
    if isinstance(item, np.ndarray):
        return item.nbytes
    if isinstance(item, dict):
        item = item.values()
    elif not isinstance(item, (tuple, list)):
        return 0
    return sum(v.nbytes for v in item if isinstance(v, np.ndarray))


class ShareActor:
    """Runs one share of a stream (see the module). Ray makes it an actor (``ray.remote``)."""

    def __init__(self, job: Job, stream: bytes) -> None:
        # Nothing here may raise: errors of the stream are reported by the first call.
        self._job = job
        self._stream: bytes | None = stream
        self._it: Any = None
        self._items: Iterator[Any] | None = None
        self._ended = False

    def _open(self) -> Iterator[Any]:
        job = self._job
        assert self._stream is not None
        try:
            stream = pickle.loads(self._stream)
        except Exception as exc:
            raise PescadorError(
                f"the actor cannot unpickle its stream: {type(exc).__name__}: {exc} (its "
                "functions must be importable on the cluster's nodes, or defined in the "
                "driver's __main__)"
            ) from exc
        self._stream = None
        set_worker(WorkerInfo(job.consumer, job.consumers, job.rank, job.world_size))
        seed = Seed.from_json(job.seed).child(job.consumer)
        # (A cycle's passes each open the outermost mux anew, and each takes the share.)
        it = stream._call((), {"cycle": True}, seed) if job.cycle else stream._iterate(None, seed)
        self._it = it
        skip = 0
        if job.resume is not None:
            if job.resume.get("state") is not None:
                it._load(job.resume["state"])
            skip = job.resume.get("skip", 0)
        items = iter(it)
        for _ in range(skip):  # (a resumed share replays at most one answer's items)
            next(items)
        return items

    def next_batch(self, max_items: int, max_bytes: int, max_seconds: float) -> Batch:
        """Up to ``max_items`` items: fewer once they hold ``max_bytes`` bytes of arrays, or
        once ``max_seconds`` have passed (at least one, unless the share has ended)."""
        items: list[Any] = []
        if self._ended:
            return Batch(items, None, True, None)
        try:
            source = self._items
            if source is None:
                source = self._items = self._open()
            size = 0
            deadline = time.perf_counter() + max_seconds
            clock = time.perf_counter
            append = items.append
            for item in source:
                append(item)
                size += nbytes(item)
                if len(items) >= max_items or size >= max_bytes or clock() >= deadline:
                    break
            else:
                self._ended = True
            return Batch(items, self._it._state_dict(), self._ended, None)
        except Exception as exc:
            self._ended = True
            report = _transport.error_report(exc)
            self.close()
            return Batch(items, None, True, report)

    def close(self) -> None:
        """Close the stream (its generators run their own clean-up)."""
        it, self._it = self._it, None
        self._items = None
        if it is not None:
            with contextlib.suppress(Exception):  # its clean-up failed: the stream is over
                it.close()

    def __repr__(self) -> str:  # names the actor in Ray's messages
        return f"pescador.ray actor {self._job.consumer} of {self._job.consumers}"
