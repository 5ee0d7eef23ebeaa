"""StochasticMux's selection policy: ``n_active`` slots refilled from a pool of candidates.

Each slot runs an activation of a streamer that a candidate pool (:mod:`pescador._pools`)
proposes in proportion to its weight, for a budget of about ``rate`` items (at least 1, drawn
by the law ``dist``; unlimited without a rate); when the budget is spent or the stream ends,
the slot is refilled with a new candidate and budget, or retired when no candidate is left.
Items are drawn from the slots by weight (:class:`~pescador._select.RandomSlots`). Budgets come
from cached inverse-CDF tables (:func:`pescador._rng.budget_table`) where their law allows,
else are drawn afresh.

A streamer whose activation yields nothing is pruned (``prune``), or, without pruning, the
iteration ends once every candidate came up empty since the last item.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from math import floor
from typing import Any

import numpy as np

from .._seeds import Seed
from ..core import Streamer
from ._budgets import BINOMIAL_MAX_P, INVERSION_MAX_MEAN, budget_table
from ._draws import Mapped, Uniforms, as_list, searched
from ._pools import CandidatePool, ExhaustiveOrder, pack_flags, unpack_flags
from ._slots import UNLIMITED, RandomSlots


@functools.lru_cache(maxsize=64)
def _budget_array(dist: str, rate: float, key: float) -> np.ndarray | None:
    """The budget table for ``w_others / w_new == key`` (see :func:`budget_table`), shared by
    every iteration: with equal weights there is one per live-slot count."""
    table = budget_table(dist, rate, 1 / (key + 1))
    return None if table is None else np.array(table)


class StochasticPolicy(RandomSlots):
    """StochasticMux: ``n_active`` slots refilled from a pool of candidate streamers."""

    __slots__ = (
        "binomial",
        "budgets",
        "dist",
        "empty",
        "fixed",
        "gen",
        "key",
        "mode",
        "n_empty",
        "n_valid",
        "next_budget",
        "pool",
        "prune",
        "pruned",
        "rate",
        "single",
        "tabulate",
        "u",
        "uni",
    )

    def __init__(
        self,
        name: str,
        streamers: Sequence[Streamer],
        seed: Seed,
        *,
        weights: np.ndarray | None,
        n_active: int,
        rate: float | None,
        mode: str,
        dist: str,
        prune: bool,
        resume: Mapping[str, Any] | None = None,
    ) -> None:
        n = len(streamers)
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        # One generator for every random decision: its streams draw their blocks from it, and
        # numpy's scalar draws come from it too (a generator is costly to create, and an
        # iteration of a nested mux is short).
        self.gen = gen = seed.generator(0)
        self.pool: CandidatePool | ExhaustiveOrder
        if mode == "exhaustive":
            self.pool = ExhaustiveOrder(w, n, gen)  # first: from the generator's start
        else:
            self.pool = CandidatePool(w, n, gen)
        super().__init__(name, streamers, seed, w, gen, n_active)
        self.rate = rate
        self.mode = mode
        self.single = mode == "single_active"  # a streamer runs in one slot at a time
        self.dist = dist
        self.binomial = dist == "binomial"
        # Budgets: the same for every activation (fixed, 0 if not), or drawn from cached
        # tables (equal weights, or poisson), or drawn afresh (binomial with weights).
        self.fixed = UNLIMITED if rate is None else math.ceil(rate) if dist == "constant" else 0
        self.tabulate = self.uniform or dist == "poisson"
        self.prune = prune
        self.uni = Uniforms(gen)  # for binomial budgets and the pool's own draws
        self.u = self.uni.draw  # one of those uniforms
        # Budgets from tables (see budget()): a C-level stream, mapped by retable().
        self.budgets = Mapped(gen, as_list)
        self.next_budget = self.budgets.draw
        self.key: float | None = None  # the budgets' current table
        self.pruned = [False] * n
        self.n_valid = int(np.count_nonzero(w > 0))  # candidates not pruned
        # Streamers that came up empty since the last productive activation (A6: end
        # instead of spinning when all did); only tracked without pruning.
        self.empty = [False] * n
        self.n_empty = 0
        if resume is None:
            self.fill(n_active)
        else:
            self.restore(resume)

    def fill(self, n_active: int) -> None:
        chosen: list[int] = []
        pool = self.pool
        for _ in range(n_active):
            if not len(pool):
                break
            i = pool.propose()
            if pool.excluded[i]:
                i = pool.draw(self.u)
            if self.single:
                assert isinstance(pool, CandidatePool)
                pool.exclude(i)
            chosen.append(i)
        w = [self.weights[i] for i in chosen]
        self.sel.reset(w)
        self.n_live = len(chosen)
        self.reserve(self.n_live)
        total = self.sel.total
        for k, i in enumerate(chosen):
            self.open(k, i, self.budget(w[k], total - w[k]))

    def budget(self, w_new: float, w_others: float) -> int:
        """Draw an activation's item budget ``R`` (mean ``rate``, at least 1)."""
        if self.fixed:
            return self.fixed
        # The law depends on the weights only through w_others / w_new (poisson: not at all),
        # which takes one value per live-slot count with equal weights: sample from cached
        # inverse-CDF tables with one uniform.
        if self.tabulate:
            key = w_others / w_new if self.binomial else 0.0
            if key == self.key or self.retable(key):
                return 1 + self.next_budget()
        rate = self.rate
        assert rate is not None
        if self.binomial and w_others > 0:
            p = w_new / (w_others + w_new)
            if p <= BINOMIAL_MAX_P:
                q = 1.0 - p
                n_real = (rate - 1.0) / q
                n = floor(n_real)  # (cheaper than int())
                # R - 1 = Binomial(N, q) for N = n or n + 1 (randomised rounding, so that
                # E[N] = n_real and E[R] = rate exactly) = n - Binomial(n, p) + Bernoulli(c):
                # the extra trial of N = n + 1 (probability n_real - n) succeeds with
                # probability q. One uniform decides the Bernoulli and, rescaled, the rest.
                u = self.u()
                c = (n_real - n) * q
                extra = u < c
                u = u / c if extra else (u - c) / (1.0 - c)
                if n * p > INVERSION_MAX_MEAN:
                    return 1 + extra + int(self.gen.binomial(n, q))
                # p, the new slot's share, is usually small: draw Binomial(n, p) by inverse
                # CDF, searching from 0 (a step or two) with the pmf's ratio (numpy's own
                # method for small n * p; inlined: this runs once per activation).
                f = q**n  # P(Binomial(n, p) = 0): far from underflow, as n * p is small
                ratio = p / q
                x = 0
                while u >= f and x < n:
                    u -= f
                    x += 1
                    f *= (n - x + 1) * ratio / x
                return 1 + extra + n - x
        return 1 + int(self.gen.poisson(rate - 1.0))

    def retable(self, key: float) -> bool:
        """Draw budgets from the table for ``key``; False if it has none (too large)."""
        assert self.rate is not None
        table = _budget_array(self.dist, self.rate, key)
        if table is None:
            return False
        self.budgets.remap(searched(table))
        self.key = key
        return True

    def ended(self, k: int) -> bool:
        child = self.iters[k]
        assert child is not None
        child.close()
        if child.items_delivered:
            return self.spent(k)
        if self.came_up_empty(self.idx[k]):
            return False
        return self.spent(k, productive=False)

    def spent(self, k: int, productive: bool = True) -> bool:
        # This runs once per activation: the common case (the budget is spent, another
        # candidate is drawn) is kept to a few calls. (finish(), inlined: open() replaces the
        # slot's entries.)
        child = self.iters[k]
        assert child is not None
        child.close()  # (again from ended(): idempotent)
        if productive and self.n_empty:
            self.empty = [False] * len(self.empty)
            self.n_empty = 0
        pool = self.pool
        if self.single:
            assert isinstance(pool, CandidatePool)
            i = self.idx[k]
            if not self.pruned[i]:
                pool.include(i)
        # The next streamer: the pool's proposal (C-level), unless it is excluded; then the
        # pool draws among its candidates, if any are left.
        j = pool.propose()
        if pool.excluded[j]:
            if not len(pool):
                self.kill(k)
                return False
            j = pool.draw(self.u)
        if self.single:
            assert isinstance(pool, CandidatePool)
            pool.exclude(j)
        w_new = self.weights[j]
        sel = self.sel
        w_old = sel.w[k]
        self.open(k, j, self.budget(w_new, sel.total - w_old))
        if w_new != w_old:
            sel.set(k, w_new)
        return True

    def came_up_empty(self, i: int) -> bool:
        """Streamer ``i``'s activation yielded nothing: prune it, or end the iteration if
        every candidate came up empty since the last item (A6). Returns whether it ended."""
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
                self.stop()
                return True
        return False

    def state(self) -> dict[str, Any]:
        pool = self.pool
        state: dict[str, Any] = {
            "opened": self.opened,
            "slots": self.live_slots(),
            "sel": self.sel.state(),
            "uni": self.uni.state(),
            "budgets": self.budgets.state(),
            "gen": self.gen.bit_generator.state,  # after the streams' blocks (see restore)
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
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        n = len(self.streamers)
        self.opened = state["opened"]
        self.uni.load(state["uni"])
        self.budgets.load(state["budgets"])
        self.pruned = unpack_flags(state["pruned"], n)
        self.n_valid -= sum(p for p, w in zip(self.pruned, self.weights, strict=True) if w > 0)
        self.empty = unpack_flags(state.get("empty", ""), n)
        self.n_empty = sum(self.empty)
        pool = self.pool
        slots = state["slots"]
        if isinstance(pool, ExhaustiveOrder):
            pool.seek(state["position"])
        else:
            for i in np.flatnonzero(self.pruned).tolist():
                pool.exclude(i)
            if self.single:
                for entry in slots:
                    pool.exclude(entry[0])
            if state["tree"]:
                pool.use_tree()
            assert pool.proposals is not None
            pool.proposals.load(state["proposals"])
        self.sel.reset([self.weights[entry[0]] for entry in slots])
        self.sel.load(state["sel"])
        # Loading a stream draws its block again from the block's start: the generator's own
        # position comes last.
        self.gen.bit_generator.state = state["gen"]
        self.n_live = len(slots)
        self.restore_slots(slots)
