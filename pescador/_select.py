"""Selection policies: which slot a mux draws from next, and what happens when a slot ends.

A mux is one loop (:func:`pescador.mux._mux_loop`) plus one of these policies. A policy owns
the *slots*: each slot runs one activation of a child stream and has a pull function, a
remaining budget and the child's iterator. The loop asks the policy for an ``order()`` of slot
indices and tells it when a slot's activation ends (``ended(k)``); everything else about
Stochastic, Shuffled, RoundRobin and Chain muxes lives here.

Random decisions come from two generators derived from the mux's seed: one draws the per-item
slot choices in blocks (no numpy call per item), the other the per-activation choices (which
streamer, its budget). Child activation ``n`` gets the seed ``seed.child(n)``.
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from itertools import accumulate
from typing import Any

import numpy as np

from ._pools import UniformPool, WeightedPool
from ._rng import BLOCK, Seed, Uniforms, binomial_table, poisson_table
from .core import Streamer, StreamIterator
from .exceptions import PescadorError

#: Budget of an activation without a rate limit (never reached).
UNLIMITED = sys.maxsize


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``, also on Python 3.10."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # pragma: no cover - Python 3.10
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]


def _finished() -> Any:
    raise StopIteration


class Slots:
    """The slot table shared by every policy, and the opening and closing of children."""

    def __init__(self, name: str, streamers: Sequence[Streamer], seed: Seed) -> None:
        self.name = name
        self.streamers = streamers
        self.seed = seed
        self.opened = 0  # activations opened so far: child n gets seed.child(n)
        self.pulls: list[Callable[[], Any]] = []
        self.left: list[int] = []
        self.iters: list[StreamIterator[Any] | None] = []
        self.idx: list[int] = []

    def order(self) -> Iterator[int]:
        """The slot to pull next, for as long as the mux runs."""
        raise NotImplementedError

    def ended(self, k: int) -> None:
        """Slot ``k``'s activation ended: its stream was exhausted or its budget spent."""
        raise NotImplementedError

    def describe(self, i: int) -> str:
        """Where an error came from, for the note added to it."""
        return f"raised by streamer {i} of {self.name}: {self.streamers[i]!r}"

    def open(self, k: int, i: int, budget: int, stream: Streamer | None = None) -> None:
        """Start an activation of streamer ``i`` (or ``stream``) in slot ``k`` with ``budget``."""
        seed = self.seed
        if stream is None:
            stream = self.streamers[i]
        child = stream._iterate(None, seed.child(self.opened), False)
        self.opened += 1
        try:
            pull = iter(child).__next__
        except Exception as exc:
            add_note(exc, self.describe(i))
            raise
        if k == len(self.pulls):
            self.pulls.append(pull)
            self.left.append(budget)
            self.iters.append(child)
            self.idx.append(i)
        else:
            self.pulls[k] = pull
            self.left[k] = budget
            self.iters[k] = child
            self.idx[k] = i

    def finish(self, k: int) -> int:
        """Close slot ``k``'s activation and return how many items it delivered."""
        child = self.iters[k]
        if child is None:
            return 0
        child.close()
        self.iters[k] = None
        self.pulls[k] = _finished
        return child.items_delivered

    def close(self) -> None:
        for k in range(len(self.iters)):
            self.finish(k)


