"""The slot table of a mux's selection policy, and slots drawn at random by weight.

A mux is one loop (:func:`pescador.mux._mux_loop`) plus a selection policy. A policy owns
the *slots*: each slot runs one activation of a child stream and has the child's item iterator
(its source), a remaining budget and the child's iterator object. The loop asks the policy for
an ``order()`` of slot indices and tells it when a slot's activation ends (``ended(k)``);
everything else about a mux, including its checkpoint state, is its policy's:

- :class:`~pescador._stochastic.StochasticPolicy` (StochasticMux), in :mod:`pescador._stochastic`;
- :class:`~pescador._policies.ShuffledPolicy`, :class:`~pescador._policies.RoundRobinPolicy` and
  :class:`~pescador._policies.ChainPolicy` (ShuffledMux, RoundRobinMux, ChainMux), in
  :mod:`pescador._policies`.

This module holds what they share: :class:`Slots`, the slot table and the opening, resuming and
closing of children, and :class:`RandomSlots`, slots drawn at random by weight.

The hot path is C-level: a random policy's ``order()`` is an ``itertools`` pipeline over
block-drawn uniforms (:mod:`pescador._draws`), so the loop spends no Python frame on choosing a
slot. Each iteration's random decisions come from ``seed.generator(0)``; child activation ``n``
gets the seed ``seed.child(n)``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .._seeds import Seed
from ..core import Streamer, StreamIterator
from ..exceptions import add_note
from ._draws import EqualSlots, WeightedSlots

#: Budget of an activation without a rate limit (never reached).
UNLIMITED = sys.maxsize


#: The source of a slot without an activation: ``next`` on it raises StopIteration.
_FINISHED: Iterator[Any] = iter(())


#: What :meth:`Slots.refill` returns when the draw yields no item.
NOTHING: Any = object()


class Slots:
    """The slot table shared by every policy, and the opening and closing of children."""

    __slots__ = ("cids", "idx", "iters", "left", "name", "opened", "seed", "sources", "streamers")

    def __init__(self, name: str, streamers: Sequence[Streamer], seed: Seed) -> None:
        self.name = name
        self.streamers = streamers
        self.seed = seed
        self.opened = 0  # activations opened so far: child n gets seed.child(n)
        self.sources: list[Iterator[Any]] = []  # each slot's items: iter(child), C-level
        self.left: list[int] = []  # each slot's budget left
        self.iters: list[StreamIterator[Any] | None] = []
        self.idx: list[int] = []
        self.cids: list[int] = []  # which child seed each slot's activation has

    def order(self) -> Iterator[int]:
        """The slot to pull next, for as long as the mux runs."""
        raise NotImplementedError

    #: Whether a draw that found its slot's stream ended is retried on the slot's new
    #: activation (when the same streamer restarts, so the draw's odds stay right).
    retry = False

    #: Whether each activation runs to its end before the next draw: the loop then hands its
    #: items over whole (``yield from``), with no per-item work.
    runs = False

    def ended(self, k: int) -> bool:
        """Slot ``k``'s activation ended (exhausted, or budget spent): refill or retire it.

        Returns whether slot ``k`` holds a new activation.
        """
        raise NotImplementedError

    def spent(self, k: int) -> bool:
        """Slot ``k``'s budget is used up (so its activation delivered items): as
        :meth:`ended`, which policies may shortcut."""
        return self.ended(k)

    def refill(self, k: int) -> Any:
        """Slot ``k`` was drawn and its stream had ended: refill it, and if the policy
        retries, return the first item of the new activation (:data:`NOTHING` if none)."""
        while self.ended(k) and self.retry:
            try:
                return next(self.sources[k])
            except StopIteration:
                continue
            except Exception as exc:
                add_note(exc, self.describe(self.idx[k]))
                raise
        return NOTHING

    def views(self) -> tuple[list[Any], list[float], list[int], list[int]]:
        """Per live slot: child iterator, weight, items delivered, streamer (compatibility)."""
        n = len(self.iters)
        return (
            list(self.iters),
            [1.0] * n,
            [0 if it is None else it.items_delivered for it in self.iters],
            list(self.idx),
        )

    def describe(self, i: int) -> str:
        """Where an error came from, for the note added to it."""
        return f"raised by streamer {i} of {self.name}: {self.streamers[i]!r}"

    def reserve(self, n: int) -> None:
        """Make room for ``n`` slots in the tables (empty until opened)."""
        grow = n - len(self.sources)
        if grow > 0:
            self.sources += [_FINISHED] * grow
            self.left += [0] * grow
            self.iters += [None] * grow
            self.idx += [0] * grow
            self.cids += [0] * grow

    def open(self, k: int, i: int, budget: int, stream: Streamer | None = None) -> None:
        """Start an activation of streamer ``i`` (or ``stream``) in slot ``k`` with ``budget``."""
        cid = self.opened
        self.opened = cid + 1
        try:
            child, items = (self.streamers[i] if stream is None else stream)._open_child(
                (self.seed, cid)
            )
        except Exception as exc:
            add_note(exc, self.describe(i))
            raise
        self.sources[k] = items
        self.left[k] = budget
        self.iters[k] = child
        self.idx[k] = i
        self.cids[k] = cid

    def resume_slot(self, k: int, entry: list[Any], stream: Streamer | None = None) -> None:
        """Restore slot ``k`` from its checkpoint ``entry`` (see :meth:`slot_state`)."""
        i, budget, cid, state = entry
        try:
            child, source = (self.streamers[i] if stream is None else stream)._open_child(
                (self.seed, cid), state
            )
        except Exception as exc:
            add_note(exc, self.describe(i))
            raise
        self.sources[k] = source
        self.left[k] = budget
        self.iters[k] = child
        self.idx[k] = i
        self.cids[k] = cid

    def finish(self, k: int) -> int:
        """Close slot ``k``'s activation and return how many items it delivered."""
        child = self.iters[k]
        if child is None:
            return 0
        child.close()
        self.iters[k] = None
        self.sources[k] = _FINISHED
        return child.items_delivered

    def close(self) -> None:
        for k in range(len(self.iters)):
            self.finish(k)

    # -- checkpoint state -------------------------------------------------------------------
    def slot_state(self, k: int) -> list[Any]:
        """``[streamer, budget left, child seed, child state]`` of a live slot."""
        child = self.iters[k]
        assert child is not None
        return [self.idx[k], self.left[k], self.cids[k], child._state_dict()]

    def state(self) -> dict[str, Any]:
        """The policy's position (the mux iterator adds the kind, count and shape)."""
        raise NotImplementedError

    def restore_slots(self, slots: list[list[Any]]) -> None:
        self.reserve(len(slots))
        for k, entry in enumerate(slots):
            self.resume_slot(k, entry)


