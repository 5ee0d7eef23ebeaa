"""Selection policies: which slot a mux draws from next, and what happens when a slot ends.

A mux is one loop (:func:`pescador.mux._mux_loop`) plus one of these policies. A policy owns
the *slots*: each slot runs one activation of a child stream and has a pull function, a
remaining budget and the child's iterator. The loop asks the policy for an ``order()`` of slot
indices and tells it when a slot's activation ends (``ended(k)``); everything else about
Stochastic, Shuffled, RoundRobin and Chain muxes lives here, including their checkpoint state.

Random decisions come from generators derived from the iteration's seed: ``generator(0)``
draws the per-item slot choices (uniforms in blocks, no numpy call per item), ``generator(1)``
the numpy budget draws, ``generator(2)`` uniforms for streamer choices and rounding, and
``generator(3)`` the exhaustive order. Child activation ``n`` gets the seed ``seed.child(n)``.
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import accumulate, islice
from typing import Any

import numpy as np

from ._pools import CandidatePool, ExhaustiveOrder, pack_flags, unpack_flags
from ._rng import BINOMIAL_MAX_P, Seed, Uniforms, budget_table
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


def _finished() -> Any:
    raise StopIteration


#: What :meth:`Slots.refill` returns when the draw yields no item.
NOTHING: Any = object()


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
        self.cids: list[int] = []  # which child seed each slot's activation has

    def order(self) -> Iterator[int]:
        """The slot to pull next, for as long as the mux runs."""
        raise NotImplementedError

    #: Whether a draw that found its slot's stream ended is retried on the slot's new
    #: activation (when the same streamer restarts, so the draw's odds stay right).
    retry = False

    def ended(self, k: int) -> bool:
        """Slot ``k``'s activation ended (exhausted, or budget spent): refill or retire it.

        Returns whether slot ``k`` holds a new activation.
        """
        raise NotImplementedError

    def refill(self, k: int) -> Any:
        """Slot ``k`` was drawn and its stream had ended: refill it, and if the policy
        retries, return the first item of the new activation (:data:`NOTHING` if none)."""
        while self.ended(k) and self.retry:
            try:
                return self.pulls[k]()
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

    def open(
        self,
        k: int,
        i: int,
        budget: int,
        stream: Streamer | None = None,
        resume: list[Any] | None = None,
    ) -> None:
        """Start an activation of streamer ``i`` (or ``stream``) in slot ``k`` with ``budget``.

        ``resume`` is the slot's entry from a checkpoint (see :meth:`slot_state`).
        """
        if stream is None:
            stream = self.streamers[i]
        if resume is None:
            cid = self.opened
            self.opened += 1
        else:
            cid = resume[2]
        try:
            if resume is None:
                child, pull = stream._open_child((self.seed, cid))
            else:
                child = stream._iterate(None, (self.seed, cid), False)
                load_state_of(child, resume[3])
                pull = iter(child).__next__
        except Exception as exc:
            add_note(exc, self.describe(i))
            raise
        if k == len(self.pulls):
            self.pulls.append(pull)
            self.left.append(budget)
            self.iters.append(child)
            self.idx.append(i)
            self.cids.append(cid)
        else:
            self.pulls[k] = pull
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
        self.pulls[k] = _finished
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
        for k, entry in enumerate(slots):
            self.open(k, entry[0], entry[1], resume=entry)


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
        self.sel = Uniforms(seed.generator(0))

    def order(self) -> Iterator[int]:
        cum = self.cum
        while self.n_live:
            block = self.sel.block()
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
            tables: tuple[list[Any], ...] = (
                self.pulls,
                self.left,
                self.iters,
                self.idx,
                self.cids,
                self.w,
            )
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

    def views(self) -> tuple[list[Any], list[float], list[int], list[int]]:
        n = self.n_live
        iters = self.iters[:n]
        counts = [0 if it is None else it.items_delivered for it in iters]
        return iters, self.w[:n], counts, self.idx[:n]

    def live_slots(self) -> list[list[Any]]:
        return [self.slot_state(k) for k in range(self.n_live)]


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
        resume: Mapping[str, Any] | None = None,
    ) -> None:
        n = len(streamers)
        wlist = [1.0] * n if weights is None else [float(w) for w in weights]
        positive = [w for w in wlist if w > 0]
        super().__init__(name, streamers, seed, uniform=len(set(positive)) == 1)
        self.weights = wlist
        self.rate = rate
        self.mode = mode
        self.dist = dist
        self.prune = prune
        self.act = seed.generator(1)  # budgets (numpy scalar draws: state is exact)
        self.uni = Uniforms(seed.generator(2))  # streamer choices and rounding
        self.tables: dict[float, list[float] | None] = {}  # budget tables (uniform weights)
        self.pool: CandidatePool | ExhaustiveOrder
        if mode == "exhaustive":
            self.pool = ExhaustiveOrder(wlist, n, seed.generator(3))
        else:
            self.pool = CandidatePool(wlist, n)
        self.pruned = [False] * n
        self.n_valid = len(positive)  # candidates not pruned
        # Streamers that came up empty since the last productive activation (A6: end
        # instead of spinning when all did); only tracked without pruning.
        self.empty = [False] * n
        self.n_empty = 0
        if resume is None:
            self.fill(n_active)
        else:
            self.restore(resume)
        self.reweigh()

    def fill(self, n_active: int) -> None:
        chosen: list[int] = []
        for _ in range(n_active):
            if not len(self.pool):
                break
            chosen.append(self.take())
        self.w = [self.weights[i] for i in chosen]
        self.n_live = len(chosen)
        total = sum(self.w)
        for k, i in enumerate(chosen):
            self.open(k, i, self.budget(self.w[k], total - self.w[k]))

    def take(self) -> int:
        """Draw a streamer for a slot and check it out of the pool."""
        pool = self.pool
        i = pool.draw(self.uni)
        if self.mode == "single_active":
            assert isinstance(pool, CandidatePool)
            pool.exclude(i)
        return i

    def budget(self, w_new: float, w_others: float) -> int:
        """Draw an activation's item budget ``R`` (mean ``rate``, at least 1)."""
        rate = self.rate
        if rate is None:
            return UNLIMITED
        dist = self.dist
        if dist == "constant":
            return math.ceil(rate)
        # With uniform weights p takes few values (one per number of live slots): sample
        # from cached inverse-CDF tables with one uniform. Otherwise p varies: ask numpy.
        if self.uniform:
            key = w_others / w_new
            table = self.tables.get(key)
            if table is None:
                table = self.tables[key] = budget_table(dist, rate, 1.0 / (key + 1.0))
            if table:
                return 1 + bisect_right(table, self.uni())
        if dist == "binomial" and w_others > 0:
            p = w_new / (w_others + w_new)
            if p <= BINOMIAL_MAX_P:
                q = 1.0 - p
                n_real = (rate - 1.0) / q
                n = int(n_real)
                # Randomised rounding keeps E[n] = n_real, hence E[R] = rate exactly.
                if n_real > n and self.uni() < n_real - n:
                    n += 1
                return 1 + int(self.act.binomial(n, q))
        return 1 + int(self.act.poisson(rate - 1.0))

    def ended(self, k: int) -> bool:
        taken = self.finish(k)
        i = self.idx[k]
        pool = self.pool
        if taken:
            if self.n_empty:
                self.empty = [False] * len(self.empty)
                self.n_empty = 0
        elif self.prune:
            if not self.pruned[i]:
                self.pruned[i] = True
                self.n_valid -= 1
                if isinstance(pool, CandidatePool):
                    pool.exclude(i)
        elif not self.empty[i]:
            self.empty[i] = True
            self.n_empty += 1
            if self.n_empty >= self.n_valid:
                self.stop()  # every candidate came up empty since the last item (A6)
                return False
        if self.mode == "single_active" and not self.pruned[i]:
            assert isinstance(pool, CandidatePool)
            pool.include(i)
        if not len(pool):
            self.kill(k)
            return False
        j = self.take()
        w_new = self.weights[j]
        self.open(k, j, self.budget(w_new, self.total - self.w[k]))
        if w_new != self.w[k]:
            self.w[k] = w_new
            self.reweigh()
        return True

    def state(self) -> dict[str, Any]:
        pool = self.pool
        state: dict[str, Any] = {
            "opened": self.opened,
            "slots": self.live_slots(),
            "sel": self.sel.state(),
            "uni": self.uni.state(),
            "act": self.act.bit_generator.state,
            "pruned": pack_flags(self.pruned),
        }
        if isinstance(pool, ExhaustiveOrder):
            state["position"] = pool.position
        else:
            state["tree"] = pool.tree is not None
        if self.n_empty:
            state["empty"] = pack_flags(self.empty)
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        n = len(self.streamers)
        self.opened = state["opened"]
        self.sel.load(state["sel"])
        self.uni.load(state["uni"])
        self.act.bit_generator.state = state["act"]
        self.pruned = unpack_flags(state["pruned"], n)
        self.n_valid -= sum(p for p, w in zip(self.pruned, self.weights, strict=True) if w > 0)
        self.empty = unpack_flags(state.get("empty", ""), n)
        self.n_empty = sum(self.empty)
        pool = self.pool
        slots = state["slots"]
        if isinstance(pool, ExhaustiveOrder):
            pool.position = state["position"]
        else:
            for i in np.flatnonzero(self.pruned).tolist():
                pool.exclude(i)
            if self.mode == "single_active":
                for entry in slots:
                    pool.exclude(entry[0])
            if state["tree"]:
                pool.use_tree()
        self.w = [self.weights[entry[0]] for entry in slots]
        self.n_live = len(slots)
        self.restore_slots(slots)