class RandomSlots(Slots):
    """Slots drawn at random, in proportion to their weights, from block-drawn uniforms.

    Live slots are kept in ``0 .. n_live - 1``: a slot that dies is swapped with the last live
    one, so a uniform draw is ``int(u * n_live)`` and a weighted one a bisection of the
    cumulative slot weights.
    """

    def __init__(
        self, name: str, streamers: Sequence[Streamer], seed: Seed, uniform: bool
    ) -> None:
        super().__init__(name, streamers, seed)
        self.uniform = uniform
        self.w: list[float] = []  # weight of each slot's streamer
        self.cum: list[float] = []  # cumulative weights of the live slots (weighted only)
        self.n_live = 0
        self.total = 0.0  # the live slots' total weight
        self.scale = [0.0]  # the same, shared with order()
        self.sel = seed.generator(0)
        self.block_state: Any = {}
        self.block: Iterator[float] = iter(())

    def order(self) -> Iterator[int]:
        sel = self.sel
        cum = self.cum
        while self.n_live:
            self.block_state = sel.bit_generator.state
            self.block = block = iter(sel.random(BLOCK).tolist())
            if self.uniform:
                for u in block:
                    n = self.n_live
                    if not n:
                        return
                    yield int(u * n)
            else:
                scale = self.scale
                for u in block:
                    if not cum:
                        return
                    yield bisect_right(cum, u * scale[0])

    def reweigh(self) -> None:
        """Recompute the live slots' total and cumulative weights.

        The last cumulative weight is replaced by infinity, so that ``bisect_right(cum,
        u * total)`` for ``u`` in [0, 1) lands on a live slot (every live slot has a positive
        weight) in proportion to its weight, even when ``u * total`` rounds up to ``total``.
        """
        if self.uniform:
            self.total = float(self.n_live)
            return
        cum = self.cum
        cum[:] = accumulate(self.w[: self.n_live])
        self.total = self.scale[0] = cum[-1] if cum else 0.0
        if cum:
            cum[-1] = math.inf

    def kill(self, k: int) -> None:
        """Slot ``k`` has no more streams: move the last live slot into its place."""
        self.finish(k)
        last = self.n_live - 1
        if k != last:
            tables: tuple[list[Any], ...] = (self.pulls, self.left, self.iters, self.idx, self.w)
            for table in tables:
                table[k], table[last] = table[last], table[k]
        self.n_live = last
        self.reweigh()

    def stop(self) -> None:
        """End the iteration: close every slot."""
        self.close()
        self.n_live = 0
        self.total = 0.0
        self.cum.clear()

    def live_weight(self) -> float:
        """The total weight of the live slots."""
        return self.total


class StochasticPolicy(RandomSlots):
    """StochasticMux: ``n_active`` slots refilled from a pool of candidate streamers."""

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
    ) -> None:
        n = len(streamers)
        candidates = range(n) if weights is None else np.flatnonzero(weights > 0).tolist()
        uniform = weights is None or bool(np.all(weights[candidates] == weights[candidates[0]]))
        super().__init__(name, streamers, seed, uniform)
        self.weights = [1.0] * n if weights is None else weights.tolist()
        self.pool: UniformPool | WeightedPool = (
            UniformPool(n, candidates) if uniform else WeightedPool(self.weights)
        )
        self.n_valid = len(self.pool)  # candidates not pruned
        self.rate = rate
        self.mode = mode
        self.dist = dist
        self.prune = prune
        self.act = seed.generator(1)  # budgets (numpy scalar draws: state is exact)
        self.uni = Uniforms(seed.generator(2))  # streamer choices and rounding
        # Empty activations since the last productive one (to end rather than spin, A6).
        self.empty_epoch = 1
        self.empty_stamp = [0] * n
        self.empty_count = 0
        self.pruned = [False] * n

        chosen: list[int] = []
        for _ in range(n_active):
            if not len(self.pool):
                break
            i = self.pool.draw(self.uni)
            if mode != "with_replacement":
                self.pool.remove(i, permanently=mode == "exhaustive")
            chosen.append(i)
        self.w = [self.weights[i] for i in chosen]
        self.n_live = len(chosen)
        total = sum(self.w)
        for k, i in enumerate(chosen):
            self.open(k, i, self.budget(self.w[k], total - self.w[k]))
        self.reweigh()

    def budget(self, w_new: float, w_others: float) -> int:
        """Draw an activation's item budget ``R`` (mean ``rate``, at least 1)."""
        rate = self.rate
        if rate is None:
            return UNLIMITED
        dist = self.dist
        if dist == "constant":
            return math.ceil(rate)
        # With uniform weights the budget distributions are few: sample them by inverse CDF
        # from the uniform stream. Otherwise p varies per activation: ask numpy.
        if dist == "binomial" and w_others > 0:
            p = w_new / (w_others + w_new)
            if p <= 0.9999:
                q = 1.0 - p
                n_real = (rate - 1.0) / q
                n = int(n_real)
                # Randomised rounding keeps E[n] = n_real, hence E[R] = rate exactly.
                if n_real > n and self.uni() < n_real - n:
                    n += 1
                table = binomial_table(n, q) if self.uniform else None
                if table is None:
                    return 1 + int(self.act.binomial(n, q))
                return 1 + bisect_right(table, self.uni())
        table = poisson_table(rate - 1.0) if self.uniform else None
        if table is None:
            return 1 + int(self.act.poisson(rate - 1.0))
        return 1 + bisect_right(table, self.uni())

    def ended(self, k: int) -> None:
        taken = self.finish(k)
        i = self.idx[k]
        pool = self.pool
        single = self.mode == "single_active"
        if taken:
            if self.empty_count:
                self.empty_epoch += 1
                self.empty_count = 0
            if single:
                pool.add(i)
        elif self.prune:
            if not self.pruned[i]:
                self.pruned[i] = True
                self.n_valid -= 1
                pool.remove(i, permanently=True)
        else:
            if self.empty_stamp[i] != self.empty_epoch:
                self.empty_stamp[i] = self.empty_epoch
                self.empty_count += 1
                if self.empty_count >= self.n_valid:
                    self.stop()  # every candidate came up empty since the last item (A6)
                    return
            if single:
                pool.add(i)
        if not len(pool):
            self.kill(k)
            return
        j = pool.draw(self.uni)
        if self.mode != "with_replacement":
            pool.remove(j, permanently=self.mode == "exhaustive")
        w_new = self.weights[j]
        self.open(k, j, self.budget(w_new, self.live_weight() - self.w[k]))
        if w_new != self.w[k]:
            self.w[k] = w_new
            self.reweigh()


