"""StochasticMux's selection policy: ``n_active`` slots refilled from a pool of candidates.

Each slot runs an activation of a streamer that a candidate pool (:mod:`pescador.mux._pools`)
proposes in proportion to its weight, for a budget of about ``rate`` items (at least 1, drawn
by the law ``dist``: :class:`~pescador.mux._budgets.BudgetDraws`; unlimited without a rate);
when the budget is spent or the stream ends, the slot is refilled with a new candidate and
budget, or retired when no candidate is left. Items are drawn from the live slots by weight
(:class:`~pescador.mux._slots.DrawnSlots`).

A streamer whose activation yields nothing is pruned (``prune``), or, without pruning, the
iteration ends once every candidate came up empty since the last item: no configuration in
which no stream can produce an item spins forever.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .. import _state
from ._args import equal_weights, weights_or_uniform
from ._budgets import BudgetDraws, residual_budgets
from ._draws import Uniforms
from ._live import PositiveWeights, pack_weights
from ._loop import NOTHING, Policy
from ._pools import CandidatePool, ExhaustiveOrder, pack_flags
from ._slot_draws import WeightedSlotDraws, slot_draws
from ._slots import DrawnSlots, SlotTable, Views, check_slots


class StochasticPolicy(Policy):
    """StochasticMux: ``n_active`` slots refilled from a pool of candidate streamers.

    Every random decision comes from one generator, ``table.seed.generator(0)`` (a generator is
    costly to create, and an iteration of a nested mux is short): the candidate pool, the
    slot draws (unless ``draws`` is given), the budgets, and the uniforms for the rest.
    """

    __slots__ = (
        "budget",
        "budgets",
        "changed",
        "empty",
        "mode",
        "n_empty",
        "n_valid",
        "pool",
        "prune",
        "pruned",
        "rng",
        "single",
        "slots",
        "uniform",
        "uniforms",
        "values",
        "weights",
    )

    def __init__(
        self,
        table: SlotTable,
        *,
        weights: np.ndarray | None,
        n_active: int,
        rate: float | None,
        mode: str,
        dist: str,
        prune: bool,
        resume: Mapping[str, Any] | None = None,
        draws: WeightedSlotDraws | None = None,
        stationary: bool = True,
    ) -> None:
        self.table = table
        n = len(table.streamers)
        w = weights_or_uniform(weights, n)
        self.weights: list[float] = w.tolist()
        self.rng = rng = table.seed.generator(0)
        self.pool: CandidatePool | ExhaustiveOrder
        if mode == "exhaustive":
            self.pool = ExhaustiveOrder(w, n, rng)  # first: it draws from the generator's start
        else:
            self.pool = CandidatePool(w, n, rng)
        equal = equal_weights(w)
        if draws is None:
            draws = slot_draws(equal, rng, n_active)
        self.slots = DrawnSlots(table, draws)
        self.mode = mode
        self.single = mode == "single_active"  # a streamer runs in one slot at a time
        self.prune = prune
        self.uniforms = Uniforms(rng)  # for binomial budgets and the pool's own draws
        self.uniform = self.uniforms.draw
        self.budgets = BudgetDraws(rate, dist, equal, rng, self.uniform)
        self.budget = self.budgets.draw
        self.pruned = [False] * n
        self.n_valid = int(np.count_nonzero(w > 0))  # candidates not pruned
        # Without pruning: the streamers that came up empty since the last productive
        # activation (when all did, the iteration ends instead of spinning).
        self.empty = [False] * n
        self.n_empty = 0
        self.changed = False  # whether the caller changed the weights (they go in the state)
        self.values: PositiveWeights | None = None  # built by set_weight
        if resume is not None:
            self._restore(resume, n_active)
        elif rate is not None and mode != "exhaustive" and stationary:
            self._fill_stationary(n_active, rate, dist)
        else:
            self._fill(n_active)

    def _fill(self, n_active: int) -> None:
        chosen: list[int] = []
        pool = self.pool
        for _ in range(n_active):
            if not len(pool):
                break
            i = pool.propose()
            if pool.excluded[i]:
                i = pool.draw(self.uniform)
            if self.single:
                assert isinstance(pool, CandidatePool)
                pool.exclude(i)
            chosen.append(i)
        w = [self.weights[i] for i in chosen]
        self.slots.start(w)
        total = self.slots.draws.total
        for k, i in enumerate(chosen):
            self.table.open(k, i, self.budget(w[k], total - w[k]))

    def _fill_stationary(self, n_active: int, rate: float, dist: str) -> None:
        """Fill the slots as a mux that has been running for a long time has them, so that
        item shares are the long-run shares from the first item (docs/design.md, "The
        stationary start").

        The slot table at a random item of a long run, up to the order of the slots: slot 0
        runs a streamer drawn in proportion to its weight, the others streamers drawn
        uniformly (``single_active``: a uniform set of distinct ones besides slot 0's), and each
        slot has the budget left of :func:`~pescador.mux._budgets.residual_budgets`. Exact for
        context-free budget laws (``constant``, ``poisson``, ``binomial`` with equal weights);
        for weighted ``binomial`` each slot's law is taken in the sampled context.
        """
        pool = self.pool
        assert isinstance(pool, CandidatePool)
        ids = pool.ids
        first = pool.propose()  # in proportion to the weights (nothing is excluded yet)
        rng = self.rng
        if self.single:
            m = min(n_active, len(ids)) - 1
            skip = bisect_left(ids, first)  # ids are sorted
            rest = [ids[j + (j >= skip)] for j in _uniform_subset(len(ids) - 1, m, rng)]
        else:
            picks = (rng.random(n_active - 1) * len(ids)).astype(np.intp)
            rest = np.asarray(ids)[picks].tolist()
        chosen = [first, *rest]
        w = [self.weights[i] for i in chosen]
        self.slots.start(w)
        total = self.slots.draws.total
        w_new = np.array(w)
        left = residual_budgets(dist, rate, w_new, total - w_new, rng)
        table = self.table
        for k, i in enumerate(chosen):
            if self.single:
                pool.exclude(i)
            table.open(k, i, left[k])

    def order(self) -> Iterator[int]:
        return self.slots.order()

    def exhausted(self, k: int) -> Any:
        table = self.table
        child = table.children[k]
        assert child is not None
        child.close()
        if child.items_delivered:
            self._replace(k)
        elif not self._came_up_empty(table.streamer_ids[k]):
            self._replace(k, productive=False)
        return NOTHING

    def _replace(self, k: int, productive: bool = True) -> None:
        """Refill slot ``k`` with a new candidate and budget, or retire it if none is left.

        ``productive``: whether the activation it held delivered items. This runs once per
        activation: the common case (another candidate drawn) is kept to a few calls.
        """
        table = self.table
        child = table.children[k]
        assert child is not None
        child.close()  # (again from exhausted(): idempotent)
        if productive and self.n_empty:
            self.empty = [False] * len(self.empty)
            self.n_empty = 0
        pool = self.pool
        if self.single:
            assert isinstance(pool, CandidatePool)
            i = table.streamer_ids[k]
            if not self.pruned[i]:
                pool.include(i)
        # The next streamer: the pool's proposal (C-level), unless it is excluded; then the
        # pool draws among its candidates, if any are left.
        j = pool.propose()
        if pool.excluded[j]:
            if not len(pool):
                self.slots.retire(k)
                return
            j = pool.draw(self.uniform)
        if self.single:
            assert isinstance(pool, CandidatePool)
            pool.exclude(j)
        w_new = self.weights[j]
        draws = self.slots.draws
        w_old = draws.w[k]
        table.open(k, j, self.budget(w_new, draws.total - w_old))
        if w_new != w_old:
            draws.set(k, w_new)

    #: The budget of slot ``k`` is spent, so its activation delivered items.
    spent = _replace

    def _came_up_empty(self, i: int) -> bool:
        """Streamer ``i``'s activation yielded nothing: prune it, or end the iteration if
        every candidate came up empty since the last item. Returns whether it ended."""
        if self.prune:
            if not self.pruned[i]:
                self.pruned[i] = True
                self.n_valid -= 1
                if isinstance(self.pool, CandidatePool):
                    self.pool.exclude(i)
        elif not self.empty[i]:
            self.empty[i] = True
            self.n_empty += 1
            if self.n_empty >= self.n_valid:
                self.slots.stop()
                return True
        return False

    # -- weights that change (pescador.mux._live) --------------------------------------------
    def set_weights(self, weights: np.ndarray, record: bool = True) -> None:
        """Every streamer's weight, from the next draw (validated by the caller; not in
        exhaustive mode). O(n): the candidate pool is built again. ``record``: whether the
        state holds the weights (not for a schedule's, which are computed again)."""
        n = len(self.weights)
        self.weights = weights.tolist()
        pool = CandidatePool(weights, n, self.rng)
        for i in np.flatnonzero(self.pruned).tolist():
            pool.exclude(i)
        self.pool = pool
        self.values = None
        self.changed = self.changed or record
        positive = weights > 0
        self.n_valid = int(np.count_nonzero(positive & ~np.asarray(self.pruned, dtype=bool)))
        if self.n_empty:
            self.empty = (np.asarray(self.empty, dtype=bool) & positive).tolist()
            self.n_empty = sum(self.empty)
        if self.single:  # (the new pool: check out the running streamers)
            for i in self.table.streamer_ids[: self.slots.n_live]:
                pool.exclude(i)
        self._reweigh(equal_weights(weights))

    def set_weight(self, i: int, weight: float) -> None:
        """Streamer ``i``'s weight, from the next draw (validated by the caller).

        O(log n + n_active): the pool draws from its sum tree from now on (built once, O(n));
        the live slots that run streamer ``i`` change weight.
        """
        old = self.weights[i]
        if weight == old:
            return
        values = self.values
        if values is None:  # (built once: then equal weights are known in O(1))
            values = self.values = PositiveWeights(self.weights, self.table.name)
        values.change(old, weight)  # (raises if none would be left: nothing changed yet)
        self.weights[i] = weight
        pool = self.pool
        assert isinstance(pool, CandidatePool)
        table = self.table
        running = i in table.streamer_ids[: self.slots.n_live]
        pool.set_weight(i, weight, not self.pruned[i] and not (self.single and running))
        if not self.pruned[i]:
            self.n_valid += (weight > 0) - (old > 0)
        if self.empty[i] and not weight:
            self.empty[i] = False
            self.n_empty -= 1
        self.changed = True
        equal = values.equal
        draws = self.slots.draws
        if equal != draws.equal or (equal and running):
            self._reweigh(equal)  # a new way (or a new common weight): every slot anew
            return
        # The same way: the slots that run streamer i change weight (a refill's update, as
        # canonical), or are refilled if it is now 0. Usually none runs it: nothing to do.
        streamer_ids = table.streamer_ids
        for k in range(self.slots.n_live - 1, -1, -1):
            if streamer_ids[k] == i:
                if weight:
                    draws.set(k, weight)
                else:
                    child = table.children[k]
                    self._replace(k, productive=child is not None and child.items_delivered > 0)

    def _reweigh(self, equal: bool) -> None:
        """The weights changed: replace the slots whose streamer now weighs 0, and give every
        live slot its new weight (the draws' way: ``equal``). O(n_active)."""
        weights = self.weights
        self.budgets.tabulate = equal or self.budgets.dist == "poisson"
        table, slots = self.table, self.slots
        for k in range(slots.n_live - 1, -1, -1):  # (a retired slot takes the last one's place)
            if not weights[table.streamer_ids[k]]:
                child = table.children[k]
                self._replace(k, productive=child is not None and child.items_delivered > 0)
        n = slots.n_live
        slots.draws.reweigh([weights[i] for i in table.streamer_ids[:n]], equal)

    def views(self) -> Views:
        return self.slots.views()

    def state(self) -> dict[str, Any]:
        pool = self.pool
        state: dict[str, Any] = {
            "opened": self.table.opened,
            "slots": self.slots.entries(),
            "sel": self.slots.draws.state(),
            "uni": self.uniforms.state(),
            "budgets": self.budgets.state(),
            "gen": self.rng.bit_generator.state,  # after the streams' blocks (see _restore)
            "pruned": pack_flags(self.pruned),
        }
        if isinstance(pool, ExhaustiveOrder):
            state["position"] = pool.position
        else:
            assert pool.proposals is not None
            state["tree"] = pool.tree is not None
            state["proposals"] = pool.proposals.state()
        if self.n_empty:
            state["empty"] = pack_flags(self.empty)
        if self.changed:  # (the caller's weights; a schedule's are computed again)
            state["weights"] = pack_weights(self.weights)
        if isinstance(pool, CandidatePool) and not pool.proposing:
            state["proposing"] = False
        return state

    def _restore(self, state: Mapping[str, Any], n_active: int) -> None:
        where = "StochasticMux state"
        n = len(self.weights)
        pool = self.pool
        # Every field is checked before any is used.
        entries = check_slots(
            state,
            where,
            weights=self.weights,
            most=n_active,
            distinct=self.single,
            limited=self.budgets.rate is not None,
        )
        pruned = _state.flags(_state.field(state, "pruned", where), n, where, "pruned")
        empty = _state.flags(state.get("empty", ""), n, where, "empty")
        if isinstance(pool, ExhaustiveOrder):
            position = _state.field(state, "position", where)
            _state.integer(position, where, "position", high=len(pool.order))
        else:
            tree = _state.boolean(_state.field(state, "tree", where), where, "tree")
        for key in ("sel", "uni", "budgets", "gen") + (
            () if isinstance(pool, ExhaustiveOrder) else ("proposals",)
        ):
            _state.field(state, key, where)
        self.table.opened = state["opened"]
        self.changed = "weights" in state  # (the weights in force, given to the constructor)
        self.uniforms.load(state["uni"], where, "uni")
        self.budgets.load(state["budgets"], where, "budgets")
        self.pruned = pruned
        self.n_valid -= sum(p for p, w in zip(self.pruned, self.weights, strict=True) if w > 0)
        self.empty = empty
        self.n_empty = sum(self.empty)
        if isinstance(pool, ExhaustiveOrder):
            pool.seek(position)
        else:
            for i in np.flatnonzero(self.pruned).tolist():
                pool.exclude(i)
            if self.single:
                for entry in entries:
                    pool.exclude(entry[0])
            if tree:
                pool.use_tree()
            if state.get("proposing", True) is False:
                pool.stop_proposing()
            assert pool.proposals is not None
            pool.proposals.load(state["proposals"], where, "proposals")
        weights = [self.weights[entry[0]] for entry in entries]
        self.slots.restore(entries, weights, state["sel"], where)
        # Loading a stream draws its block again from the block's start: the generator's own
        # position comes last.
        _state.generator_state(self.rng, state["gen"], where, "gen")


def _uniform_subset(n: int, m: int, rng: np.random.Generator) -> list[int]:
    """``m`` distinct numbers of ``0 .. n - 1``, every set equally likely (Floyd's algorithm:
    O(m), one numpy call)."""
    chosen: dict[int, None] = {}  # (ordered: the result is a function of the uniforms)
    us = rng.random(m).tolist()
    for j, u in zip(range(n - m, n), us, strict=True):
        t = int(u * (j + 1))
        chosen[j if t in chosen else t] = None
    return list(chosen)
