"""The selection policies of ShuffledMux, RoundRobinMux and ChainMux (private).

- :class:`ShuffledPolicy`: a slot per streamer with positive weight, drawn by weight; a
  streamer that ends restarts, or is retired if it yielded nothing since its start.
- :class:`RoundRobinPolicy`: one item per live streamer per turn, in list order (or permuted
  per pass).
- :class:`ChainPolicy`: one slot running the streamers one after another, each to its end.

StochasticMux's policy is in :mod:`pescador.mux._stochastic`; the contract they all meet, in
:mod:`pescador.mux._loop`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from itertools import islice
from typing import Any

import numpy as np

from .. import _state
from .._state import MAX_COUNT
from ..core import Streamer
from ..exceptions import StateError, add_note
from ._args import equal_weights, weights_or_uniform
from ._budgets import UNLIMITED
from ._live import PositiveWeights, pack_weights
from ._loop import NOTHING, Policy
from ._slot_draws import TreeSlotDraws
from ._slots import DrawnSlots, SlotTable, Views, check_slots


class ShuffledPolicy(Policy):
    """ShuffledMux: every streamer with positive weight has a slot, drawn by weight.

    A streamer that ends restarts at once in its slot, and the draw that found it ended takes
    the new activation's first item (so its share stays right); one that yielded nothing since
    its start is retired for the rest of the iteration. ``draws``: the draws of the live slots
    (by default, block-drawn from ``seed.generator(0)``).
    """

    __slots__ = ("changed", "slot_of", "slots", "values", "weights")

    def __init__(
        self,
        table: SlotTable,
        weights: np.ndarray | None,
        resume: Mapping[str, Any] | None = None,
        *,
        draws: TreeSlotDraws | None = None,
    ) -> None:
        self.table = table
        w = weights_or_uniform(weights, len(table.streamers))
        members: list[int] = np.flatnonzero(w > 0).tolist()
        self.weights: list[float] = w.tolist()
        self.changed = resume is not None and "weights" in resume  # (see set_weights)
        # For set_weight (built at its first call, O(n)): each streamer's slot (-1: none),
        # and the positive weights by value.
        self.slot_of: list[int] | None = None
        self.values: PositiveWeights | None = None
        if draws is None:
            capacity = len(members) if resume is None else resume.get("cap", len(members))
            draws = TreeSlotDraws(table.seed.generator(0), capacity, equal_weights(w))
        self.slots = slots = DrawnSlots(table, draws)
        if resume is None:
            slots.start([self.weights[i] for i in members])
            for k, i in enumerate(members):
                table.open(k, i, UNLIMITED)
        else:
            where = "ShuffledMux state"
            entries = check_slots(
                resume,
                where,
                weights=self.weights,
                most=len(members),
                limited=False,
                distinct=True,
            )
            _state.field(resume, "sel", where)
            table.opened = resume["opened"]
            live = [self.weights[entry[0]] for entry in entries]
            slots.restore(entries, live, resume["sel"], where)

    def order(self) -> Iterator[int]:
        return self.slots.order()

    def exhausted(self, k: int) -> Any:
        table = self.table
        while table.finish(k):  # it delivered items: restart it, and retry the draw there
            table.open(k, table.streamer_ids[k], UNLIMITED)
            try:
                return next(table.sources[k])
            except StopIteration:
                continue
            except Exception as exc:
                add_note(exc, table.describe(k))
                raise
        self._retire(k)  # it yielded nothing since its start
        return NOTHING

    def _retire(self, k: int) -> None:
        """Close slot ``k`` for good (the last live slot moves into its place)."""
        slot_of = self.slot_of
        if slot_of is not None:
            ids = self.table.streamer_ids
            last = self.slots.n_live - 1
            slot_of[ids[k]] = -1
            if k != last:
                slot_of[ids[last]] = k
        self.slots.retire(k)

    def views(self) -> Views:
        """Per streamer (as in pescador 3.0): retired streamers have weight 0."""
        n = len(self.weights)
        streams: list[Any] = [None] * n
        weights = [0.0] * n
        counts = [0] * n
        table, w = self.table, self.slots.draws.w
        for k in range(self.slots.n_live):
            i, child = table.streamer_ids[k], table.children[k]
            streams[i], weights[i] = child, w[k]
            counts[i] = 0 if child is None else child.items_delivered
        return streams, weights, counts, list(range(n))

    def state(self) -> dict[str, Any]:
        state = {
            "opened": self.table.opened,
            "slots": self.slots.entries(),
            "sel": self.slots.draws.state(),
        }
        if self.changed:  # (the caller's weights; a schedule's are computed again)
            state["weights"] = pack_weights(self.weights)
        capacity = getattr(self.slots.draws, "capacity", None)
        if capacity is not None and capacity != sum(w > 0 for w in self.weights):
            state["cap"] = capacity  # grown by a change of weights
        return state

    # -- weights that change (pescador.mux._live) --------------------------------------------
    def set_weights(self, weights: np.ndarray, record: bool = True) -> None:
        """Every streamer's weight, from the next draw (validated by the caller): O(n).

        A streamer whose weight becomes 0 has its slot retired (its activation closed); one
        whose weight becomes positive gets a slot, with a new activation, unless it had been
        dropped for yielding nothing (a positive weight and no slot).
        """
        old, new = self.weights, weights.tolist()
        self.weights = new
        self.changed = self.changed or record
        self.slot_of = self.values = None  # (set_weight indexes them again)
        table, slots = self.table, self.slots
        n_live = slots.n_live
        live = set(table.streamer_ids[:n_live])
        opening = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if b > 0 and not a]
        for i in opening:  # (before any slot retires: the draws never stop on the way)
            if i not in live:
                k = slots.n_live
                table.reserve(k + 1)
                table.open(k, i, UNLIMITED)
                slots.n_live = k + 1
        for k in range(slots.n_live - 1, -1, -1):  # (a retired slot takes the last one's place)
            if not new[table.streamer_ids[k]]:
                slots.retire(k)
        draws = slots.draws
        draws.capacity = max(draws.capacity, slots.n_live)
        n = slots.n_live
        if n:
            draws.reweigh([new[i] for i in table.streamer_ids[:n]], equal_weights(weights))

    def set_weight(self, i: int, weight: float) -> None:
        """Streamer ``i``'s weight, from the next draw, as :meth:`set_weights` does it:
        O(log n) (the first call also indexes the slots and weights, O(n)). The draws change
        the weight of the slot that runs ``i`` (:class:`TreeSlotDraws`), retire it, or add one.

        Raises
        ------
        PescadorError
            If no weight would be left positive (nothing is changed then).
        """
        old = self.weights[i]
        if weight == old:
            return
        slot_of, values = self.slot_of, self.values
        if slot_of is None or values is None:
            slot_of = self.slot_of = [-1] * len(self.weights)
            for k, j in enumerate(self.table.streamer_ids[: self.slots.n_live]):
                slot_of[j] = k
            values = self.values = PositiveWeights(self.weights, self.table.name)
        values.change(old, weight)  # (raises if none would be left: nothing changed yet)
        self.weights[i] = weight
        self.changed = True
        slots, table = self.slots, self.table
        draws = slots.draws
        assert isinstance(draws, TreeSlotDraws)
        k = slot_of[i]
        if k >= 0:
            if weight:
                draws.set(k, weight)
            else:
                self._retire(k)
        elif weight and not old:  # (a positive weight and no slot: dropped, stays so)
            k = slots.n_live
            table.reserve(k + 1)
            table.open(k, i, UNLIMITED)
            slots.n_live = k + 1
            slot_of[i] = k
            draws.add(weight)
        draws.set_equal(values.equal)


class RoundRobinPolicy(Policy):
    """RoundRobinMux: one item per live streamer per turn, in order (or permuted per pass).

    Slot ``i`` runs streamer ``i``. A streamer that ends is done for the pass; when every one
    is, ``exhaustive`` ends, the cycle modes restart them all (``permuted_cycle``: in a random
    order from ``seed.generator(0)``), unless the pass yielded nothing.
    """

    __slots__ = ("alive", "mode", "produced", "rng", "turn", "turns")

    def __init__(
        self, table: SlotTable, mode: str, resume: Mapping[str, Any] | None = None
    ) -> None:
        self.table = table
        n = len(table.streamers)
        table.reserve(n)
        self.mode = mode
        self.rng = table.seed.generator(0)
        self.alive = [False] * n
        self.turns: list[int] = []
        self.turn = 0  # position in the current pass's turns
        self.produced = 0  # items since the streams were last (re)started
        if resume is None:
            self._restart(list(range(n)))
            return
        where = "RoundRobinMux state"
        entries = check_slots(resume, where, most=n, limited=False, distinct=True)
        turns = _state.sequence(_state.field(resume, "turns", where), where, "turns", most=n)
        for j, k in enumerate(turns):
            _state.integer(k, where, f"turns[{j}]", high=n - 1)
        if len(set(turns)) < len(turns):
            _state.fail(where, "turns", "a list of distinct streamers", turns)
        turn = _state.field(resume, "turn", where)
        _state.integer(turn, where, "turn", high=len(turns))
        produced = _state.field(resume, "produced", where)
        _state.integer(produced, where, "produced", high=resume.get("n", MAX_COUNT))
        _state.generator_state(self.rng, _state.field(resume, "sel", where), where, "sel")
        table.opened = resume["opened"]
        self.turns, self.turn, self.produced = list(turns), turn, produced
        table.streamer_ids[:] = range(n)
        for j, entry in enumerate(entries):
            self.alive[entry[0]] = True
            table.restore(entry[0], entry, path=f"{where}: slots[{j}]")

    def _restart(self, turns: list[int]) -> None:
        for i in turns:
            self.table.open(i, i, UNLIMITED)
            self.alive[i] = True
        self.turns = turns
        self.turn = 0
        self.produced = 0

    def order(self) -> Iterator[int]:
        while True:
            turns = self.turns
            if not turns:
                if self.mode == "exhaustive" or not self.produced:
                    return
                restart = list(range(len(self.alive)))
                if self.mode == "permuted_cycle":
                    restart = self.rng.permutation(len(restart)).tolist()
                self._restart(restart)
                continue
            while self.turn < len(turns):
                self.turn += 1
                yield turns[self.turn - 1]
            alive = self.alive
            self.turns = [k for k in turns if alive[k]]
            self.turn = 0

    def exhausted(self, k: int) -> Any:
        self.produced += self.table.finish(k)
        self.alive[k] = False  # its turn is used up (as in pescador 3.0)
        return NOTHING

    def state(self) -> dict[str, Any]:
        table = self.table
        return {
            "opened": table.opened,
            "slots": [table.entry(k) for k in range(len(self.alive)) if self.alive[k]],
            "turns": self.turns,
            "turn": self.turn,
            "produced": self.produced,
            "sel": self.rng.bit_generator.state,
        }


class ChainPolicy(Policy):
    """ChainMux: slot 0 running the streams of ``source()`` one after another.

    ``source`` gives the streams of a pass (``n_streams`` of them, if known); with ``cycle``,
    a new pass starts after the last stream, unless the pass yielded nothing.
    """

    __slots__ = ("current", "cycle", "live", "pending", "position", "produced", "source")

    runs = True  # each stream to its end, then the next

    def __init__(
        self,
        table: SlotTable,
        source: Callable[[], Iterator[Streamer]],
        cycle: bool,
        resume: Mapping[str, Any] | None = None,
        n_streams: int | None = None,
    ) -> None:
        self.table = table  # (its streamers are not used: the source gives them)
        table.reserve(1)
        self.source = source
        self.cycle = cycle
        self.pending: Iterator[Streamer] = source()
        self.position = -1  # index of the running stream in the current pass
        self.produced = 0  # items in the current pass, before the running stream
        self.live = True
        self.current: Streamer | None = None
        if resume is None:
            self._advance()
            return
        where = "ChainMux state"
        # The slot: [position of its stream in the pass, budget, activation, child state].
        slot = _state.field(resume, "slot", where)
        check_slots(
            resume, where, key="slot", one=True, most=n_streams or MAX_COUNT, limited=False
        )
        if slot is not None and n_streams is None:  # (positions in a pass, not streamers)
            _state.integer(slot[0], where, "slot[0]", high=resume["opened"] - 1)
        produced = _state.field(resume, "produced", where)
        # (the items of this pass: before the running stream, and from it)
        running = slot[3].get("n") if slot is not None else 0
        n = resume.get("n", MAX_COUNT)
        high = n - running if type(running) is int and running > 0 else n
        _state.integer(produced, where, "produced", high=high)
        table.opened = resume["opened"]
        self.produced = produced
        if slot is None:
            self.live = False
            return
        self.position = slot[0]
        with _state.PASSTHROUGH:  # (a generator function of streams runs here)
            self.current = next(islice(self.pending, self.position, None), None)
        if self.current is None:
            raise StateError(f"cannot resume {table.name}: it now has fewer streamers")
        table.restore(0, slot, self.current, path=f"{where}: slot")

    def _advance(self) -> None:
        """Open the next stream in slot 0, starting a new pass if cycling."""
        while True:
            for stream in self.pending:
                self.position += 1
                self.current = stream
                self.table.open(0, self.position, UNLIMITED, stream)
                return
            if not (self.cycle and self.produced):
                self.live = False
                return
            self.pending = self.source()
            self.position = -1
            self.produced = 0

    def order(self) -> Iterator[int]:
        while self.live:
            yield 0

    def exhausted(self, k: int) -> Any:
        self.produced += self.table.finish(k)
        self._advance()
        return NOTHING

    def describe(self, k: int) -> str:
        return self.table.describe(k, self.current)

    def state(self) -> dict[str, Any]:
        live = self.live and self.table.children[0] is not None
        return {
            "opened": self.table.opened,
            "produced": self.produced,
            "slot": self.table.entry(0) if live else None,
        }
