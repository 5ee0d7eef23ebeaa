"""Block-drawn uniforms, and the C-level streams of decisions mapped from them (private).

A mux's per-item decision (which slot next) must not cost a Python frame. So the uniforms are
drawn ``BLOCK`` at a time by numpy, and a decision stream is a chain of ``itertools`` objects
over the block's list: the mux's loop iterates it directly. When the mapping must change (a
slot's weight changed, a slot died), the rest of the block is re-mapped from the same
uniforms: the stream continues at the same position, and no uniform is skipped or used twice.

Every stream here has the same exact, small checkpoint: the bit generator's state when the
current block was drawn, and the position in the block (the uniforms used so far). Several
streams may draw their blocks from one generator (a generator is costly to create): the owner
then also saves the generator's state, and restores it after loading every stream.

- :class:`Uniforms`: floats in [0, 1).
- :class:`Mapped`: numbers mapped from them by numpy a block at a time: indices ``int(u * n)``
  (:func:`indices`), inverse-CDF draws from a fixed table (:func:`searched`).
- :class:`EqualSlots` and :class:`WeightedSlots`: a live slot of a mux, drawn in proportion
  to its weight. They also keep the slots' weights and their total.
"""

from __future__ import annotations

import math
import weakref
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from itertools import accumulate, chain, compress, repeat
from operator import length_hint, lt, mul
from typing import Any

import numpy as np

#: Uniforms drawn per block.
BLOCK = 1024


def _next_segment(ref: weakref.ref[Uniforms]) -> Iterator[Any]:
    owner = ref()
    if owner is None:
        raise StopIteration
    return owner._next_segment()


class Uniforms:
    """An endless source of uniform floats in [0, 1), drawn ``BLOCK`` at a time.

    :attr:`stream` is a C-level iterator over the numbers, so a hot loop can map over it, and
    :attr:`draw`, its bound ``__next__``, makes a single draw without a Python frame. Calling
    the object also draws one.

    Subclasses map the block (:meth:`_map`) and build the iterator the stream runs on over it
    (:meth:`_segment_at`); the position always counts the uniforms used.
    """

    __slots__ = (
        "__weakref__",
        "_block",
        "_gen",
        "_live",
        "_raw",
        "_segment",
        "_start",
        "_values",
        "draw",
        "stream",
    )

    def __init__(self, gen: np.random.Generator) -> None:
        self._gen = gen
        self._start: Any = gen.bit_generator.state
        self._raw: np.ndarray | None = None  # the current block
        self._values: list[Any] = []  # the current block, mapped
        self._block: Iterator[Any] = iter(())  # over _values; its length hint gives the position
        self._segment: Iterator[Any] = self._block  # what the stream runs on now
        self._live = True
        # chain.from_iterable asks for the next segment when one ends. It reaches this object
        # through a weak reference: a strong one would make a reference cycle, freed only by
        # the garbage collector.
        self.stream: Iterator[Any] = chain.from_iterable(
            map(_next_segment, repeat(weakref.ref(self)))
        )
        self.draw: Callable[[], Any] = self.stream.__next__

    def __call__(self) -> Any:
        return next(self.stream)

    def _next_segment(self) -> Iterator[Any]:
        if not self._live:
            raise StopIteration
        if not length_hint(self._block):
            self._start = self._gen.bit_generator.state
            self._raw = self._gen.random(BLOCK)
            self._new_block()
            self._remap(0)
        return self._segment

    def _new_block(self) -> None:
        """A new block was drawn (subclasses prepare for it)."""

    def _map(self, raw: np.ndarray) -> list[Any]:
        """The block as the stream's list (before :meth:`_segment_at`)."""
        return raw.tolist()

    def _segment_at(self, block: Iterator[Any], position: int) -> Iterator[Any]:
        """What the stream runs on, given the block's list iterator at ``position``."""
        return block

    def _remap(self, position: int) -> None:
        self._values = self._map(self._raw)  # type: ignore[arg-type]
        self._resume(position)

    def _resume(self, position: int) -> None:
        block = iter(self._values)
        block.__setstate__(position)  # type: ignore[attr-defined]
        self._block = block
        self._segment = self._segment_at(block, position)

    def _switch(self, remap: bool = False) -> None:
        """Continue the stream at the same position on a new segment (the block re-mapped if
        ``remap``). The old segment is run to its end, so the stream asks for the next one."""
        old = self._block
        left = length_hint(old)
        if left:
            if remap:
                self._remap(BLOCK - left)
            else:
                self._resume(BLOCK - left)
            old.__setstate__(BLOCK)  # type: ignore[attr-defined]

    def stop(self) -> None:
        """End :attr:`stream` (its consumer has nothing left to draw for)."""
        self._live = False
        self._block.__setstate__(BLOCK)  # type: ignore[attr-defined]

    def state(self) -> list[Any]:
        """``[bit generator state at the block's start, position in the block]``."""
        left = length_hint(self._block)
        if left:
            return [self._start, BLOCK - left]
        return [self._gen.bit_generator.state, 0]

    def load(self, state: Sequence[Any]) -> None:
        """Continue from :meth:`state` (subclasses: after their mapping is restored)."""
        start, position = state[0], state[1]
        self._gen.bit_generator.state = start
        self._start = start
        old = self._block
        if position:
            self._raw = self._gen.random(BLOCK)
            self._remap(position)
        else:
            self._block = self._segment = iter(())
        old.__setstate__(BLOCK)  # type: ignore[attr-defined]


