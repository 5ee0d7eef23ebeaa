"""Selection policies: which slot a mux draws from next, and what happens when a slot ends.

A mux is one loop (:func:`pescador.mux._mux_loop`) plus one of these policies. A policy owns
the *slots*: each slot runs one activation of a child stream and has the child's item iterator
(its source), a remaining budget and the child's iterator object. The loop asks the policy for
an ``order()`` of slot indices and tells it when a slot's activation ends (``ended(k)``);
everything else about Stochastic, Shuffled, RoundRobin and Chain muxes lives here, including
their checkpoint state.

The hot path is C-level: ``order()`` is an ``itertools`` pipeline over block-drawn uniforms
(:mod:`pescador._draws`), so the loop spends no Python frame on choosing a slot. Each
iteration's random decisions come from ``seed.generator(0)``; child activation ``n`` gets the
seed ``seed.child(n)``.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import islice
from math import floor
from typing import Any

import numpy as np

from ._draws import EqualSlots, Mapped, Uniforms, WeightedSlots, as_list, searched
from ._pools import CandidatePool, ExhaustiveOrder, pack_flags, unpack_flags
from ._rng import BINOMIAL_MAX_P, INVERSION_MAX_MEAN, Seed, budget_table
from .core import Streamer, StreamIterator, load_state_of
from .exceptions import PescadorError, StateError

#: Budget of an activation without a rate limit (never reached).
UNLIMITED = sys.maxsize


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``, also on Python 3.10."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # pragma: no cover - Python 3.10
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]


#: The source of a slot without an activation: ``next`` on it raises StopIteration.
_FINISHED: Iterator[Any] = iter(())


#: What :meth:`Slots.refill` returns when the draw yields no item.
NOTHING: Any = object()


@functools.lru_cache(maxsize=64)
def _budget_array(dist: str, rate: float, key: float) -> np.ndarray | None:
    """The budget table for ``w_others / w_new == key`` (see :func:`budget_table`), shared by
    every iteration: with equal weights there is one per live-slot count."""
    table = budget_table(dist, rate, 1 / (key + 1))
    return None if table is None else np.array(table)


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
            child, pull = (self.streamers[i] if stream is None else stream)._open_child(
                (self.seed, cid)
            )
        except Exception as exc:
            add_note(exc, self.describe(i))
            raise
        # pull is the bound __next__ of the child's C-level item iterator: keep the iterator,
        # for the loop's next() (a builtin call costs less than a bound method's).
        self.sources[k] = pull.__self__  # type: ignore[attr-defined]
        self.left[k] = budget
        self.iters[k] = child
        self.idx[k] = i
        self.cids[k] = cid

    def resume_slot(self, k: int, entry: list[Any], stream: Streamer | None = None) -> None:
        """Restore slot ``k`` from its checkpoint ``entry`` (see :meth:`slot_state`)."""
        i, budget, cid, state = entry
        try:
            child = (self.streamers[i] if stream is None else stream)._iterate(
                None, (self.seed, cid), False
            )
            load_state_of(child, state)
            source = iter(child)
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


class ShuffledPolicy(RandomSlots):
    """ShuffledMux: every streamer with positive weight has a slot; ended ones restart."""

    __slots__ = ()

    def __init__(
        self,
        name: str,
        streamers: Sequence[Streamer],
        seed: Seed,
        weights: np.ndarray | None,
        resume: Mapping[str, Any] | None = None,
    ) -> None:
        n = len(streamers)
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        members: list[int] = np.flatnonzero(w > 0).tolist()
        super().__init__(name, streamers, seed, w, seed.generator(0), len(members))
        wlist = self.weights
        if resume is None:
            self.sel.reset([wlist[i] for i in members])
            self.n_live = len(members)
            self.reserve(self.n_live)
            for k, i in enumerate(members):
                self.open(k, i, UNLIMITED)
        else:
            self.opened = resume["opened"]
            slots = resume["slots"]
            self.sel.reset([wlist[entry[0]] for entry in slots])
            self.sel.load(resume["sel"])
            self.n_live = len(slots)
            self.restore_slots(slots)

    retry = True  # the same streamer restarts: the draw stays with it

    def ended(self, k: int) -> bool:
        if self.finish(k):
            self.open(k, self.idx[k], UNLIMITED)
            return True
        self.kill(k)  # yielded nothing since its start: drop it for this iteration
        return False

    def views(self) -> tuple[list[Any], list[float], list[int], list[int]]:
        """Per streamer (as in pescador 3.0): dropped streamers have weight 0."""
        n = len(self.streamers)
        streams: list[Any] = [None] * n
        weights = [0.0] * n
        counts = [0] * n
        for k in range(self.n_live):
            i, child = self.idx[k], self.iters[k]
            streams[i], weights[i] = child, self.sel.w[k]
            counts[i] = 0 if child is None else child.items_delivered
        return streams, weights, counts, list(range(n))

    def state(self) -> dict[str, Any]:
        return {"opened": self.opened, "slots": self.live_slots(), "sel": self.sel.state()}


class RoundRobinPolicy(Slots):
    """RoundRobinMux: one item per live streamer per turn, in order (or permuted per pass)."""

    __slots__ = ("alive", "mode", "produced", "sel", "turn", "turns")

    def __init__(
        self,
        name: str,
        streamers: Sequence[Streamer],
        seed: Seed,
        mode: str,
        resume: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name, streamers, seed)
        n = len(streamers)
        self.mode = mode
        self.sel = seed.generator(0)
        self.alive = [False] * n
        self.turns: list[int] = []
        self.turn = 0  # position in the current pass's turns
        self.produced = 0  # items since the streams were last (re)started
        if resume is None:
            self.reserve(n)
            self.restart(list(range(n)))
            return
        self.opened = resume["opened"]
        self.sel.bit_generator.state = resume["sel"]
        self.turns, self.turn, self.produced = resume["turns"], resume["turn"], resume["produced"]
        self.reserve(n)
        self.idx = list(range(n))
        for entry in resume["slots"]:
            self.alive[entry[0]] = True
            self.resume_slot(entry[0], entry)

    def restart(self, turns: list[int]) -> None:
        for i in turns:
            self.open(i, i, UNLIMITED)
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
                restart = list(range(len(self.streamers)))
                if self.mode == "permuted_cycle":
                    restart = self.sel.permutation(len(restart)).tolist()
                self.restart(restart)
                continue
            while self.turn < len(turns):
                self.turn += 1
                yield turns[self.turn - 1]
            alive = self.alive
            self.turns = [k for k in turns if alive[k]]
            self.turn = 0

    def ended(self, k: int) -> bool:
        self.produced += self.finish(k)
        self.alive[k] = False  # its turn is used up (as in pescador 3.0)
        return False

    def state(self) -> dict[str, Any]:
        return {
            "opened": self.opened,
            "slots": [self.slot_state(k) for k in range(len(self.iters)) if self.alive[k]],
            "turns": self.turns,
            "turn": self.turn,
            "produced": self.produced,
            "sel": self.sel.bit_generator.state,
        }


class ChainPolicy(Slots):
    """ChainMux: one slot running the streamers one after another."""

    __slots__ = ("current", "cycle", "live", "pending", "position", "produced", "source")

    def __init__(
        self,
        name: str,
        source: Callable[[], Iterator[Any]],
        seed: Seed,
        cycle: bool,
        resume: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name, [], seed)
        self.source = source
        self.cycle = cycle
        self.pending: Iterator[Any] = source()
        self.position = -1  # index of the running streamer in the current pass
        self.produced = 0  # items in the current pass, before the running streamer
        self.live = True
        self.current: Streamer | None = None
        self.reserve(1)
        if resume is None:
            self.advance()
            return
        self.opened = resume["opened"]
        self.produced = resume["produced"]
        if resume["slot"] is None:
            self.live = False
            return
        self.position = resume["slot"][0]
        stream = next(islice(self.pending, self.position, None), None)
        if stream is None:
            raise StateError(f"cannot resume {name}: it now has fewer streamers")
        self.current = stream if isinstance(stream, Streamer) else _as_streamer(stream, name)
        self.resume_slot(0, resume["slot"], self.current)

    def describe(self, i: int) -> str:
        return f"raised by streamer {i} of {self.name}: {self.current!r}"

    def advance(self) -> None:
        """Open the next streamer in slot 0, starting a new pass if cycling."""
        while True:
            for item in self.pending:
                self.position += 1
                stream = item if isinstance(item, Streamer) else _as_streamer(item, self.name)
                self.current = stream
                self.open(0, self.position, UNLIMITED, stream)
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

    runs = True  # each streamer to its end, then the next

    def ended(self, k: int) -> bool:
        self.produced += self.finish(k)
        self.advance()
        return self.live

    def state(self) -> dict[str, Any]:
        live = self.live and self.iters and self.iters[0] is not None
        return {
            "opened": self.opened,
            "produced": self.produced,
            "slot": self.slot_state(0) if live else None,
        }


def _as_streamer(item: Any, name: str) -> Streamer:
    try:
        return Streamer(item)
    except PescadorError as exc:
        raise PescadorError(f"{name} received an item that is not a stream: {item!r}") from exc
