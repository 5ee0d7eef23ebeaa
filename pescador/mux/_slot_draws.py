"""The live slots of a mux, drawn in proportion to their weights: C-level streams (private).

A mux's loop iterates :attr:`~pescador.mux._draws.Uniforms.stream` of one of these for the slot
of each item. Both keep the live slots' weights ``w`` (in slot order) and their ``total``, and
are told when a slot's weight changes (:meth:`set`) or a slot dies (:meth:`remove`: the last
slot takes its place). Built on the block-drawn uniforms of :mod:`pescador.mux._draws`, with
the same exact checkpoint (the block's position).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterator
from itertools import accumulate, compress, repeat
from operator import lt, mul
from typing import Any

import numpy as np

from ._draws import Uniforms

#: Thinning is used while it takes at most this many trials per draw on average.
MAX_TRIALS = 4.0


class WeightedSlotDraws(Uniforms):
    """The live slots of a mux, drawn in proportion to their weights, one uniform per trial.

    ``capacity`` bounds the number of slots (the mux's ``n_active``). With ``equal`` (every
    streamer of the mux weighs the same, which its policy knows: :meth:`reweigh`), a draw is
    a uniform index, ``int(u * n_live)``, mapped a block at a time by numpy (the stream is a
    list iterator). Otherwise two exact ways, chosen by the live weights:

    - **thinning**, while the weights are even enough (at most :data:`MAX_TRIALS` trials per
      draw on average): a trial proposes slot ``j = int(u * capacity)`` and accepts it if the
      fractional part of ``u * capacity`` is below ``w[j] / top``, with ``top`` the largest
      live weight (0 for a slot that is not live). numpy maps each block to proposals once,
      the stream is ``compress`` over them (C-level), and a weight change costs a division.
    - **bisection** otherwise: ``bisect_right(cum, u * total)`` over the cumulative weights,
      which a weight change at slot ``k`` recomputes from ``k`` on.

    Every draw is a function of its uniforms and of the live weights in slot order alone
    (sums are recomputed left to right, never adjusted by differences), so the state is the
    plain block position, and a restored mux draws exactly as the original.

    Reference, the slot of one draw from the uniforms ``us``, for the live weights ``w``::

        def weighted_slot(us, w, capacity):
            top, total = max(w), sum(w)
            if total * MAX_TRIALS >= capacity * top:  # thinning
                while True:
                    v = next(us) * capacity
                    j = int(v)
                    if j < len(w) and v - j < w[j] / top:
                        return j
            cum = list(itertools.accumulate(w))
            cum[-1] = math.inf
            return bisect.bisect_right(cum, next(us) * total)
    """

    __slots__ = ("_frac", "accept", "capacity", "cum", "equal", "thinning", "top", "total", "w")

    def __init__(self, gen: np.random.Generator, capacity: int, equal: bool = False) -> None:
        self.capacity = capacity
        self.equal = equal
        self.w: list[float] = []
        self.total = 0.0
        self.top = 0.0
        self.thinning = True
        self.accept = [0.0] * capacity  # thinning: w[j] / top for live slots, then 0
        self.cum: list[float] = []  # bisection: cumulative weights, the last one infinite
        self._frac: list[float] = []  # thinning: the block's fractional parts of u * capacity
        super().__init__(gen)

    def _tables(self, start: int) -> None:
        """Recompute the current way's table from slot ``start`` on."""
        w = self.w
        if self.thinning:
            top = self.top
            self.accept[start:] = [x / top for x in w[start:]] + [0.0] * (self.capacity - len(w))
            return
        cum = self.cum
        if not w:
            cum.clear()
        elif start:
            # Sums left to right from slot start: the same floats as a full recomputation.
            cum[start - 1 :] = accumulate(w[start:], initial=cum[start - 1])
            cum[-1] = math.inf
        else:
            cum[:] = accumulate(w)
            cum[-1] = math.inf  # u * total may round up to total: the last slot takes it

    def _map(self, raw: np.ndarray) -> list[Any]:
        if self.equal:
            return (raw * len(self.w)).astype(np.intp).tolist()
        if not self.thinning:
            return raw.tolist()
        v = raw * self.capacity
        j = v.astype(np.intp)
        self._frac = (v - j).tolist()  # exact: v and j are within 1 of each other
        return j.tolist()

    def _segment_at(self, block: Iterator[Any], position: int) -> Iterator[Any]:
        if self.equal:
            return block
        if not self.thinning:
            return map(bisect_right, repeat(self.cum), map(mul, block, repeat(self.total)))
        frac = iter(self._frac)
        frac.__setstate__(position)  # type: ignore[attr-defined]
        proposed = iter(self._values)
        proposed.__setstate__(position)  # type: ignore[attr-defined]
        accepted = map(lt, frac, map(self.accept.__getitem__, proposed))
        return compress(block, accepted)

    # -- the weights --------------------------------------------------------------------------
    def set(self, k: int, weight: float) -> None:
        """Slot ``k`` now runs a streamer of weight ``weight``."""
        w = self.w
        old = w[k]
        w[k] = weight
        if self.equal:  # (the same weight: every streamer has it)
            return
        # sum(): left to right over the live slots, never adjusted by differences.
        self.total = sum(w)
        top = self.top
        # The common case: thinning goes on with the same largest weight; one division.
        if (
            self.thinning
            and weight <= top
            and old != top
            and self.total * MAX_TRIALS >= self.capacity * top
        ):
            self.accept[k] = weight / top
            return
        self._update(k)

    def remove(self, k: int) -> None:
        """Slot ``k`` dies: the last slot takes its place."""
        w = self.w
        w[k] = w[-1]
        w.pop()
        if self.equal:
            self._count()
            return
        self.total = sum(w)
        self._update(k)

    def reset(self, weights: list[float]) -> None:
        """The live slots' weights, in slot order (at most ``capacity``)."""
        self.w = weights
        if self.equal:
            self._count()
            return
        self.total = sum(weights)
        self._update(0)

    def reweigh(self, weights: list[float], equal: bool) -> None:
        """New weights for every live slot (the mux's weights changed), and whether every
        streamer of the mux now weighs the same: the way, its table and the rest of the block
        made afresh, as :meth:`reset` makes them (draws stay canonical)."""
        self.equal = equal
        self.w = weights
        if equal:
            self._count()
            return
        self.total = sum(weights)
        self.top = max(weights, default=0.0)
        self.thinning = self.total * MAX_TRIALS >= self.capacity * self.top
        self._tables(0)
        self._switch(remap=True)

    def _count(self) -> None:
        """Equal weights: the total, and the rest of the block mapped for the live count."""
        w = self.w
        self.total = w[0] * len(w) if w else 0.0
        self._switch(remap=True)

    def _update(self, k: int) -> None:
        """The weights changed from slot ``k`` on: update the way, its table and the stream."""
        top = max(self.w, default=0.0)
        thinning = self.total * MAX_TRIALS >= self.capacity * top
        if thinning != self.thinning:
            self.thinning, self.top = thinning, top
            self._tables(0)
            self._switch(remap=True)  # the block mapped for the other way
            return
        if top != self.top:
            self.top = top
            if thinning:
                k = 0  # every acceptance changes
        self._tables(k)
        if not thinning:
            self._switch()  # bisection: the scale, the total, changed


