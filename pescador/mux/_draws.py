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
- :class:`~pescador.mux._slot_draws.EqualSlotDraws` and
  :class:`~pescador.mux._slot_draws.WeightedSlotDraws` (in :mod:`pescador.mux._slot_draws`):
  a live slot of a mux, drawn in proportion to its weight.

Each docstring gives a short pure-Python reference that yields the same numbers from the same
uniforms (the tests compare them); the classes compute them with numpy and ``itertools``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from itertools import chain, repeat
from operator import length_hint
from typing import Any

import numpy as np

from .. import _state

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

    Reference, the same numbers::

        def uniforms(gen):
            while True:
                yield from gen.random(BLOCK).tolist()
    """

    __slots__ = (
        "__weakref__",
        "_block",
        "_gen",
        "_live",
        "_raw",
        "_segment",
        "_stale",
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
        # The position from which the block is to be mapped again at the next draw (a mapping
        # changed since), or None.
        self._stale: int | None = None
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
        stale = self._stale
        if stale is not None:  # the mapping changed: the rest of the block, mapped anew
            self._stale = None
            self._remap(stale)
        elif not length_hint(self._block):
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
        """Continue the stream at the same position on a new segment. The old segment is run
        to its end, so the stream asks for the next one. With ``remap``, the rest of the block
        is mapped anew when it does (at the next draw: several changes between two draws cost
        one mapping)."""
        old = self._block
        left = length_hint(old)
        if left:
            if remap:
                self._stale = BLOCK - left
            else:
                self._resume(BLOCK - left)
            old.__setstate__(BLOCK)  # type: ignore[attr-defined]

    def stop(self) -> None:
        """End :attr:`stream` (its consumer has nothing left to draw for)."""
        self._live = False
        self._stale = None
        self._block.__setstate__(BLOCK)  # type: ignore[attr-defined]

    def state(self) -> list[Any]:
        """``[bit generator state at the block's start, position in the block]``."""
        if self._stale is not None:
            return [self._start, self._stale]
        left = length_hint(self._block)
        if left:
            return [self._start, BLOCK - left]
        return [self._gen.bit_generator.state, 0]

    def load(self, state: Sequence[Any], where: str = "state", path: str = "block") -> None:
        """Continue from :meth:`state` (subclasses: after their mapping is restored).

        Raises
        ------
        StateError
            If ``state`` is malformed; the message names ``path`` of ``where``.
        """
        start, position = _state.block(state, where, path, BLOCK - 1)
        _state.generator_state(self._gen, start, where, f"{path}[0]")
        self._start = self._gen.bit_generator.state
        self._stale = None
        old = self._block
        if position:
            self._raw = self._gen.random(BLOCK)
            self._remap(position)
        else:
            self._block = self._segment = iter(())
        old.__setstate__(BLOCK)  # type: ignore[attr-defined]


#: A block of uniforms to the list a :class:`Mapped` stream yields.
BlockMap = Callable[[np.ndarray], list[Any]]


class Mapped(Uniforms):
    """Numbers mapped from the uniforms by numpy, a block at a time: ``mapping(block)`` is
    the list the stream yields, so a draw is one ``next`` whatever the mapping costs.

    :meth:`remap` changes the mapping for the rest of the block (O(``BLOCK``): for changes
    that are rare). The mappings below give the same numbers as the Python references in their
    docstrings (IEEE products, truncation, ``bisect_right``).

    Reference, while ``mapping`` stays the same (after :meth:`remap`, the uniforms left in the
    block are mapped anew)::

        def mapped(gen, mapping):
            while True:
                yield from mapping(gen.random(BLOCK))
    """

    __slots__ = ("mapping",)

    def __init__(self, gen: np.random.Generator, mapping: BlockMap) -> None:
        self.mapping = mapping
        super().__init__(gen)

    def _map(self, raw: np.ndarray) -> list[Any]:
        return self.mapping(raw)

    def remap(self, mapping: BlockMap) -> None:
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


def indices(n: int) -> BlockMap:
    """Each of ``0 .. n - 1`` equally likely.

    Reference, for one uniform ``u``::

        def index(u, n):
            return int(u * n)
    """
    return partial(_indices, n)


def searched(table: np.ndarray, scale: float = 1.0, values: np.ndarray | None = None) -> BlockMap:
    """Inverse-CDF draws from a cumulative table whose last entry is infinite.

    Reference, for one uniform ``u``::

        def search(u, table, scale=1.0, values=None):
            i = bisect.bisect_right(table, u * scale)
            return i if values is None else values[i]
    """
    return partial(_searched, table, scale, values)
