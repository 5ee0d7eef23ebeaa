"""The loop every mux runs, the contract of its selection policy, and the iterator (private).

A mux is one loop (:func:`mux_loop`) plus a :class:`Policy`: the loop pulls items from the
policy's slots and charges their budgets; the policy says which slot comes next and what
happens when a slot's activation ends. The policies are in :mod:`pescador.mux._policies` and
:mod:`pescador.mux._stochastic`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .. import _state
from .._iterator import StreamIterator
from .._seeds import InheritedSeed, Seed, resolve_seed
from .._sharding import take_shard as _take_shard
from ..exceptions import add_note

if TYPE_CHECKING:
    from ..core import Streamer
    from ._muxes import BaseMux
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

    __slots__ = ("_counted", "_mux", "_used_seed", "policy")

    def __init__(
        self, mux: BaseMux, max_iter: Any = None, seed: InheritedSeed = None, counted: bool = True
    ) -> None:
        super().__init__(max_iter, seed)
        self._mux = mux
        self._counted = counted
        self._used_seed: Seed | None = None
        self.policy: Policy | None = None

    @property
    def kind(self) -> str:  # type: ignore[override]
        return type(self._mux).__name__

    def _open(self) -> tuple[Iterable[Any], Streamer | None]:
        mux = self._mux
        if mux.stream_ is not None:
            return mux.stream_, None
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
        self.policy = policy = mux._policy(seed, resume)
        return mux_loop(policy), owner

    def _own_state(self) -> dict[str, Any]:
        assert self.policy is not None and self._used_seed is not None
        return {"seed": self._used_seed.to_json(), **self.policy.state()}

    def _shape(self) -> dict[str, Any]:
        return self._mux._shape()
