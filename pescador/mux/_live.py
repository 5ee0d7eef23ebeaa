"""Weights that change while a mux runs: schedules, and weights in a checkpoint (private).

A running StochasticMux or ShuffledMux iterator takes new weights from its caller
(``it.set_weights``, ``it.set_weight``: :class:`~pescador.mux._loop._MuxIterator`) or from a
:class:`WeightSchedule` given as the mux's ``weights``: a function of the number of items
delivered, evaluated every ``every`` items. The policies apply them
(``StochasticPolicy.set_weights``, ``ShuffledPolicy.set_weights``); :class:`Scheduled` runs a
schedule over the mux's loop without a Python frame per item.

The checkpoint of an iteration whose weights were changed by its caller holds them
(:func:`pack_weights`); a scheduled iteration's holds which evaluation is in force, from which
its weights are computed again.
"""

from __future__ import annotations

import base64
import collections
import numbers
import zlib
from collections.abc import Callable, Iterator
from itertools import chain, compress, islice, repeat
from operator import length_hint
from typing import Any

import numpy as np

from ..exceptions import PescadorError, StateError

#: Items a plain function given as ``weights`` is evaluated every (see :class:`WeightSchedule`).
DEFAULT_EVERY = 1000

_BIG = 1 << 62


class WeightSchedule:
    """Weights as a function of the number of items delivered: a mux's ``weights`` that change.

    ``function(n)`` gives the weights (any array-like a mux accepts as ``weights``) in force
    for the items ``n, n + 1, ..., n + every - 1`` of an iteration, counted from its start
    (items before a checkpoint included), for ``n = 0, every, 2 * every, ...``. It is
    evaluated when item ``n`` is about to be drawn (``function(0)`` also when the mux is
    built, to check it), and must be a pure function of ``n``: a resumed iteration evaluates it
    again. A StochasticMux or ShuffledMux also accepts a plain function as ``weights``: a
    schedule evaluated every :data:`DEFAULT_EVERY` items.

    Parameters
    ----------
    function : callable
        ``function(n_items) -> weights``. It must pickle (a module-level function) if the mux
        goes to another process (``ParallelStreamer`` or ``ZMQStreamer`` under ``spawn``).
    every : int
        How many items each evaluation lasts (at least 1; the evaluation and the change cost
        O(number of streamers), so a few thousand items apart is cheap).

    Examples
    --------
    >>> import numpy as np
    >>> import pescador
    >>> def anneal(n):  # from 9:1 towards uniform over the first 4000 items
    ...     t = min(n / 4000, 1.0)
    ...     return np.array([9.0, 1.0]) * (1 - t) + t
    >>> streams = [pescador.Streamer("a" * 10**6), pescador.Streamer("b" * 10**6)]
    >>> schedule = pescador.WeightSchedule(anneal, every=500)
    >>> mux = pescador.ShuffledMux(streams, weights=schedule, random_state=0)
    >>> items = "".join(mux.iterate(max_iter=6000))
    >>> items[:500].count("a") > 400, 400 < items[5000:].count("a") < 600  # 9:1, then 1:1
    (True, True)
    """

    __slots__ = ("every", "function")

    def __init__(self, function: Callable[[int], Any], every: int = DEFAULT_EVERY) -> None:
        if not callable(function):
            raise PescadorError(f"WeightSchedule: function={function!r} is not callable")
        if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
            raise PescadorError(f"WeightSchedule: every={every!r} must be a positive integer")
        self.function: Callable[[int], Any] = function
        self.every: int = int(every)

    def __call__(self, n_items: int) -> Any:
        return self.function(n_items)

    def __repr__(self) -> str:
        name = getattr(self.function, "__qualname__", repr(self.function))
        return f"WeightSchedule({name}, every={self.every})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.function, self.every))

    def part(self, index: int, count: int) -> WeightSchedule:
        """The schedule of a worker's share of the streamers, ``index::count``."""
        return WeightSchedule(_Part(self.function, index, count), self.every)


class _Part:
    """``function(n)[index::count]``: a share's weights (picklable)."""

    __slots__ = ("count", "function", "index")

    def __init__(self, function: Callable[[int], Any], index: int, count: int) -> None:
        self.function, self.index, self.count = function, index, count

    def __call__(self, n_items: int) -> Any:
        return np.atleast_1d(np.asarray(self.function(n_items)))[self.index :: self.count]

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.function, self.index, self.count))


def as_schedule(weights: Any) -> WeightSchedule | None:
    """``weights`` as a schedule, if it is one (or a plain function); else None."""
    if isinstance(weights, WeightSchedule):
        return weights
    if callable(weights) and not isinstance(weights, np.ndarray):
        return WeightSchedule(weights)
    return None


