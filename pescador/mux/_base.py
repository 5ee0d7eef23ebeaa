"""The base of the muxes, and of those that take weights (private; see :mod:`pescador.mux`)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from .._seeds import InheritedSeed, RandomStateLike, Seed, check_random_state, resolve_seed
from ..core import Streamer, _Plan
from ..exceptions import PescadorError, add_note
from ._args import (
    as_streamers,
    check_weights,
    weights_or_uniform,
)
from ._live import Scheduled, WeightSchedule, as_schedule, unpack_weights
from ._loop import Policy, _MuxIterator, mux_loop

__all__ = ["BaseMux"]


class BaseMux(Streamer):
    """The base of all muxes: a stream over a collection of streamers.

    Parameters
    ----------
    streamers : iterable of streams
        Each element is a :class:`Streamer` (muxes included) or anything ``Streamer`` accepts,
        which is wrapped.
    random_state : None, int, RandomState, Generator or SeedSequence
        The seed of every iteration (see the module docstring).
    """

    def __init__(self, streamers: Any, random_state: RandomStateLike = None) -> None:
        self.streamers = self._as_streamers(streamers)
        self.random_state = check_random_state(random_state)
        self._init_stream(_Plan.own())
        self._active_policy: Policy | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<{self.n_streams} streamers>)"

    def _as_streamers(self, streamers: Any) -> list[Streamer]:
        """The ``streamers`` argument as the mux keeps it."""
        return as_streamers(streamers, type(self).__name__)

    @property
    def n_streams(self) -> int:
        """The number of streamers."""
        return len(self.streamers)

    def _policy(
        self, seed: Seed, resume: Mapping[str, Any] | None = None, weights: Any = None
    ) -> Policy:
        """The selection policy of one iteration (resuming from ``resume`` if given; a mux
        that takes weights starts with ``weights`` if given, else those in force)."""
        raise PescadorError(f"{type(self).__name__} is abstract: use one of the four muxes")

    def _live_weights(self, weights: Any) -> np.ndarray:
        """``weights`` checked for a running iteration's ``set_weights``."""
        self._check_live()
        raise AssertionError("unreachable")

    def _check_live(self) -> None:
        """Raise if an iteration's weights cannot change."""
        raise PescadorError(f"{type(self).__name__} has no weights to change")

    def _shape(self) -> dict[str, Any]:
        """What a checkpoint must agree on to resume this mux."""
        return {"n_streams": self.n_streams}

    def _shard(self, index: int, count: int) -> BaseMux:
        """The same mux over streamers ``index, index + count, ...`` (a worker's share)."""
        share = copy.copy(self)
        share.streamers = self.streamers[index::count]
        if isinstance(share, _Weighted):
            if share._weights is not None:
                share._weights = share._weights[index::count]
            if share._schedule is not None:
                share._schedule = share._schedule.part(index, count)
        return share

    def _iterate(self, max_iter: Any, seed: InheritedSeed, counted: bool = True) -> _MuxIterator:
        return _MuxIterator(self, max_iter, seed, counted)

    def _enter_items(self, activated: Streamer) -> Iterator[Any]:
        assert isinstance(activated, BaseMux)
        policy = self._policy(resolve_seed(self.random_state, None), None)
        activated._active_policy = policy
        return iter(self._loop(policy, None))

    def _loop(self, policy: Policy, resume: Mapping[str, Any] | None) -> Iterable[Any]:
        """The items of an iteration: the mux loop (and a schedule's changes of weights)."""
        return mux_loop(policy)

    # Compatibility views of an activated copy (``with mux as active:``).
    @property
    def streams_(self) -> list[Any]:
        """The child iterators (per slot; per streamer for ShuffledMux)."""
        return self._activated_policy().views()[0]

    @property
    def stream_weights_(self) -> np.ndarray:
        """Their normalised weights (0 for a dropped streamer)."""
        w = np.asarray(self._activated_policy().views()[1], dtype=float)
        return w / w.sum() if w.sum() else w

    @property
    def stream_counts_(self) -> np.ndarray:
        """The items each has delivered in its current activation."""
        return np.array(self._activated_policy().views()[2])

    @property
    def stream_idxs_(self) -> np.ndarray:
        """Which streamer each slot runs."""
        return np.array(self._activated_policy().views()[3])

    def _activated_policy(self) -> Policy:
        policy = self._active_policy
        if policy is None or self.stream_ is None:
            raise AttributeError("only an activated mux (`with mux as active:`) has this")
        return policy


class _Weighted(BaseMux):
    """A mux that takes ``weights``: StochasticMux and ShuffledMux.

    ``_weights`` holds the validated weights as given (a float copy; ``None`` for uniform):
    every draw uses them, and ``_schedule`` the :class:`~pescador.mux.WeightSchedule` if the
    weights are one (``_weights`` are then its first). :attr:`weights` is pescador 3.0's
    attribute, normalised.
    """

    _weights: np.ndarray | None
    _schedule: WeightSchedule | None = None

    def _set_weights(self, weights: Any) -> None:
        """The ``weights`` argument: a vector, None, or a schedule (or a plain function)."""
        name = type(self).__name__
        schedule = as_schedule(weights)
        if schedule is not None:
            try:
                first = schedule(0)
            except Exception as exc:
                add_note(exc, f"raised by the weight schedule of {name}, evaluated at 0")
                raise
            self._weights = check_weights(first, self.n_streams, name, "weights(0)")
        else:
            self._weights = check_weights(weights, self.n_streams, name)
        self._schedule = schedule

    def _live_weights(self, weights: Any, what: str = "weights") -> np.ndarray:
        if what == "weights":  # (the caller's; not a schedule's)
            self._check_live()
        w = check_weights(weights, self.n_streams, type(self).__name__, what)
        return weights_or_uniform(w, self.n_streams)

    def _check_live(self) -> None:
        if self._schedule is not None:
            raise PescadorError(
                f"{type(self).__name__}: this iteration follows its weight schedule; change "
                "the schedule (a new mux) to change the weights"
            )

    def _weights_in_force(self, resume: Mapping[str, Any] | None) -> Any:
        """The weights an iteration resuming from ``resume`` (or starting) has in force."""
        if resume is not None and "weights" in resume:
            return unpack_weights(resume["weights"], self.n_streams)
        schedule = self._schedule
        if schedule is not None:
            n = (resume.get("sched", 0) if resume is not None else 0) * schedule.every
            if n:
                return self._live_weights(schedule(n), f"weights({n})")
        return self._weights

    def _loop(self, policy: Policy, resume: Mapping[str, Any] | None) -> Iterable[Any]:
        loop = mux_loop(policy)
        schedule = self._schedule
        if schedule is None:
            return loop

        def apply(weights: Any, n: int) -> None:
            policy.set_weights(self._live_weights(weights, f"weights({n})"), record=False)

        k = resume.get("sched", 0) if resume is not None else 0
        return Scheduled(loop, schedule, apply, k, resume["n"] if resume is not None else 0)

    @property
    def weights(self) -> np.ndarray:
        """The weights, normalised to sum to 1 (uniform when ``weights=None``), as in pescador
        3.0. Read-only: assign a new vector to change the mux's weights (for its later
        iterations; a running iterator's are changed with its ``set_weights``)."""
        w = weights_or_uniform(self._weights, self.n_streams)
        out = w / w.sum()
        out.flags.writeable = False
        return out

    @weights.setter
    def weights(self, weights: Any) -> None:
        self._set_weights(weights)

    @property
    def weight_schedule(self) -> WeightSchedule | None:
        """The :class:`~pescador.mux.WeightSchedule` given as ``weights``, if any."""
        return self._schedule
