"""Candidate pools: which streamer a mux activates next (private).

Two requirements shape these classes:

- **Speed.** Refilling a slot must cost O(1), or O(log n) at worst, never O(number of
  streamers), and the common case must run in C: a mux takes the pool's next *proposal*,
  from a block of uniforms that numpy maps to streamers at once (:mod:`pescador.mux._draws`).
- **Canonical draws.** A draw must depend only on the uniform numbers consumed and on the
  current *set* of candidates, never on the history that produced that set (no swap-removal
  orders). A checkpoint then needs only the set, which the mux state already implies (the
  active slots, plus a bitmap of pruned streamers), and a resumed mux draws exactly as the
  uninterrupted one would.

:class:`CandidatePool` (``with_replacement`` and ``single_active``) draws from a fixed table of
every positive-weight streamer and rejects excluded ones (pruned, or checked out by an active
slot). After ``MAX_REJECTIONS`` rejections in one draw it switches, for the rest of the
iteration, to a :class:`SumTree` over the candidates: O(n) once, then O(log n). Whether it has
switched is part of its state. A mux first tries the pool's proposal (the same fixed table,
C-level) and calls :meth:`CandidatePool.draw` only if the proposal is excluded.

:class:`ExhaustiveOrder` (``exhaustive``) fixes the whole activation order at the start:
sorting exponential clocks divided by the weights (Efraimidis-Spirakis) is exactly sequential
weighted sampling without replacement. A draw (a proposal, never rejected) is then the next
element, and the state is a position.
"""

from __future__ import annotations

import base64
import math
import zlib
from bisect import bisect_right
from collections.abc import Callable, Sequence
from functools import partial
from itertools import chain, repeat
from operator import length_hint

import numpy as np

from .. import _state
from ._args import equal_weights, weights_or_uniform
from ._draws import Mapped, searched

Uniform = Callable[[], float]


def pack_flags(flags: Sequence[bool]) -> str:
    """A compact, JSON-friendly encoding of a boolean list (compressed bitmap)."""
    if not any(flags):
        return ""
    bits = np.packbits(np.asarray(flags, dtype=bool)).tobytes()
    return base64.b64encode(zlib.compress(bits, 9)).decode("ascii")


def unpack_flags(text: str, n: int) -> list[bool]:
    """Inverse of :func:`pack_flags` (a StateError for a string it did not make)."""
    return _state.flags(text, n, "state", "flags")


class CandidatePool:
    """Streamers that may be activated, drawn in proportion to their weights.

    Parameters
    ----------
    weights : list of float or None
        Per-streamer weights (``None`` for uniform); streamers with weight 0 are never drawn.
    n : int
        The number of streamers.
    gen : numpy Generator, optional
        The source of :attr:`proposals` (a mux's fast path; :meth:`draw` needs none).
    """

    MAX_REJECTIONS = 16

    __slots__ = (
        "count",
        "cum",
        "excluded",
        "ids",
        "proposals",
        "propose",
        "proposing",
        "total",
        "tree",
        "weights",
    )

    def __init__(
        self,
        weights: Sequence[float] | np.ndarray | None,
        n: int,
        gen: np.random.Generator | None = None,
    ) -> None:
        # Built with numpy: a mux builds a pool at every iteration, over every streamer.
        w = weights_or_uniform(weights, n)
        self.weights: list[float] = w.tolist()
        positive = w > 0
        ids = np.flatnonzero(positive)
        self.ids: list[int] = ids.tolist()
        # Uniform weights need no table: ids[int(u * len(ids))]. Otherwise bisect_right(cum,
        # u * total); the last sum is infinite, as u * total may round up to total.
        self.cum: list[float] | None = None
        self.total = float(len(self.ids))
        cum = None
        if not equal_weights(w):
            cum = np.cumsum(w[positive])  # sums left to right, as itertools.accumulate
            self.total = float(cum[-1])
            cum[-1] = math.inf
            self.cum = cum.tolist()
        self.excluded: list[bool] = (~positive).tolist()
        self.count = len(self.ids)  # candidates not excluded
        self.tree: SumTree | None = None
        # Proposals: streamers drawn in proportion to their weights among *all* the
        # positive-weight ones, a C-level stream (the table never changes, so numpy maps a
        # whole block of uniforms to streamers at once). A proposal that is excluded must be
        # rejected, and draw() used instead: an accepted one is drawn as draw() would.
        self.proposals: Mapped | None = None
        self.proposing = True  # until a weight changes (set_weight)
        if gen is not None:
            if cum is None:
                self.proposals = Mapped(gen, partial(_pick, ids, len(ids)))
            else:
                self.proposals = Mapped(gen, searched(cum, self.total, ids))
            self.propose = self.proposals.draw

    def __len__(self) -> int:
        return self.count

    def __contains__(self, i: int) -> bool:
        return not self.excluded[i]

    def draw(self, uniform: Uniform) -> int:
        """A candidate, with probability proportional to its weight."""
        if self.tree is not None:
            return self.tree.draw(uniform)
        ids, excluded, cum = self.ids, self.excluded, self.cum
        for _ in range(self.MAX_REJECTIONS):
            if cum is None:
                i = ids[int(uniform() * len(ids))]
            else:
                i = ids[bisect_right(cum, uniform() * self.total)]
            if not excluded[i]:
                return i
        self.use_tree()
        assert self.tree is not None
        return self.tree.draw(uniform)

    def use_tree(self) -> None:
        """Switch to exact draws from a sum tree over the current candidates."""
        if self.tree is None:
            n = len(self.weights)
            self.tree = SumTree(self.weights, [not x for x in self.excluded[:n]])

    def stop_proposing(self) -> None:
        """Draw from the sum tree only: :attr:`propose` gives a sentinel that is excluded, so
        every draw is :meth:`draw`'s (the proposals' table has the weights the pool was built
        with)."""
        if self.proposing:
            self.use_tree()
            n = len(self.weights)
            self.excluded.append(True)  # [n]: the sentinel
            self.propose = repeat(n).__next__
            self.proposing = False

    def set_weight(self, i: int, weight: float, available: bool) -> None:
        """Streamer ``i`` now weighs ``weight``; ``available``: neither pruned nor checked out
        (a candidate if its weight is positive). O(log n); the pool stops proposing."""
        self.stop_proposing()
        tree = self.tree
        assert tree is not None
        self.weights[i] = tree.weights[i] = weight
        candidate = available and weight > 0
        if candidate == self.excluded[i]:
            self.count += 1 if candidate else -1
        self.excluded[i] = not candidate
        tree.set(i, weight if candidate else 0.0)

    def exclude(self, i: int) -> None:
        """Take streamer ``i`` out of the candidates (checked out, or pruned)."""
        if not self.excluded[i]:
            self.excluded[i] = True
            self.count -= 1
            if self.tree is not None:
                self.tree.set(i, 0.0)

    def include(self, i: int) -> None:
        """Put streamer ``i`` back among the candidates."""
        if self.excluded[i] and self.weights[i] > 0:
            self.excluded[i] = False
            self.count += 1
            if self.tree is not None:
                self.tree.set(i, self.weights[i])