class TreeSlotDraws(WeightedSlotDraws):
    """The slots of a mux with many of them (ShuffledMux: one per streamer), drawn by weight,
    with a slot's weight changed in O(log n).

    Keeps the live weights in two binary trees over ``leaves`` (the least power of two at
    least ``capacity``): node sums (a numpy array) and node maxima. Each node is recomputed
    from its two children on every update, never adjusted by differences, so the trees, the
    ``total`` (the root's sum) and the ``top`` (the root's maximum) depend on the live weights
    in slot order alone, and so do the draws. Three ways, chosen as in
    :class:`WeightedSlotDraws`:

    - ``equal``: a uniform index, ``int(u * n_live)``;
    - **thinning**: a trial proposes slot ``j = int(u * capacity)`` and accepts it if the
      fractional part of ``u * capacity``, times ``top``, is below ``w[j]``. numpy maps each
      block to proposals and scaled fractions; a change that keeps ``top`` costs O(log n) and
      leaves the block as it is; one that changes ``top`` maps the rest of the block again;
    - **descent** otherwise: ``u * total`` goes down the sum tree, every uniform of the block
      at once (numpy, one step per level); a change maps the rest of the block again.

    So a change costs O(log n) plus, at most, mapping the rest of one block (``BLOCK``
    uniforms, O(``BLOCK`` log n) in numpy): never O(n). A slot added beyond ``capacity`` grows
    it (the trees double when it passes ``leaves``).

    Reference, the slot of one draw from the uniforms ``us``, for the live weights ``w``::

        def tree_slot(us, w, capacity):
            leaves = 1
            while leaves < capacity:
                leaves *= 2
            sums = [0.0] * (2 * leaves)
            sums[leaves : leaves + len(w)] = w
            tops = list(sums)
            for node in range(leaves - 1, 0, -1):
                sums[node] = sums[2 * node] + sums[2 * node + 1]
                tops[node] = max(tops[2 * node], tops[2 * node + 1])
            total, top = sums[1], tops[1]
            if total * MAX_TRIALS >= capacity * top:  # thinning
                while True:
                    v = next(us) * capacity
                    j = int(v)
                    if j < len(w) and (v - j) * top < w[j]:
                        return j
            x, node = next(us) * total, 1
            while node < leaves:
                node *= 2
                if x >= sums[node]:
                    x -= sums[node]
                    node += 1
            return min(node - leaves, len(w) - 1)  # (rounding may carry x past the end)
    """

    __slots__ = ("leaves", "sums", "tops")

    def __init__(self, gen: np.random.Generator, capacity: int, equal: bool = False) -> None:
        self.leaves = 1
        self.sums = np.zeros(2)
        self.tops = [0.0, 0.0]
        super().__init__(gen, capacity, equal)

    # -- the trees ----------------------------------------------------------------------------
    def _build(self) -> None:
        """Both trees from the live weights: O(capacity), for a new vector of weights."""
        w = self.w
        self.capacity = capacity = max(self.capacity, len(w))
        leaves = 1
        while leaves < capacity:
            leaves *= 2
        sums = np.zeros(2 * leaves)
        sums[leaves : leaves + len(w)] = w
        tops = sums.copy()
        lo = leaves
        while lo > 1:  # one level at a time: the same floats as node by node
            hi, lo = lo, lo // 2
            sums[lo:hi] = sums[2 * lo : 2 * hi : 2] + sums[2 * lo + 1 : 2 * hi : 2]
            tops[lo:hi] = np.maximum(tops[2 * lo : 2 * hi : 2], tops[2 * lo + 1 : 2 * hi : 2])
        self.leaves, self.sums, self.tops = leaves, sums, tops.tolist()
        self.accept = [*w, *[0.0] * (capacity - len(w))]

    def _path(self, k: int, weight: float) -> None:
        """Slot ``k`` weighs ``weight`` (0: not live): its leaf and the nodes above it."""
        sums, tops = self.sums, self.tops
        node = self.leaves + k
        sums[node] = tops[node] = weight
        self.accept[k] = weight
        node >>= 1
        while node:
            a = 2 * node
            sums[node] = sums[a] + sums[a + 1]
            x, y = tops[a], tops[a + 1]
            tops[node] = x if x >= y else y
            node >>= 1

    def _settle(self, remap: bool = False) -> None:
        """After a change: the total, the top and the way; the rest of the block is mapped
        again unless thinning goes on with the same top (and ``remap`` is not asked)."""
        if self.equal:
            self._count()
            return
        total, top = float(self.sums[1]), self.tops[1]
        thinning = total * MAX_TRIALS >= self.capacity * top
        same = thinning and self.thinning and top == self.top
        self.total, self.top, self.thinning = total, top, thinning
        if remap or not same:
            self._switch(remap=True)

    def _descend(self, raw: np.ndarray) -> list[Any]:
        """The block's slots by descent of the sum tree, all uniforms at once."""
        sums = self.sums
        x = raw * self.total
        node = np.ones(len(raw), dtype=np.intp)
        for _ in range(self.leaves.bit_length() - 1):
            node <<= 1
            left = sums[node]
            right = x >= left
            x -= left * right
            node += right
        node -= self.leaves
        np.minimum(node, len(self.w) - 1, out=node)
        return node.tolist()

    def _map(self, raw: np.ndarray) -> list[Any]:
        if self.equal:
            return (raw * len(self.w)).astype(np.intp).tolist()
        if not self.thinning:
            return self._descend(raw)
        v = raw * self.capacity
        j = v.astype(np.intp)
        self._frac = ((v - j) * self.top).tolist()
        return j.tolist()

    def _segment_at(self, block: Iterator[Any], position: int) -> Iterator[Any]:
        if self.equal or not self.thinning:
            return block
        return super()._segment_at(block, position)  # (accept: the weights themselves)

    # -- the weights --------------------------------------------------------------------------
    def set(self, k: int, weight: float) -> None:
        """Slot ``k`` now runs a streamer of weight ``weight``: O(log n)."""
        self.w[k] = weight
        self._path(k, weight)
        if not self.equal:
            self._settle()

    def add(self, weight: float) -> None:
        """A new live slot, after the others, of weight ``weight``: O(log n) (amortised, if
        it grows ``capacity``)."""
        w = self.w
        k = len(w)
        w.append(weight)
        if k < self.capacity:
            self._path(k, weight)
            self._settle()
            return
        self.capacity = k + 1
        if self.capacity > self.leaves:
            self._build()
        else:
            self.accept.append(0.0)
            self._path(k, weight)
        self._settle(remap=True)  # (thinning's proposals depend on the capacity)

    def remove(self, k: int) -> None:
        """Slot ``k`` dies: the last slot takes its place. O(log n)."""
        w = self.w
        last = len(w) - 1
        w[k] = w[last]
        w.pop()
        if k != last:
            self._path(k, w[k])
        self._path(last, 0.0)
        self._settle()

    def reset(self, weights: list[float]) -> None:
        """The live slots' weights, in slot order: O(capacity)."""
        self.w = weights
        self._build()
        self._settle(remap=True)

    def reweigh(self, weights: list[float], equal: bool) -> None:
        """New weights for every live slot, and whether every streamer of the mux now weighs
        the same: O(capacity)."""
        self.equal = equal
        self.reset(weights)

    def set_equal(self, equal: bool) -> None:
        """Whether every streamer of the mux now weighs the same (the way may change)."""
        if equal != self.equal:
            self.equal = equal
            self._settle(remap=True)


class EqualSlotDraws(WeightedSlotDraws):
    """The live slots of a mux whose streamers all weigh the same: a uniform index each (the
    ``equal`` way of :class:`WeightedSlotDraws`, which it stays in unless told otherwise).

    Reference, the slot of one draw from the uniforms ``us``, for the live weights ``w``::

        def equal_slot(us, w):
            return int(next(us) * len(w))
    """

    __slots__ = ()

    def __init__(self, gen: np.random.Generator, capacity: int = 0) -> None:
        super().__init__(gen, capacity, equal=True)


def slot_draws(equal: bool, gen: np.random.Generator, capacity: int) -> WeightedSlotDraws:
    """The draws of a mux's live slots: equal weights need no thinning nor bisection.

    ``capacity`` bounds the number of live slots (used by weighted draws only). The mux's
    weights may change later: :meth:`WeightedSlotDraws.reweigh`.
    """
    return EqualSlotDraws(gen, capacity) if equal else WeightedSlotDraws(gen, capacity)
