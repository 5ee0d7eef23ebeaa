"""RayStreamer: the recipe, its options and ``split`` (private; see :mod:`pescador.ray`; an
iteration is a :class:`~pescador.ray._iterator.RayIterator`)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .._balance import positive_streamers, split_for
from .._iterator import check_max_iter
from .._seeds import InheritedSeed, check_random_state
from ..core import Streamer, _Plan
from ..exceptions import PescadorError
from ..transport import check_seconds
from ._iterator import RayIterator

__all__ = ["RayStreamer"]

#: Options a RayStreamer sets on its actors unless told otherwise: no restart (a restarted
#: actor would have lost its place in the stream), spread over the cluster's nodes.
_ACTOR_DEFAULTS = {"max_restarts": 0, "max_task_retries": 0, "scheduling_strategy": "SPREAD"}


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PescadorError(f"{name}={value!r} must be a positive integer")
    return value


class RayStreamer(Streamer):
    """Run ``stream`` in ``n_actors`` Ray actors, anywhere in a Ray cluster, and merge their
    output.

    The contract of :class:`~pescador.parallel.ParallelStreamer`, past one machine: the
    outermost mux of the pipeline is split across the actors (actor ``j`` runs the streamers
    ``j, j + n_actors, ...`` with a seed derived from the iteration's seed), so no item is
    produced twice; each next item comes from an actor drawn in proportion to the total weight
    of its share, so the mux's proportions hold, and the output is deterministic for a seed and
    an actor count (the same items, in the same order, as ``ParallelStreamer(stream,
    n_actors)``). A stream without a mux runs whole in every actor (it can shard its own
    sources with :func:`pescador.worker_info`).

    Parameters
    ----------
    stream : Streamer
        The pipeline to run (a mux, a Streamer, ``Streamer(buffer_stream, mux, 32)``...). It
        is pickled to the actors with Ray's cloudpickle: its functions must be importable on
        the cluster's nodes (or defined in the driver's ``__main__``), and pescador installed
        there.
    n_actors : int
        How many actors.
    actor_options : dict, optional
        Passed to Ray's ``.options()`` for every actor: resources (``num_cpus``, ``memory``,
        ``resources``), ``label_selector``, ``scheduling_strategy`` (default ``"SPREAD"``:
        over the nodes), ``runtime_env``... Restarts are refused (``max_restarts`` and
        ``max_task_retries`` must stay 0: a restarted actor has lost its place).
    random_state : None, int, RandomState, Generator or SeedSequence
        Seeds the merge and the actors' shares (``None``: the outermost mux's
        ``random_state``; if unset, fresh entropy from numpy's global RNG).
    ordered : bool
        Deterministic merge (default), or items from whichever actor has some ready (faster
        when actors are uneven; not reproducible, still exactly resumable).
    items_per_call : int
        Most items an actor returns per call (a call costs about a millisecond). A call also
        returns once its items hold 8 MiB of arrays, or after 50 ms with at least one item.
    calls_in_flight : int
        Calls each actor may have running or answered ahead of the consumer: the prefetch,
        about ``calls_in_flight * items_per_call`` items per actor.
    stall_timeout : float, optional
        Seconds to wait for an actor's answer before raising
        :class:`~pescador.exceptions.WorkerError` naming the actor (one stopped, deadlocked,
        or waiting for resources the cluster does not have). ``None`` (default): as long as it
        takes; an actor or node that dies raises at once either way.

    Notes
    -----
    Items travel through Ray's object store; arrays come out of it without a copy, as
    **read-only** views (``arr.flags.writeable`` is False: copy one to modify it). An item
    held keeps its answer's object (up to ``items_per_call`` items) in the store.

    State: per actor, its stream's state after its last answer delivered in full and the items
    delivered since; a resume (``state=``, or in another process) replays at most one answer
    per actor. Failures: an exception in an actor is re-raised as
    :class:`~pescador.exceptions.WorkerError` with the remote traceback (a ``DataError`` as
    well); an actor or node that dies raises ``WorkerError``. ``close()``, the end of the
    stream, ``break``, ``del`` or an error kill the iteration's actors at once, which frees
    their objects.

    Examples
    --------
    >>> import pescador, pescador.ray, ray
    >>> mux = pescador.ChainMux([pescador.Streamer("abc"), pescador.Streamer("xyz")])
    >>> sorted(pescador.ray.RayStreamer(mux, n_actors=2))  # doctest: +SKIP
    ['a', 'b', 'c', 'x', 'y', 'z']
    """

    def __init__(
        self,
        stream: Any,
        n_actors: int = 4,
        *,
        actor_options: Mapping[str, Any] | None = None,
        random_state: Any = None,
        ordered: bool = True,
        items_per_call: int = 64,
        calls_in_flight: int = 2,
        stall_timeout: float | None = None,
    ) -> None:
        from ..parallel import ParallelStreamer

        if isinstance(stream, (ParallelStreamer, RayStreamer)):
            raise PescadorError(
                f"RayStreamer: pass the stream itself, not a {type(stream).__name__}: the "
                "actors run it, each its own share"
            )
        if not isinstance(stream, Streamer):
            stream = Streamer(stream)
        options = dict(_ACTOR_DEFAULTS)
        if actor_options is not None:
            if not isinstance(actor_options, Mapping):
                raise PescadorError(
                    f"actor_options={actor_options!r} must be a dict of Ray actor options"
                )
            for name in ("max_restarts", "max_task_retries"):
                if actor_options.get(name, 0) != 0:
                    raise PescadorError(
                        f"actor_options: {name}={actor_options[name]!r} is not supported: a "
                        "restarted actor has lost its place in the stream (resume from a "
                        "state instead)"
                    )
            options.update(actor_options)
        check_seconds("stall_timeout", stall_timeout)
        self.stream = stream
        self.n_actors = _positive("n_actors", n_actors)
        self.actor_options = None if actor_options is None else dict(actor_options)
        self.random_state = check_random_state(random_state)
        self.ordered = bool(ordered)
        self.items_per_call = _positive("items_per_call", items_per_call)
        self.calls_in_flight = _positive("calls_in_flight", calls_in_flight)
        self.stall_timeout = None if stall_timeout is None else float(stall_timeout)
        #: Items per iteration of a part made by ``split(n, length=...)`` (None: its share once).
        self.length: int | None = None
        self._part = (0, 1)  # (part, parts) of a split stream
        self._options = options
        self._init_stream(_Plan.own(stream))

    def __repr__(self) -> str:
        part, parts = self._part
        where = "" if parts == 1 else f", part={part} of {parts}, length={self.length}"
        return f"RayStreamer({self.stream!r}, n_actors={self.n_actors}{where})"

    @property
    def part(self) -> tuple[int, int]:
        """``(part, parts)``: which of the streams of ``split(parts)`` this is; ``(0, 1)`` for
        a stream that was not split."""
        return self._part

    def split(self, n: int, *, length: int | None = None) -> list[RayStreamer]:
        """``n`` streams for ``n`` consumers (trainer ranks), disjoint, each with its own
        actors and its own exactly resumable state.

        Part ``p`` runs the share ``p`` of ``n`` of the outermost mux, split in turn among its
        own ``n_actors`` actors. The shares are balanced by weight (as in
        :mod:`pescador.torch`): the parts deliver alike, and together they keep the mux's
        proportions. Each part is a RayStreamer: pickle it to the rank that consumes it (a
        Ray Train worker, a ``torch.distributed`` process); its iterations start their own
        actors there.

        Parameters
        ----------
        n : int
            How many parts.
        length : int, optional
            Items per iteration of every part (equal lengths, as collective training steps
            need): each actor then cycles its share, restarting it as often as needed.
            ``None``: each part runs its share once (equal lengths only for endless streams).

        Raises
        ------
        PescadorError
            If this stream is itself a part, or its outermost mux has fewer than ``n``
            streamers that can yield items.

        Examples
        --------
        >>> import pescador, pescador.ray
        >>> mux = pescador.StochasticMux([pescador.Streamer("ab")] * 4, 2, 8, random_state=0)
        >>> [p.part for p in pescador.ray.RayStreamer(mux, 2).split(2, length=100)]
        [(0, 2), (1, 2)]
        """
        _positive("n", n)
        if length is not None:
            length = _positive("length", length)
        if self._part[1] != 1:
            raise PescadorError(f"{self!r} is already a part of a split stream")
        streams = positive_streamers(self.stream)
        if streams is not None and streams < n:
            raise PescadorError(
                f"split({n}): the stream's outermost mux has {streams} streamer"
                f"{'s' if streams != 1 else ''} that can yield items: each part needs at "
                "least one (split into fewer parts, or use more, smaller streamers)"
            )
        laid = split_for(self.stream, n)
        parts = []
        for p in range(n):
            part = copy.copy(self)
            part.stream = laid
            part.length = length
            part._part = (p, n)
            part._init_stream(_Plan.own(laid))
            parts.append(part)
        return parts

    def _iterate(self, max_iter: Any, seed: InheritedSeed, counted: bool = True) -> Any:
        if self.length is not None:
            limit = check_max_iter(max_iter)
            max_iter = self.length if limit is None else min(limit, self.length)
        return RayIterator(self, max_iter, seed)