class ShuffledPolicy(RandomSlots):
    """ShuffledMux: every streamer with positive weight has a slot; ended ones restart."""

    def __init__(
        self, name: str, streamers: Sequence[Streamer], seed: Seed, weights: np.ndarray | None
    ) -> None:
        n = len(streamers)
        members = range(n) if weights is None else np.flatnonzero(weights > 0).tolist()
        uniform = weights is None or bool(np.all(weights[members] == weights[members[0]]))
        super().__init__(name, streamers, seed, uniform)
        self.w = [1.0 if weights is None else float(weights[i]) for i in members]
        self.n_live = len(members)
        for k, i in enumerate(members):
            self.open(k, i, UNLIMITED)
        self.reweigh()

    def ended(self, k: int) -> None:
        if self.finish(k):
            self.open(k, self.idx[k], UNLIMITED)
        else:
            self.kill(k)  # yielded nothing since its start: drop it for this iteration


class RoundRobinPolicy(Slots):
    """RoundRobinMux: one item per live streamer per turn, in order (or permuted per pass)."""

    def __init__(self, name: str, streamers: Sequence[Streamer], seed: Seed, mode: str) -> None:
        super().__init__(name, streamers, seed)
        self.mode = mode
        self.sel = seed.generator(0)
        self.alive = [False] * len(streamers)
        self.turns: list[int] = []
        self.produced = 0
        self.restart(list(range(len(streamers))))

    def restart(self, turns: list[int]) -> None:
        for i in turns:
            self.open(i, i, UNLIMITED)
            self.alive[i] = True
        self.turns = turns
        self.produced = 0

    def order(self) -> Iterator[int]:
        while True:
            turns = self.turns
            if not turns:
                if self.mode == "exhaustive" or not self.produced:
                    return
                restart = list(range(len(self.streamers)))
                if self.mode == "permuted_cycle":
                    restart = self.sel.permutation(len(restart)).tolist()
                self.restart(restart)
                continue
            yield from turns
            alive = self.alive
            self.turns = [k for k in turns if alive[k]]

    def ended(self, k: int) -> None:
        self.produced += self.finish(k)
        self.alive[k] = False


class ChainPolicy(Slots):
    """ChainMux: one slot running the streamers one after another."""

    def __init__(
        self, name: str, source: Callable[[], Iterator[Any]], seed: Seed, cycle: bool
    ) -> None:
        super().__init__(name, [], seed)
        self.source = source
        self.cycle = cycle
        self.pending: Iterator[Any] = source()
        self.position = -1  # index of the running streamer in the current pass
        self.produced = 0
        self.live = True
        self.current: Streamer | None = None
        self.advance()

    def describe(self, i: int) -> str:
        return f"raised by streamer {i} of {self.name}: {self.current!r}"

    def advance(self) -> None:
        """Open the next streamer in slot 0, starting a new pass if cycling."""
        while True:
            for item in self.pending:
                self.position += 1
                self.current = (
                    item if isinstance(item, Streamer) else _as_streamer(item, self.name)
                )
                self.open(0, self.position, UNLIMITED, self.current)
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

    def ended(self, k: int) -> None:
        self.produced += self.finish(k)
        self.advance()


def _as_streamer(item: Any, name: str) -> Streamer:
    try:
        return Streamer(item)
    except PescadorError as exc:
        raise PescadorError(f"{name} received an item that is not a stream: {item!r}") from exc
