"""Ray: run a pescador stream in actors anywhere in a Ray cluster, exactly resumable.

:class:`RayStreamer` is :class:`~pescador.parallel.ParallelStreamer` past one machine: the
stream's outermost mux is split across Ray actors placed anywhere in the cluster (no item
produced twice, the mux's proportions kept), the merge is deterministic for a seed and an actor
count, and the state describes the items delivered, so an iteration resumes exactly, in this
process or another one. :meth:`RayStreamer.split` gives one stream per trainer rank, each with
its own actors and state. The user guide is ``docs/scaling.md``.

- **Calls.** A Ray call costs about a millisecond, so an actor returns many items per call
  (``items_per_call``), and each actor has a bounded number of calls in flight
  (``calls_in_flight``).
- **Arrays** travel through Ray's object store and come out without a copy, read-only.
- **Failures.** An exception in an actor is re-raised as
  :class:`~pescador.exceptions.WorkerError` with the remote traceback (as ParallelStreamer
  does); an actor or node that dies raises ``WorkerError`` at once; closing or dropping the
  iteration kills its actors.

Needs Ray (``pip install 'pescador[ray]'``); ``import pescador`` alone never imports it. Ray
starts a local instance on first use unless ``ray.init`` was called (or ``RAY_ADDRESS`` names a
cluster).
"""

from __future__ import annotations

try:
    import ray as _ray  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("pescador.ray needs Ray: pip install 'pescador[ray]'") from exc

from ._streamer import RayStreamer

__all__ = ["RayStreamer"]

RayStreamer.__module__ = __name__  # pickles and reprs name the public module
