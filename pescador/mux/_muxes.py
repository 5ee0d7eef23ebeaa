"""The four muxes' recipes: their arguments, shapes and policies (private).

See :mod:`pescador.mux` for the overview.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from itertools import islice
from typing import Any

from .._seeds import RandomStateLike, Seed
from ..core import Streamer
from ..exceptions import PescadorError
from ._args import (
    as_streamer,
    check_choice,
    check_n_active,
    check_rate,
    weights_or_uniform,
)
from ._loop import Policy
from ._policies import ChainPolicy, RoundRobinPolicy, ShuffledPolicy
from ._slots import SlotTable
from ._stochastic import StochasticPolicy

__all__ = ["ChainMux", "RoundRobinMux", "ShuffledMux", "StochasticMux"]


from ._base import BaseMux, _Weighted


class StochasticMux(_Weighted):
    """Sample from a bounded, changing set of active streamers.

    ``n_active`` slots each run one streamer, drawn with probability proportional to its
    weight among the candidates of the ``mode``, for a random budget of items with mean
    ``rate``; then the slot is refilled. Each item comes from an active slot drawn with
    probability proportional to its streamer's weight. So, with a rate, the long-run share of
    items from streamer ``i`` is proportional to ``weights[i]``; and an iteration starts with
    the slots a long run would have (``with_replacement`` and ``single_active``), so that this
    is the expected share of every item from the first.

    Parameters
    ----------
    streamers : iterable of streams
        The candidates.
    n_active : int
        How many streamers run at once (the working set), at least 1.
    rate : float or None
        Mean number of items per activation (at least 1; > 0 for ``dist='constant'``), or
        ``None`` to run each activation until its streamer ends.
    weights : array-like, WeightSchedule or callable, optional
        Non-negative, finite, with a positive entry; proportions, normalised internally (the
        caller's array is not modified). A zero-weight streamer is never activated. A
        :class:`~pescador.WeightSchedule` (or a function of the number of items delivered)
        changes them as the iteration runs; a running iterator's ``set_weights(vector)`` and
        ``set_weight(i, w)`` change them from its next draw (not in ``exhaustive`` mode).
    mode : {'with_replacement', 'single_active', 'exhaustive'}
        ``with_replacement``: a streamer may run in several slots at once (``n_active`` may
        exceed the number of streamers). ``single_active``: at most one activation of each
        streamer at a time. ``exhaustive``: each streamer is activated once; the mux ends
        after the last: each positive-weight streamer is activated exactly once, in a
        weighted random order, for its budget (or to its end), so its share of the run is its
        budget's, not its weight's; the weights set the order and the draws among the slots.
    prune_empty_streams : bool
        Drop a streamer for the rest of the iteration when an activation of it yields nothing.
    dist : {'binomial', 'constant', 'poisson'}
        The budget's distribution: ``constant`` is ``ceil(rate)``; ``poisson`` is
        ``1 + Poisson(rate - 1)``; ``binomial`` (default) is ``1 + Binomial(n, 1 - p)`` with
        ``p`` the new slot's share of the active weight and ``n`` randomly rounded so that the
        mean is exactly ``rate``.
    random_state : None, int, RandomState, Generator or SeedSequence
        The seed of every iteration.

    Examples
    --------
    >>> import pescador
    >>> streams = [pescador.Streamer(c * 100) for c in "abc"]
    >>> mux = pescador.StochasticMux(streams, n_active=2, rate=4, random_state=0)
    >>> items = "".join(mux.iterate(max_iter=12))
    >>> len(items), set(items) <= set("abc")
    (12, True)

    Notes
    -----
    The stationary start (docs/design.md): with a rate, in ``with_replacement`` and
    ``single_active`` modes, the slot table of an iteration is drawn as a long run would have
    it at a random item: one slot's streamer drawn in proportion to the weights, the others'
    uniformly, each with the budget left of an activation met at a random item. So the first
    ``n_active`` activations begin with part of their budget used. Exact for ``constant`` and
    ``poisson`` budgets, and ``binomial`` with equal weights; for weighted ``binomial``
    budgets (which depend on the other slots) a close approximation. Without a rate, and in
    ``exhaustive`` mode, the slots are filled afresh, by weight.

    Infinite in ``with_replacement`` and ``single_active`` modes while any streamer yields
    items; ``exhaustive`` ends after each streamer's single activation. Whenever no streamer
    can produce an item the iteration ends instead of spinning. Random numbers come from a
    PCG64 generator derived from the iteration's seed, drawn in blocks of 1024 uniforms (per-item
    slot choices, streamer choices, budgets) and, for some budgets, by numpy scalar draws.
    State: the slots (streamer, budget left, child iterator), the candidate pool, and the
    generator with each block's position.
    """

    def __init__(
        self,
        streamers: Any,
        n_active: int,
        rate: float | None,
        weights: Any = None,
        mode: str = "with_replacement",
        prune_empty_streams: bool = True,
        dist: str = "binomial",
        random_state: RandomStateLike = None,
    ) -> None:
        super().__init__(streamers, random_state)
        name = type(self).__name__
        if not self.streamers:
            raise PescadorError("Cannot mux an empty collection")
        self.mode = check_choice(
            mode, ("with_replacement", "single_active", "exhaustive"), "mode", name
        )
        self.dist = check_choice(dist, ("binomial", "constant", "poisson"), "dist", name)
        self.n_active: int = check_n_active(n_active, name)
        if mode != "with_replacement" and self.n_active > self.n_streams:
            raise PescadorError(
                f"mode={mode!r} requires that n_active={n_active} be at most the number of "
                f"streamers={self.n_streams}"
            )
        self.rate: float | None = check_rate(rate, self.dist, name)
        self._set_weights(weights)
        if self._schedule is not None and mode == "exhaustive":
            raise PescadorError(
                f"{name}: mode='exhaustive' fixes the activation order at the start: its "
                "weights cannot follow a schedule"
            )
        self.prune_empty_streams: bool = prune_empty_streams

    #: Whether an iteration starts from the stationary slot table (with a rate, except in
    #: exhaustive mode; docs/design.md, "The stationary start"), or from a fresh fill (the
    #: tests of the refills' laws set it False on an instance, to see refills only).
    _stationary_start = True

    def _check_live(self) -> None:
        if self.mode == "exhaustive":
            raise PescadorError(
                f"{type(self).__name__}: mode='exhaustive' fixes the activation order at the "
                "start: its weights cannot change while it runs"
            )
        super()._check_live()

    def _policy(
        self, seed: Seed, resume: Mapping[str, Any] | None = None, weights: Any = None
    ) -> Policy:
        return StochasticPolicy(
            SlotTable(repr(self), self.streamers, seed),
            weights=self._weights_in_force(resume) if weights is None else weights,
            n_active=self.n_active,
            rate=self.rate,
            mode=self.mode,
            dist=self.dist,
            prune=bool(self.prune_empty_streams),
            resume=resume,
            stationary=self._stationary_start,
        )

    def _shard(self, index: int, count: int) -> BaseMux:
        share = super()._shard(index, count)
        assert isinstance(share, StochasticMux)
        # The working set is shared out too, in proportion to the shares' weights.
        w = weights_or_uniform(self._weights, self.n_streams)
        part = float(w[index::count].sum()) / float(w.sum())
        share.n_active = max(1, round(self.n_active * part))
        if share.mode != "with_replacement":
            share.n_active = min(share.n_active, max(1, share.n_streams))
        return share

    def _shape(self) -> dict[str, Any]:
        return {
            "n_streams": self.n_streams,
            "n_active": self.n_active,
            "mode": self.mode,
            "dist": self.dist,
            "rate": self.rate,
        }


class ShuffledMux(_Weighted):
    """Draw each item from one of all the streamers, chosen in proportion to its weight.

    Every streamer is active all the time; one that ends is restarted at once, unless it
    yielded nothing since its last start, in which case it is dropped for the rest of the
    iteration. A zero-weight streamer is never started.

    Parameters
    ----------
    streamers : iterable of streams
    weights : array-like, WeightSchedule or callable, optional
        Non-negative, finite, with a positive entry (integers work); uniform by default. A
        :class:`~pescador.WeightSchedule` (or a function of the number of items delivered)
        changes them as the iteration runs; a running iterator's ``set_weights(vector)`` and
        ``set_weight(i, w)`` change them from its next draw.
    random_state : None, int, RandomState, Generator or SeedSequence

    Examples
    --------
    >>> import pescador
    >>> mux = pescador.ShuffledMux(
    ...     [pescador.Streamer("aa"), pescador.Streamer("b")], weights=[3, 1], random_state=1
    ... )
    >>> items = "".join(mux.iterate(max_iter=400))
    >>> 0.65 < items.count("a") / 400 < 0.85
    True

    Notes
    -----
    Infinite unless every streamer comes up empty. Per-item choices are drawn in blocks from a
    PCG64 generator seeded per iteration. State: each streamer's current activation and the
    generator.
    """

    def __init__(
        self, streamers: Any, weights: Any = None, random_state: RandomStateLike = None
    ) -> None:
        super().__init__(streamers, random_state)
        if not self.streamers:
            raise PescadorError("Cannot mux an empty collection")
        self._set_weights(weights)

    def _policy(
        self, seed: Seed, resume: Mapping[str, Any] | None = None, weights: Any = None
    ) -> Policy:
        if weights is None:
            weights = self._weights_in_force(resume)
        return ShuffledPolicy(SlotTable(repr(self), self.streamers, seed), weights, resume)


class RoundRobinMux(BaseMux):
    """Take one item from each streamer in turn, skipping streamers that have ended.

    Parameters
    ----------
    streamers : iterable of streams
    mode : {'exhaustive', 'cycle', 'permuted_cycle'}
        ``exhaustive`` ends when every streamer has ended; ``cycle`` then restarts them all in
        order; ``permuted_cycle`` restarts them in a fresh random order each time (the first
        pass is in order).
    random_state : None, int, RandomState, Generator or SeedSequence
        Used by ``permuted_cycle`` only.

    Examples
    --------
    >>> import pescador
    >>> mux = pescador.RoundRobinMux([pescador.Streamer("aa"), pescador.Streamer("bbb")])
    >>> "".join(mux)
    'ababb'

    Notes
    -----
    Cycling modes end after a pass in which no streamer yields anything. State: each
    streamer's activation, the turn order and the generator.
    """

    def __init__(
        self, streamers: Any, mode: str = "exhaustive", random_state: RandomStateLike = None
    ) -> None:
        super().__init__(streamers, random_state)
        if not self.streamers:
            raise PescadorError("Cannot mux an empty collection")
        self.mode = check_choice(
            mode, ("exhaustive", "cycle", "permuted_cycle"), "mode", type(self).__name__
        )

    def _policy(
        self, seed: Seed, resume: Mapping[str, Any] | None = None, weights: Any = None
    ) -> Policy:
        return RoundRobinPolicy(SlotTable(repr(self), self.streamers, seed), self.mode, resume)

    def _shape(self) -> dict[str, Any]:
        return {"n_streams": self.n_streams, "mode": self.mode}


class ChainMux(BaseMux):
    """Run each streamer to its end, one after another (like ``itertools.chain``).

    Parameters
    ----------
    streamers : iterable of streams, or a generator function producing streams
        A generator function is called afresh at every iteration (and every cycle), so the
        sequence of streams can be lazy and unbounded.
    mode : {'exhaustive', 'cycle'}
        ``cycle`` starts again from the first streamer after the last.
    random_state : None, int, RandomState, Generator or SeedSequence
        Seeds the streams that inherit a seed; the chain itself is deterministic.

    Examples
    --------
    >>> import pescador
    >>> "".join(pescador.ChainMux([pescador.Streamer("abc"), pescador.Streamer("def")]))
    'abcdef'

    Notes
    -----
    Keeps each source's order. In ``cycle`` mode it is infinite unless a whole pass yields
    nothing, in which case it ends. State: the position in the chain and the running
    activation.
    """

    def __init__(
        self, streamers: Any, mode: str = "exhaustive", random_state: RandomStateLike = None
    ) -> None:
        super().__init__(streamers, random_state)
        self.mode = check_choice(mode, ("exhaustive", "cycle"), "mode", type(self).__name__)

    def _as_streamers(self, streamers: Any) -> Any:
        if callable(streamers) and not isinstance(streamers, Iterable):
            return streamers  # a generator function of streams, called at each iteration
        return super()._as_streamers(streamers)

    @property
    def n_streams(self) -> int:
        if callable(self.streamers) and not isinstance(self.streamers, list):
            raise TypeError("n_streams is unknown: ChainMux was given a generator function")
        return len(self.streamers)

    def __repr__(self) -> str:
        if isinstance(self.streamers, list):
            return super().__repr__()
        return f"{type(self).__name__}({getattr(self.streamers, '__qualname__', '?')})"

    def _policy(
        self, seed: Seed, resume: Mapping[str, Any] | None = None, weights: Any = None
    ) -> Policy:
        streamers = self.streamers
        name = repr(self)
        source: Callable[[], Iterator[Streamer]]
        n_streams = None
        if isinstance(streamers, list):
            source = streamers.__iter__
            n_streams = len(streamers)
        else:
            source = partial(_streams_of, streamers, name)
        table = SlotTable(name, [], seed)
        return ChainPolicy(table, source, self.mode == "cycle", resume, n_streams)

    def _shape(self) -> dict[str, Any]:
        if isinstance(self.streamers, list):
            return {"mode": self.mode, "n_streams": len(self.streamers)}
        return {"mode": self.mode}

    def _shard(self, index: int, count: int) -> BaseMux:
        if isinstance(self.streamers, list):
            return super()._shard(index, count)
        share = copy.copy(self)
        produce = self.streamers
        share.streamers = lambda: islice(produce(), index, None, count)
        return share


def _streams_of(produce: Callable[[], Iterable[Any]], name: str) -> Iterator[Streamer]:
    """The streams of one pass of a ChainMux over a generator function."""
    for item in produce():
        yield as_streamer(item, name)
