"""The loop every mux runs, and the iterator of one mux iteration (private)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .._iterator import StreamIterator
from .._seeds import InheritedSeed, Seed, resolve_seed
from .._sharding import take_shard as _take_shard
from ..exceptions import add_note
from . import _slots

if TYPE_CHECKING:
    from ..core import Streamer
    from ._muxes import BaseMux


def _mux_loop(policy: _slots.Slots) -> Iterator[Any]:
    """The loop every mux runs: pull from the policy's next slot until the policy stops.

    Each item is charged to its slot's budget; when the budget is spent, the policy replaces
    the activation before the item is yielded. A policy that ``runs`` its slots (ChainMux)
    has each activation's items handed over whole, with no per-item work.
    """
    sources = policy.sources
    left = policy.left
    pull = next
    runs = policy.runs
    try:
        for k in policy.order():
            if runs:
                try:
                    yield from policy.iters[k]  # type: ignore[misc]
                except Exception as exc:
                    add_note(exc, policy.describe(policy.idx[k]))
                    raise
                policy.ended(k)
                continue
            try:
                item = pull(sources[k])
            except StopIteration:
                item = policy.refill(k)
                if item is _slots.NOTHING:
                    continue
            except Exception as exc:
                add_note(exc, policy.describe(policy.idx[k]))
                raise
            n = left[k] - 1
            if n:
                left[k] = n
            else:
                policy.spent(k)
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
        self.policy: _slots.Slots | None = None

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
            seed = Seed.from_json(resume["seed"])
        shard = None if mux.stream_ is not None else _take_shard()
        if shard is not None:  # the outermost mux in a ParallelStreamer worker: run a share
            if resume is None:  # (a saved seed is the share's already)
                seed = seed.child(shard.index)
            mux = mux._shard(shard.index, shard.n_workers)
        self._used_seed = seed
        self.policy = policy = mux._policy(seed, resume)
        return _mux_loop(policy), owner

    def _own_state(self) -> dict[str, Any]:
        assert self.policy is not None and self._used_seed is not None
        return {"seed": self._used_seed.to_json(), **self.policy.state()}

    def _shape(self) -> dict[str, Any]:
        return self._mux._shape()
