"""Candidate pools: which streamers a mux may activate next, drawn by weight (private).

A pool is a set of streamer indices with positive weights. ``draw(uniform)`` uses uniform
floats in [0, 1) from ``uniform()`` to pick a member with probability proportional to its
weight; ``remove`` and ``add`` change membership. Every operation is O(1) for uniform weights
and O(log n) (amortised) otherwise, so refilling a mux slot never costs O(number of streamers).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate


class UniformPool:
    """Members drawn uniformly; a dense list with swap-removal."""

    __slots__ = ("members", "position")

    def __init__(self, n: int, members: Sequence[int]) -> None:
        self.members = list(members)
        self.position = [-1] * n  # position[i] in members, or -1
        for pos, i in enumerate(self.members):
            self.position[i] = pos

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, i: int) -> bool:
        return self.position[i] >= 0

    def weight(self, i: int) -> float:
        return 1.0

    def draw(self, uniform: Callable[[], float]) -> int:
        members = self.members
        return members[int(uniform() * len(members))]

    def remove(self, i: int, *, permanently: bool = False) -> None:
        """Take ``i`` out of the pool (``permanently`` matters only to weighted pools)."""
        pos = self.position[i]
        if pos < 0:
            return
        members = self.members
        last = members.pop()
        if last != i:
            members[pos] = last
            self.position[last] = pos
        self.position[i] = -1

    def add(self, i: int) -> None:
        if self.position[i] < 0:
            self.position[i] = len(self.members)
            self.members.append(i)

    def state(self) -> list[int]:
        return list(self.members)


class WeightedPool:
    """Members drawn by weight: rejection from a C-level table, with a sum tree as fallback.

    The table holds the cumulative weights of the members at its last rebuild; a draw is one
    bisection, and a drawn streamer that is no longer a member (checked out by an active
    slot, or removed for good) is rejected and drawn again. Weight removed for good is dropped
    by rebuilding the table once it reaches half the table's weight. If a draw is rejected
    ``MAX_REJECTIONS`` times in a row (the members hold a small share of the table's weight,
    e.g. a few heavy streamers are checked out), the pool switches to a :class:`SumTree` for
    the rest of its life: O(n) once, then O(log n) per operation.
    """

    MAX_REJECTIONS = 8

    __slots__ = ("count", "cum", "dead", "dead_weight", "ids", "member", "tree", "weights")

    def __init__(self, weights: Sequence[float]) -> None:
        self.weights = [float(w) for w in weights]
        self.member = [w > 0 for w in self.weights]
        self.dead = [w <= 0 for w in self.weights]  # out of the pool for good
        self.count = sum(self.member)
        self.ids: list[int] = []
        self.cum: list[float] = []
        self.dead_weight = 0.0
        self.tree: SumTree | None = None
        self._rebuild()

    def _rebuild(self) -> None:
        self.ids = [i for i, dead in enumerate(self.dead) if not dead]
        self.cum = list(accumulate(self.weights[i] for i in self.ids))
        self.dead_weight = 0.0

    def __len__(self) -> int:
        return self.count

    def __contains__(self, i: int) -> bool:
        return self.member[i]

    def weight(self, i: int) -> float:
        return self.weights[i]

    def draw(self, uniform: Callable[[], float]) -> int:
        if self.tree is not None:
            return self.tree.draw(uniform)
        cum, ids, member = self.cum, self.ids, self.member
        total, top = cum[-1], len(cum) - 1
        for _ in range(self.MAX_REJECTIONS):
            i = ids[bisect_right(cum, uniform() * total, 0, top)]
            if member[i]:
                return i
        self.tree = SumTree(self.weights, member)
        return self.tree.draw(uniform)

    def remove(self, i: int, *, permanently: bool = False) -> None:
        """Take ``i`` out of the pool (for good with ``permanently``, e.g. pruned)."""
        if self.member[i]:
            self.member[i] = False
            self.count -= 1
            if self.tree is not None:
                self.tree.remove(i)
        if permanently and not self.dead[i]:
            self.dead[i] = True
            self.dead_weight += self.weights[i]
            if self.tree is None and self.count and self.dead_weight * 2 >= self.cum[-1]:
                self._rebuild()

    def add(self, i: int) -> None:
        if not self.member[i] and not self.dead[i]:
            self.member[i] = True
            self.count += 1
            if self.tree is not None:
                self.tree.add(i)

    def state(self) -> list[int]:
        return [i for i, m in enumerate(self.member) if m]


class SumTree:
    """Members drawn by weight from a sum tree (each node the exact sum of its children).

    O(log n) per draw and update, in Python.

    Sums are recomputed from the children on every update rather than adjusted by differences,
    so removing a huge weight leaves a tiny one intact (no floating-point drift).
    """

    __slots__ = ("count", "leaves", "tree", "weights")

    def __init__(self, weights: Sequence[float], present: Sequence[bool]) -> None:
        self.weights = [float(w) for w in weights]
        leaves = 1
        while leaves < max(1, len(self.weights)):
            leaves *= 2
        self.leaves = leaves
        tree = [0.0] * (2 * leaves)
        tree[leaves : leaves + len(self.weights)] = [
            w if p else 0.0 for w, p in zip(self.weights, present, strict=False)
        ]
        for node in range(leaves - 1, 0, -1):
            tree[node] = tree[2 * node] + tree[2 * node + 1]
        self.tree = tree
        self.count = sum(1 for w in tree[leaves:] if w > 0)

    def __len__(self) -> int:
        return self.count

    def __contains__(self, i: int) -> bool:
        return self.tree[self.leaves + i] > 0

    def weight(self, i: int) -> float:
        return self.weights[i]

    def _set(self, i: int, value: float) -> None:
        tree = self.tree
        node = self.leaves + i
        tree[node] = value
        node >>= 1
        while node:
            tree[node] = tree[2 * node] + tree[2 * node + 1]
            node >>= 1

    def draw(self, uniform: Callable[[], float]) -> int:
        tree = self.tree
        leaves = self.leaves
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
        # Rounding put x past the last positive leaf of a subtree: take the nearest member.
        return self._nearest_member(node - leaves)

    def _nearest_member(self, i: int) -> int:
        tree, leaves = self.tree, self.leaves
        for j in range(i, -1, -1):
            if tree[leaves + j] > 0:
                return j
        for j in range(i + 1, len(self.weights)):
            if tree[leaves + j] > 0:
                return j
        raise LookupError("draw from an empty pool")

    def remove(self, i: int) -> None:
        if self.tree[self.leaves + i] > 0:
            self.count -= 1
            self._set(i, 0.0)

    def add(self, i: int) -> None:
        if self.tree[self.leaves + i] == 0 and self.weights[i] > 0:
            self.count += 1
            self._set(i, self.weights[i])

    def state(self) -> list[int]:
        leaves = self.leaves
        return [i for i in range(len(self.weights)) if self.tree[leaves + i] > 0]