class RandomSlots(Slots):
    """Slots drawn at random, in proportion to their streamers' weights.

    Live slots are kept in ``0 .. n_live - 1``: a slot that dies is swapped with the last live
    one. ``sel`` (:mod:`pescador._draws`) keeps the live slots' weights and draws the slot of
    each item: a C-level stream of slot indices, which the loop iterates directly.
    """

    __slots__ = ("n_live", "sel", "uniform", "weights")

    def __init__(
        self,
        name: str,
        streamers: Sequence[Streamer],
        seed: Seed,
        weights: np.ndarray,
        gen: np.random.Generator,
        capacity: int,
    ) -> None:
        super().__init__(name, streamers, seed)
        self.weights: list[float] = weights.tolist()
        positive = weights[weights > 0]
        self.uniform = not len(positive) or bool(positive.min() == positive.max())
        self.sel: EqualSlots | WeightedSlots
        if self.uniform:
            self.sel = EqualSlots(gen)
        else:
            self.sel = WeightedSlots(gen, capacity)
        self.n_live = 0

    def order(self) -> Iterator[int]:
        return self.sel.stream if self.n_live else iter(())

    def kill(self, k: int) -> None:
        """Slot ``k`` has no more streams: move the last live slot into its place."""
        self.finish(k)
        last = self.n_live - 1
        if k != last:
            tables: tuple[list[Any], ...] = (
                self.sources,
                self.left,
                self.iters,
                self.idx,
                self.cids,
            )
            for table in tables:
                table[k], table[last] = table[last], table[k]
        self.n_live = last
        self.sel.remove(k)
        if not last:
            self.sel.stop()

    def stop(self) -> None:
        """End the iteration: close every slot."""
        self.close()
        self.n_live = 0
        self.sel.stop()

    def views(self) -> tuple[list[Any], list[float], list[int], list[int]]:
        n = self.n_live
        iters = self.iters[:n]
        counts = [0 if it is None else it.items_delivered for it in iters]
        return iters, self.sel.w[:n], counts, self.idx[:n]

    def live_slots(self) -> list[list[Any]]:
        return [self.slot_state(k) for k in range(self.n_live)]
