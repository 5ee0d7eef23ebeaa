"""The loop every mux runs, the contract of its selection policy, and the iterator (private).

A mux is one loop (:func:`mux_loop`) plus a :class:`Policy`: the loop pulls items from the
policy's slots and charges their budgets; the policy says which slot comes next and what
happens when a slot's activation ends. The policies are in :mod:`pescador.mux._policies` and
:mod:`pescador.mux._stochastic`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _state
from .._iterator import StreamIterator
from .._seeds import InheritedSeed, Seed, resolve_seed
from .._sharding import take_shard as _take_shard
from ..exceptions import PescadorError, add_note
from ._args import weights_or_uniform

if TYPE_CHECKING:
    from ..core import Streamer
    from ._base import BaseMux
    from ._slots import SlotTable, Views

#: What :meth:`Policy.exhausted` returns when the draw has no item to deliver.
NOTHING: Any = object()


class Policy:
    """What a mux's selection policy provides to the loop.

    A policy holds the iteration's :class:`~pescador.mux._slots.SlotTable` (``table``), which
    the loop pulls items from, and decides the rest. The loop calls each method below once per
    event; a policy never calls the loop's entry points itself.

    - :meth:`order`: which slot to pull from next.
    - :meth:`exhausted`: the drawn slot's activation had ended.
    - :meth:`spent`: a slot delivered the last item of its budget.
    - :meth:`state`: the policy's checkpoint.
    """

    __slots__ = ("table",)

    table: SlotTable

    #: Whether each activation runs to its end before the next draw: the loop then hands its
    #: items over whole (``yield from``), with no per-item work.
    runs = False

    def order(self) -> Iterator[int]:
        """The slot to pull next, for as long as the mux runs (called once)."""
        raise NotImplementedError

    def exhausted(self, k: int) -> Any:
        """Slot ``k`` was drawn and its activation had ended: refill or retire the slot.

        Returns an item to deliver for this draw, or :data:`NOTHING` (the loop draws again).
        """
        raise NotImplementedError

    def spent(self, k: int) -> None:
        """Slot ``k`` delivered the last item of its budget (not yet handed on).

        Only for a policy that gives budgets: an ``UNLIMITED`` one is never used up.
        """
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """The policy's position (the mux iterator adds the kind, count, shape and seed)."""
        raise NotImplementedError

    def set_weights(self, weights: Any, record: bool = True) -> None:
        """Every streamer's weight, from the next draw (policies that draw by weight)."""
        raise PescadorError(f"{self.table.name} has no weights to change")

    def set_weight(self, i: int, weight: float) -> None:
        """Streamer ``i``'s weight, from the next draw (policies that draw by weight)."""
        raise PescadorError(f"{self.table.name} has no weights to change")

    def describe(self, k: int) -> str:
        """Where an error from slot ``k`` came from, for the note added to it."""
        return self.table.describe(k)

    def views(self) -> Views:
        """The slots, for an activated mux's compatibility attributes."""
        return self.table.views()

    def close(self) -> None:
        """Close every slot (the iteration is over)."""
        self.table.close()


def mux_loop(policy: Policy) -> Iterator[Any]:
    """The loop every mux runs: pull from the policy's next slot until the policy stops.

    Each item is charged to its slot's budget; when the budget is spent, the policy replaces
    the activation before the item is yielded, so a replacement never waits for the consumer.
    """
    table = policy.table
    exhausted = policy.exhausted
    try:
        if policy.runs:
            children = table.children
            for k in policy.order():
                try:
                    yield from children[k]  # type: ignore[misc]
                except Exception as exc:
                    add_note(exc, policy.describe(k))
                    raise
                exhausted(k)
            return
        sources = table.sources
        left = table.left
        spent = policy.spent
        pull = next
        for k in policy.order():
            try:
                item = pull(sources[k])
            except StopIteration:
                item = exhausted(k)
                if item is NOTHING:
                    continue
            except Exception as exc:
                add_note(exc, policy.describe(k))
                raise
            n = left[k] - 1
            if n:
                left[k] = n
            else:
                spent(k)
            yield item
    finally:
        policy.close()