#: A block of uniforms to the list a :class:`Mapped` stream yields.
Mapping = Callable[[np.ndarray], list[Any]]


class Mapped(Uniforms):
    """Numbers mapped from the uniforms by numpy, a block at a time: ``mapping(block)`` is
    the list the stream yields, so a draw is one ``next`` whatever the mapping costs.

    :meth:`remap` changes the mapping for the rest of the block (O(``BLOCK``): for changes
    that are rare). The mappings below give the same numbers as the Python expressions they
    name (IEEE products, truncation, ``bisect_right``).
    """

    __slots__ = ("mapping",)

    def __init__(self, gen: np.random.Generator, mapping: Mapping) -> None:
        self.mapping = mapping
        super().__init__(gen)

    def _map(self, raw: np.ndarray) -> list[Any]:
        return self.mapping(raw)

    def remap(self, mapping: Mapping) -> None:
        self.mapping = mapping
        self._switch(remap=True)


def as_list(raw: np.ndarray) -> list[Any]:
    return raw.tolist()


def _indices(n: int, raw: np.ndarray) -> list[Any]:
    return (raw * n).astype(np.intp).tolist()


def _searched(
    table: np.ndarray, scale: float, values: np.ndarray | None, raw: np.ndarray
) -> list[Any]:
    found = np.searchsorted(table, raw * scale, side="right")
    return (found if values is None else values[found]).tolist()


def indices(n: int) -> Mapping:
    """``int(u * n)``: each of ``0 .. n - 1`` equally likely."""
    return partial(_indices, n)


def searched(table: np.ndarray, scale: float = 1.0, values: np.ndarray | None = None) -> Mapping:
    """``bisect_right(table, u * scale)`` (or ``values`` at that index): inverse-CDF draws
    from a cumulative table whose last entry is infinite."""
    return partial(_searched, table, scale, values)


class EqualSlots(Mapped):
    """The live slots of a mux whose streamers all weigh the same: a uniform index each.

    Keeps the slots' weights ``w`` (all equal) and their ``total``, like
    :class:`WeightedSlots`.
    """

    __slots__ = ("total", "w")

    def __init__(self, gen: np.random.Generator) -> None:
        super().__init__(gen, indices(0))
        self.w: list[float] = []
        self.total = 0.0

    def reset(self, weights: list[float]) -> None:
        """The live slots' weights, in slot order."""
        self.w = weights
        self._count()

    def set(self, k: int, weight: float) -> None:
        self.w[k] = weight

    def remove(self, k: int) -> None:
        """Slot ``k`` dies: the last slot takes its place."""
        w = self.w
        w[k] = w[-1]
        w.pop()
        self._count()

    def _count(self) -> None:
        w = self.w
        self.total = w[0] * len(w) if w else 0.0
        self.remap(indices(len(w)))


#: Thinning is used while it takes at most this many trials per draw on average.
MAX_TRIALS = 4.0


class WeightedSlots(Uniforms):
    """The live slots of a mux, drawn in proportion to their weights, one uniform per trial.

    ``capacity`` bounds the number of slots (the mux's ``n_active``). Two exact ways, chosen
    by the live weights:

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
    """

    __slots__ = ("_frac", "accept", "capacity", "cum", "thinning", "top", "total", "w")

    def __init__(self, gen: np.random.Generator, capacity: int) -> None:
        self.capacity = capacity
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
        if not self.thinning:
            return raw.tolist()
        v = raw * self.capacity
        j = v.astype(np.intp)
        self._frac = (v - j).tolist()  # exact: v and j are within 1 of each other
        return j.tolist()

    def _segment_at(self, block: Iterator[Any], position: int) -> Iterator[Any]:
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
        self.total = sum(w)
        self._update(k)

    def reset(self, weights: list[float]) -> None:
        """The live slots' weights, in slot order (at most ``capacity``)."""
        self.w = weights
        self.total = sum(weights)
        self._update(0)

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