class PositiveWeights:
    """The positive weights of a mux's streamers, counted by value, for changes of one weight
    at a time (``set_weight``): whether they are all equal (the draws need no weighting) and
    how many there are, each O(1) after a change. Built once, O(n), at the first change.
    """

    __slots__ = ("count", "name", "values")

    def __init__(self, weights: list[float], name: str) -> None:
        self.values = collections.Counter(w for w in weights if w > 0)
        self.count = sum(self.values.values())
        self.name = name

    @property
    def equal(self) -> bool:
        return len(self.values) <= 1

    def change(self, old: float, new: float) -> None:
        """A streamer's weight goes from ``old`` to ``new``.

        Raises
        ------
        PescadorError
            If no weight would be left positive (nothing is changed then).
        """
        values = self.values
        if old > 0 and not new and self.count == 1:
            raise PescadorError(f"{self.name}: the weights must keep at least one positive value")
        if old > 0:
            values[old] -= 1
            if not values[old]:
                del values[old]
            self.count -= 1
        if new > 0:
            values[new] += 1
            self.count += 1


def pack_weights(weights: list[float]) -> str:
    """Weights in a checkpoint: their float64 bytes, compressed, as base64 text (exact)."""
    raw = np.asarray(weights, dtype="<f8").tobytes()
    return base64.b64encode(zlib.compress(raw, 6)).decode("ascii")


def unpack_weights(text: Any, n: int) -> np.ndarray:
    """Inverse of :func:`pack_weights`, checked: ``n`` finite non-negative weights."""
    try:
        w = np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype="<f8")
    except (TypeError, ValueError, zlib.error) as exc:
        raise StateError(f"the state's weights are not readable: {exc}") from None
    if len(w) != n or not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise StateError(f"the state's weights are not {n} valid weights")
    return w.astype(np.float64)


class Scheduled:
    """The items of a mux's loop, with a schedule's weights applied every ``every`` items.

    The stream is ``chain.from_iterable`` over segments ``islice(items, every)``: C-level per
    item; between segments, :meth:`segment` evaluates the schedule and applies the weights.
    ``k``: the evaluation in force (weights ``schedule(k * every)``); ``done``: the items the
    iteration had delivered when it (re)started.
    """

    __slots__ = (
        "apply",
        "end",
        "every",
        "first",
        "items",
        "k",
        "loop",
        "schedule",
        "start",
        "tally",
    )

    def __init__(
        self,
        loop: Iterator[Any],
        schedule: WeightSchedule,
        apply: Callable[[Any, int], None],
        k: int,
        done: int,
    ) -> None:
        self.loop = loop
        self.tally = repeat(True, _BIG)
        self.items = compress(loop, self.tally)  # counts the items taken from the loop
        self.schedule = schedule
        self.apply = apply
        self.every = schedule.every
        self.k = k
        self.start = done
        self.end = (k + 1) * self.every  # the item count at which the next evaluation applies
        self.first = True

    def __iter__(self) -> Iterator[Any]:
        return chain.from_iterable(iter(self.segment, None))

    def close(self) -> None:
        """End the mux's loop (its policy closes every slot)."""
        close = getattr(self.loop, "close", None)
        if close is not None:
            close()

    def delivered(self) -> int:
        return self.start + _BIG - length_hint(self.tally)

    def segment(self) -> Iterator[Any] | None:
        """The next items (``None``: the loop has ended)."""
        n = self.delivered()
        if self.first:
            self.first = False
            return islice(self.items, max(0, self.end - n))
        if n < self.end:
            return None  # the loop ended within the last segment
        try:
            self.advance()
        except Exception as exc:  # (raised from the segment: chain would drop its source)
            return _Retry(self, exc)
        return islice(self.items, self.every)

    def advance(self) -> None:
        """Apply the next evaluation; if it raises (invalid weights), nothing changes."""
        self.apply(self.schedule(self.end), self.end)
        self.k += 1
        self.end += self.every


class _Retry:
    """The segment after an evaluation that raised: raises it, then evaluates again at each
    ``next`` until it succeeds, and yields the segment's items (a Python frame per item, for
    this segment only)."""

    __slots__ = ("exc", "owner", "rest")

    def __init__(self, owner: Scheduled, exc: Exception) -> None:
        self.owner = owner
        self.exc: Exception | None = exc
        self.rest: Iterator[Any] | None = None

    def __iter__(self) -> _Retry:
        return self

    def __next__(self) -> Any:
        if self.rest is None:
            exc, self.exc = self.exc, None
            if exc is not None:
                raise exc
            self.owner.advance()
            self.rest = islice(self.owner.items, self.owner.every)
        return next(self.rest)
