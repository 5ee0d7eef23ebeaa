"""The :func:`cache` map: reuse recent items at random, to stretch a slow stream.

Its iterator keeps ``n_cache`` slots of items and draws, per output item, a slot and whether
to refill it from the input, in blocks from a seeded numpy ``Generator``. A checkpoint holds
no items: it records the input's state at its start, the seed, the input positions that the
slots hold and the place in the current block of draws; a restored pass replays the input to
refill the slots.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from operator import length_hint
from typing import Any

import numpy as np

from .. import _state
from .._iterator import restore_source
from .._seeds import RandomStateLike, Seed, check_random_state, resolve_seed
from ..core import Streamer, StreamIterator, iterator_factory, state_of
from ..exceptions import PescadorError, StateError
from ..mux._draws import BLOCK
from ._iterator import _check_stream, _MapIterator, _positive_int

_END = object()


class _CacheIterator(_MapIterator):
    """A pass of :func:`cache`. Its whole state lives on the instance, for checkpoints.

    ``_slots`` holds the cached items and ``_slot_positions`` their positions in the input
    (so the number of items fetched is ``max(_slot_positions) + 1``); ``_rng_seed`` is the
    seed, ``_block_state`` the bit generator's state when the current block of decisions was
    drawn, and ``_decisions`` the unread rest of that block (its position in the block is
    ``BLOCK - length_hint(_decisions)``).
    """

    __slots__ = (
        "_block_state",
        "_decisions",
        "_fetched",
        "_input_start",
        "_n_cache",
        "_prob",
        "_random_state",
        "_resumed_gen",
        "_rng_seed",
        "_slot_positions",
        "_slots",
    )

    kind = "cache"

    def _shape(self) -> dict[str, Any]:
        return {"n_cache": self._n_cache}

    def __init__(
        self, stream: Any, n_cache: int, prob: float, random_state: RandomStateLike
    ) -> None:
        super().__init__(stream)
        self._n_cache = n_cache
        self._prob = prob
        self._random_state = random_state
        self._rng_seed: Seed | None = None
        self._slots: list[Any] = []
        self._slot_positions: list[int] = []
        self._block_state: Mapping[str, Any] | None = None
        self._decisions: Iterator[int] = iter(())
        self._fetched = 0
        self._input_start: dict[str, Any] | None = None

    def _draw_block(self, gen: np.random.Generator) -> Iterator[int]:
        """One block of decisions: a slot index, bit-inverted (< 0) when the slot is refilled
        from the input first."""
        self._block_state = gen.bit_generator.state
        index = gen.integers(0, self._n_cache, BLOCK)
        refill = gen.random(BLOCK) < self._prob
        self._decisions = decisions = iter(np.where(refill, ~index, index).tolist())
        return decisions

    def _open(self) -> tuple[Iterator[Any], None]:
        raw = super()._open()
        if self._resume is None:
            # The input's state before its first item (its seed resolved): resuming replays
            # the input from there.
            self._input_start = state_of(self._input)
            self._rng_seed = resolve_seed(self._random_state, inherited=self._seed)
        return raw

    def _restore(self, resume: Mapping[str, Any]) -> None:
        # The cached items are data, not state: replay the input from its start, keeping
        # the items the slots held. Every field is checked first.
        where = "cache state"
        seed = _state.seed(_state.field(resume, "seed", where), where, "seed")
        # Every item fetched was delivered at once.
        fetched = _state.field(resume, "fetched", where)
        _state.integer(fetched, where, "fetched", high=resume["n"])
        positions = _state.field(resume, "positions", where)
        _state.sequence(positions, where, "positions", length=min(fetched, self._n_cache))
        for k, pos in enumerate(positions):
            _state.integer(pos, where, f"positions[{k}]", high=fetched - 1)
        if len(set(positions)) < len(positions):
            _state.fail(where, "positions", "distinct input positions", positions)
        block = _state.field(resume, "block", where)
        gen = None
        if block is not None:
            # (BLOCK: the block was used up, the next one not drawn yet)
            start, used = _state.block(block, where, "block", BLOCK)
            gen = seed.generator()
            _state.generator_state(gen, start, where, "block[0]")
        input_start = _state.field(resume, "input", where)
        # (An input that this pass made is at its start there.)
        most = 0 if isinstance(self._stream, Streamer) else None
        restore_source(self._input, input_start, where, "input", most)
        self._input_start = input_start
        self._rng_seed = seed
        wanted = {pos: k for k, pos in enumerate(positions)}
        self._slots = [None] * len(wanted)
        replayed = 0
        with _state.PASSTHROUGH:  # (the input's items are computed again)
            for pos, item in enumerate(islice(iter(self._input), fetched)):
                replayed = pos + 1
                if pos in wanted:
                    self._slots[wanted[pos]] = item
        if replayed < fetched:
            raise StateError(
                f"cannot resume cache: its input ended before the {fetched} items it had "
                "fetched (it is not deterministic)"
            )
        self._slot_positions = list(positions)
        self._fetched = fetched
        if gen is not None:
            assert block is not None
            for _ in islice(self._draw_block(gen), used):
                pass
            self._resumed_gen = gen

    def _own_state(self) -> dict[str, Any]:
        if self._input_start is None or self._rng_seed is None:
            raise StateError("cache cannot checkpoint: its input cannot describe its position")
        block = None
        if self._block_state is not None:
            block = [self._block_state, BLOCK - length_hint(self._decisions)]
        return {
            "input": self._input_start,
            "seed": self._rng_seed.to_json(),
            "fetched": self._fetched,
            "positions": list(self._slot_positions),
            "block": block,
        }

    def _run(self, source: Iterator[Any]) -> Iterator[Any]:
        try:
            n = self._n_cache
            slots, positions = self._slots, self._slot_positions
            resumed = self._resume is not None
            seed = self._rng_seed
            assert seed is not None
            while self._fetched < n:  # warm-up: pass the first n items through
                item = next(source, _END)
                if item is _END:
                    return
                positions.append(self._fetched)
                slots.append(item)
                self._fetched += 1
                yield item
            if resumed and self._block_state is not None:
                gen = self._resumed_gen
                decisions = self._decisions
            else:
                gen = seed.generator()
                decisions = self._draw_block(gen)
            while True:
                for code in decisions:
                    if code < 0:
                        item = next(source, _END)
                        if item is _END:
                            return
                        slots[~code] = item
                        positions[~code] = self._fetched
                        self._fetched += 1
                        yield item
                    else:
                        yield slots[code]
                decisions = self._draw_block(gen)
        finally:
            self._release_input()


@iterator_factory
def cache(
    stream: Iterable[Any], n_cache: int, prob: float = 0.5, random_state: RandomStateLike = None
) -> StreamIterator[Any]:
    """Reuse recent items at random, to stretch a slow stream.

    The first ``n_cache`` items are passed through and stored in ``n_cache`` slots. Then, for
    each output item: pick a slot uniformly at random; with probability ``prob`` replace its
    item with the next input item; yield the slot's item (new or old).

    Parameters
    ----------
    stream : iterable
        Items to cache: a list, a generator, a Streamer or mux, or another map's iterator.
    n_cache : int > 0
        Number of slots.
    prob : float in (0, 1]
        Probability of fetching a new item at each step; ``1`` reproduces the input.
    random_state : None, int, RandomState, Generator or SeedSequence
        Seed of the random choices. Anything but ``None`` makes every iteration (for
        instance of ``Streamer(cache, ...)``) replay the same choices; a caller's
        RandomState or Generator is read, never advanced. ``None`` takes a fresh seed from
        numpy's global RNG, or from a seeded parent mux.

    Returns
    -------
    StreamIterator
        Yields the input's items, each at least once and in input order of first appearance;
        the same objects (no copies) may be yielded several times.

    Raises
    ------
    PescadorError
        At the call, if ``n_cache`` is not a positive integer, ``prob`` is not in (0, 1] or
        ``random_state`` is invalid.

    Notes
    -----
    Order: as above; an input with fewer than ``n_cache + 1`` items is reproduced exactly.
    Ends at the first refill that finds the input exhausted: finite when the input is,
    longer than it. RNG: a numpy ``Generator`` (PCG64) seeded as described, drawing slot
    indices and refill decisions 1024 at a time. State: the cached items and their input
    positions, the input's state, the seed and the position in the current block of draws.

    Examples
    --------
    >>> out = list(cache(range(10), n_cache=3, prob=0.5, random_state=0))
    >>> out[:3]
    [0, 1, 2]
    >>> len(out) >= 10 and sorted(set(out)) == list(range(10))
    True
    >>> out == list(cache(range(10), n_cache=3, prob=0.5, random_state=0))
    True
    >>> list(cache(range(5), n_cache=2, prob=1))
    [0, 1, 2, 3, 4]
    """
    _check_stream(stream)
    n = _positive_int("n_cache", n_cache)
    if (
        not isinstance(prob, numbers.Real)
        or isinstance(prob, bool)
        or math.isnan(prob)
        or not 0 < prob <= 1
    ):
        raise PescadorError(f"prob={prob!r} must be a number in the range (0, 1].")
    check_random_state(random_state)
    return _CacheIterator(stream, n, float(prob), random_state)
