"""Candidate pools: which streamer a mux activates next (private).

Two requirements shape these classes:

- **Speed.** Refilling a slot must cost O(1), or O(log n) at worst, never O(number of
  streamers), and the common case must run in C (a list index or one ``bisect``).
- **Canonical draws.** A draw must depend only on the uniform numbers consumed and on the
  current *set* of candidates, never on the history that produced that set (no swap-removal
  orders). A checkpoint then needs only the set, which the mux state already implies (the
  active slots, plus a bitmap of pruned streamers), and a resumed mux draws exactly as the
  uninterrupted one would.

:class:`CandidatePool` (``with_replacement`` and ``single_active``) draws from a fixed table of
every positive-weight streamer and rejects excluded ones (pruned, or checked out by an active
slot). After ``MAX_REJECTIONS`` rejections in one draw it switches, for the rest of the
iteration, to a :class:`SumTree` over the candidates: O(n) once, then O(log n). Whether it has
switched is part of its state.

:class:`ExhaustiveOrder` (``exhaustive``) fixes the whole activation order at the start:
sorting exponential clocks divided by the weights (Efraimidis-Spirakis) is exactly sequential
weighted sampling without replacement. A draw is then the next element, and the state is a
position.
"""

from __future__ import annotations

import base64
import zlib
from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate

import numpy as np

Uniform = Callable[[], float]


def pack_flags(flags: Sequence[bool]) -> str:
    """A compact, JSON-friendly encoding of a boolean list (compressed bitmap)."""
    if not any(flags):
        return ""
    bits = np.packbits(np.asarray(flags, dtype=bool)).tobytes()
    return base64.b64encode(zlib.compress(bits, 9)).decode("ascii")


def unpack_flags(text: str, n: int) -> list[bool]:
    """Inverse of :func:`pack_flags`."""
    if not text:
        return [False] * n
    bits = np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.uint8)
    flags: list[bool] = np.unpackbits(bits)[:n].astype(bool).tolist()
    return flags


class CandidatePool:
    """Streamers that may be activated, drawn in proportion to their weights.

    Parameters
    ----------
    weights : list of float or None
        Per-streamer weights (``None`` for uniform); streamers with weight 0 are never drawn.
    n : int
        The number of streamers.
    """

    MAX_REJECTIONS = 16

    __slots__ = ("count", "cum", "excluded", "ids", "top", "total", "tree", "weights")

    def __init__(self, weights: Sequence[float] | None, n: int) -> None:
        self.weights = [1.0] * n if weights is None else [float(w) for w in weights]
        self.ids = [i for i, w in enumerate(self.weights) if w > 0]
        # Uniform weights need no table: ids[int(u * len(ids))].
        uniform = len({self.weights[i] for i in self.ids}) <= 1
        self.cum: list[float] | None = (
            None if uniform else list(accumulate(self.weights[i] for i in self.ids))
        )
        self.total = self.cum[-1] if self.cum else float(len(self.ids))
        self.top = len(self.ids) - 1
        self.excluded = [w <= 0 for w in self.weights]
        self.count = len(self.ids)  # candidates not excluded
        self.tree: SumTree | None = None

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
                i = ids[bisect_right(cum, uniform() * self.total, 0, self.top)]
            if not excluded[i]:
                return i
        self.use_tree()
        assert self.tree is not None
        return self.tree.draw(uniform)

    def use_tree(self) -> None:
        """Switch to exact draws from a sum tree over the current candidates."""
        if self.tree is None:
            self.tree = SumTree(self.weights, [not x for x in self.excluded])

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


class ExhaustiveOrder:
    """Every positive-weight streamer once, in weighted-random order fixed at the start."""

    __slots__ = ("order", "position")

    def __init__(self, weights: Sequence[float] | None, n: int, rng: np.random.Generator) -> None:
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        keys = rng.exponential(size=n)
        positive = w > 0
        keys[positive] /= w[positive]
        keys[~positive] = np.inf
        order = np.argsort(keys, kind="stable")
        self.order: list[int] = order[: int(positive.sum())].tolist()
        self.position = 0

    def __len__(self) -> int:
        return len(self.order) - self.position

    def draw(self, uniform: Uniform) -> int:
        i = self.order[self.position]
        self.position += 1
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