def _pick(ids: np.ndarray, n: int, raw: np.ndarray) -> list[int]:
    return ids[(raw * n).astype(np.intp)].tolist()


class ExhaustiveOrder:
    """Every positive-weight streamer once, in weighted-random order fixed at the start.

    :attr:`propose` gives the next streamer (C-level), then ``-1`` once the order is used up:
    like :class:`CandidatePool`'s proposals, and ``-1`` is :attr:`excluded`.
    """

    __slots__ = ("_rest", "excluded", "order", "propose")

    def __init__(
        self, weights: Sequence[float] | np.ndarray | None, n: int, rng: np.random.Generator
    ) -> None:
        w = weights_or_uniform(weights, n)
        keys = rng.exponential(size=n)
        positive = w > 0
        keys[positive] /= w[positive]
        keys[~positive] = np.inf
        order = np.argsort(keys, kind="stable")
        self.order: list[int] = order[: int(positive.sum())].tolist()
        self.excluded = [False] * n + [True]  # [-1]: the end of the order
        self.seek(0)

    def __len__(self) -> int:
        return length_hint(self._rest)

    @property
    def position(self) -> int:
        """How many streamers have been drawn."""
        return len(self.order) - length_hint(self._rest)

    def seek(self, position: int) -> None:
        """Continue from ``position`` in the order (from a checkpoint)."""
        rest = iter(self.order)
        rest.__setstate__(position)  # type: ignore[attr-defined]
        self._rest = rest
        self.propose: Callable[[], int] = chain(rest, repeat(-1)).__next__

    def draw(self, uniform: Uniform | None = None) -> int:
        """The next streamer in the order."""
        i = self.propose()
        if i < 0:
            raise LookupError("draw from an exhausted order")
        return i


class SumTree:
    """Weighted draws from a binary sum tree; O(log n) draws and updates.

    Each node is recomputed as the exact sum of its two children on every update (never
    adjusted by differences), so sums do not drift: removing a huge weight leaves a tiny one
    intact, and the tree's content depends only on the current weights.
    """

    __slots__ = ("leaves", "tree", "weights")

    def __init__(self, weights: Sequence[float], present: Sequence[bool]) -> None:
        self.weights = list(weights)
        leaves = 1
        while leaves < max(1, len(self.weights)):
            leaves *= 2
        self.leaves = leaves
        tree = [0.0] * (2 * leaves)
        tree[leaves : leaves + len(self.weights)] = [
            w if p and w > 0 else 0.0 for w, p in zip(self.weights, present, strict=True)
        ]
        for node in range(leaves - 1, 0, -1):
            tree[node] = tree[2 * node] + tree[2 * node + 1]
        self.tree = tree

    def set(self, i: int, value: float) -> None:
        tree = self.tree
        node = self.leaves + i
        tree[node] = value
        node >>= 1
        while node:
            tree[node] = tree[2 * node] + tree[2 * node + 1]
            node >>= 1

    def draw(self, uniform: Uniform) -> int:
        tree, leaves = self.tree, self.leaves
        if tree[1] <= 0:
            raise LookupError("draw from an empty pool")
        x = uniform() * tree[1]
        node = 1
        while node < leaves:
            node *= 2
            left = tree[node]
            if x >= left:
                x -= left
                node += 1
        if tree[node] > 0:
            return node - leaves
        # Rounding carried x past the last positive leaf of a subtree: the nearest candidate
        # to the left is the one whose interval x was meant to fall in.
        for j in range(node - leaves, -1, -1):
            if tree[leaves + j] > 0:
                return j
        return next(j for j in range(len(self.weights)) if tree[leaves + j] > 0)