class ShuffledPolicy(RandomSlots):
    """ShuffledMux: every streamer with positive weight has a slot; ended ones restart."""

    def __init__(
        self,
        name: str,
        streamers: Sequence[Streamer],
        seed: Seed,
        weights: np.ndarray | None,
        resume: Mapping[str, Any] | None = None,
    ) -> None:
        n = len(streamers)
        wlist = [1.0] * n if weights is None else [float(w) for w in weights]
        members = [i for i, w in enumerate(wlist) if w > 0]
        super().__init__(name, streamers, seed, len({wlist[i] for i in members}) == 1)
        self.weights = wlist
        if resume is None:
            self.w = [wlist[i] for i in members]
            self.n_live = len(members)
            for k, i in enumerate(members):
                self.open(k, i, UNLIMITED)
        else:
            self.opened = resume["opened"]
            self.sel.load(resume["sel"])
            slots = resume["slots"]
            self.w = [wlist[entry[0]] for entry in slots]
            self.n_live = len(slots)
            self.restore_slots(slots)
        self.reweigh()

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
            streams[i], weights[i] = child, self.w[k]
            counts[i] = 0 if child is None else child.items_delivered
        return streams, weights, counts, list(range(n))

    def state(self) -> dict[str, Any]:
        return {"opened": self.opened, "slots": self.live_slots(), "sel": self.sel.state()}


class RoundRobinPolicy(Slots):
    """RoundRobinMux: one item per live streamer per turn, in order (or permuted per pass)."""

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
            self.restart(list(range(n)))
            return
        self.opened = resume["opened"]
        self.sel.bit_generator.state = resume["sel"]
        self.turns, self.turn, self.produced = resume["turns"], resume["turn"], resume["produced"]
        self.pulls = [_finished] * n
        self.left = [UNLIMITED] * n
        self.iters = [None] * n
        self.idx = list(range(n))
        self.cids = [0] * n
        for entry in resume["slots"]:
            self.alive[entry[0]] = True
            self.open(entry[0], entry[0], UNLIMITED, resume=entry)

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
        self.open(0, self.position, UNLIMITED, self.current, resume=resume["slot"])

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

    retry = True  # the next streamer's first item comes at once

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