class _MuxIterator(StreamIterator[Any]):
    """One iteration of a mux: its policy (the slots and RNG state) and its loop.

    State: the items delivered, the iteration's seed, the mux's shape (to reject a state from
    a different mux) and the policy's state: slots with their children's states, random
    generator positions, and pools.
    """

    __slots__ = ("_changes", "_counted", "_items", "_mux", "_pending", "_used_seed", "policy")

    def __init__(
        self, mux: BaseMux, max_iter: Any = None, seed: InheritedSeed = None, counted: bool = True
    ) -> None:
        super().__init__(max_iter, seed, mux)
        self._mux = mux
        self._counted = counted
        self._used_seed: Seed | None = None
        self.policy: Policy | None = None
        self._items: Any = None  # what the pass iterates (the loop, or a Scheduled)
        self._pending: Any = None  # weights set before the pass started (all changes made)
        self._changes: list[tuple[Any, ...]] = []  # and the changes, for a resumed pass

    # -- weights that change (StochasticMux, ShuffledMux) ------------------------------------
    def set_weights(self, weights: Any) -> None:
        """Change the mux's weights for this iteration, from its next draw.

        ``weights`` as the mux's constructor takes them (``None``: uniform); a streamer's weight
        that becomes 0 ends its running activations (the slots are refilled), and one that
        becomes positive is a candidate again. The open streams are kept otherwise: budgets,
        positions and the other slots are untouched. The checkpoint state records the weights
        in force, so a resumed iteration continues exactly. Cost: O(number of streamers).

        Before the first item, the iteration starts with these weights (its stationary start
        too). For a StochasticMux or ShuffledMux; not in ``exhaustive`` mode, nor for a mux
        whose weights are a :class:`~pescador.mux.WeightSchedule`.

        Raises
        ------
        PescadorError
            If ``weights`` is not valid for the mux (the iteration is then unchanged), or the
            mux's weights cannot change.
        """
        w = self._mux._live_weights(weights)
        policy = self.policy
        if policy is None:
            self._pending = w
            self._changes.append((w,))
        else:
            policy.set_weights(w)

    def set_weight(self, i: int, weight: float) -> None:
        """Change streamer ``i``'s weight for this iteration, from its next draw.

        As :meth:`set_weights` for one streamer. Cost: StochasticMux, O(log n + n_active);
        ShuffledMux, O(log n) (each builds its index, O(n), at its first change).
        """
        mux = self._mux
        n = mux.n_streams
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not -n <= i < n:
            raise PescadorError(f"{mux!r}: streamer index i={i!r} is not in range({n})")
        i = int(i) % n
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
            raise PescadorError(f"{mux!r}: weight={weight!r} must be a number")
        value = float(weight)
        if not math.isfinite(value) or value < 0:
            raise PescadorError(f"{mux!r}: weight={weight!r} must be finite and non-negative")
        mux._check_live()
        policy = self.policy
        if policy is None:  # not started: change the pending vector
            w = self._in_force().copy()
            w[i] = value
            self._pending = mux._live_weights(w)
            self._changes.append((i, value))
            return
        policy.set_weight(i, value)  # (raises if no weight would be left positive)

    @property
    def weights(self) -> np.ndarray:
        """The weights in force, normalised (as the mux's ``weights``)."""
        w = self._in_force()
        out = w / w.sum()
        out.flags.writeable = False
        return out

    def _in_force(self) -> np.ndarray:
        """The weights in force (or those the pass will start with), as given."""
        policy, mux = self.policy, self._mux
        if policy is not None:
            weights = getattr(policy, "weights", None)
            if weights is None:
                mux._check_live()  # (raises: no weights)
            return np.array(weights)
        if self._pending is not None:
            return np.asarray(self._pending)
        in_force = getattr(mux, "_weights_in_force", None)
        if in_force is None:
            mux._check_live()  # (raises: no weights)
        return weights_or_uniform(in_force(self._resume), mux.n_streams)  # type: ignore[misc]

    @property
    def kind(self) -> str:  # type: ignore[override]
        return type(self._mux).__name__

    def _open(self) -> tuple[Iterable[Any], Streamer | None]:
        mux = self._mux
        resume = self._resume
        owner = mux if self._counted else None
        if resume is None:
            seed = resolve_seed(mux.random_state, self._seed)
        elif resume.get("done"):
            return iter(()), owner
        else:
            where = f"{self.kind} state"
            seed = _state.seed(_state.field(resume, "seed", where), where, "seed")
        shard = _take_shard()
        if shard is not None:  # the outermost mux in a ParallelStreamer worker: run a share
            if resume is None:  # (a saved seed is the share's already)
                seed = seed.child(shard.index)
            mux = mux._shard(shard.index, shard.n_workers)
        self._used_seed = seed
        pending = self._pending
        if pending is not None and resume is None:  # start with the caller's weights
            policy = mux._policy(seed, None, pending)
            policy.changed = True  # type: ignore[attr-defined]
        else:
            policy = mux._policy(seed, resume)
            for change in self._changes:  # as they were made, as a running pass makes them
                if len(change) == 1:
                    policy.set_weights(change[0])
                else:
                    policy.set_weight(*change)
        self._pending = None
        self._changes = []
        self.policy = policy
        self._items = items = mux._loop(policy, resume)
        return items, owner

    def _own_state(self) -> dict[str, Any]:
        assert self.policy is not None and self._used_seed is not None
        state = {"seed": self._used_seed.to_json(), **self.policy.state()}
        k = getattr(self._items, "k", None)
        if k is not None:  # a schedule: the evaluation in force
            state["sched"] = k
        return state

    def _shape(self) -> dict[str, Any]:
        return self._mux._shape()
