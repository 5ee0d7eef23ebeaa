"""Conformance checks to run on your own streams: restartable, resumable, proportions.

Each check drives a stream through the public API and raises :class:`AssertionError` with a
message naming the first mismatch, so it works in a pytest test and in a plain script alike:

>>> import pescador
>>> from pescador.testing import assert_restartable, assert_resumable
>>> def numbers(n, rng=pescador.ACTIVATION_RNG):
...     for _ in range(n):
...         yield int(rng.integers(100))
>>> streams = [pescador.Streamer(numbers, 5), pescador.Streamer(numbers, 8)]
>>> mux = pescador.StochasticMux(streams, n_active=2, rate=3, random_state=0)
>>> items = assert_restartable(mux, n=40)
>>> items == assert_resumable(mux, n=40)  # checkpoints at every position, resumed
True

The checks take a *stream* (a :class:`~pescador.Streamer`, a mux, a
:class:`~pescador.ParallelStreamer`): anything with ``iterate(max_iter=..., state=...)``. A map
is checked through the Streamer that calls it, ``Streamer(buffer_stream, mux, 32)``.

==========================  ===================================================================
:func:`assert_restartable`   two iterations give the same items (a seeded stream is a recipe)
:func:`assert_resumable`     a checkpoint at each position, JSON round-tripped, resumes exactly
:func:`assert_proportions`   the shares of categories of items are within a stated bound
:func:`items_equal`          the default item comparison (dicts, sequences, arrays)
:func:`hoeffding_tolerance`  the bound used by :func:`assert_proportions`
:func:`checkpoint_positions` the positions :func:`assert_resumable` checkpoints at
==========================  ===================================================================
"""

from __future__ import annotations

import json
import math
import numbers
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from itertools import islice
from typing import Any

import numpy as np

__all__ = [
    "assert_proportions",
    "assert_restartable",
    "assert_resumable",
    "checkpoint_positions",
    "hoeffding_tolerance",
    "items_equal",
]

#: How two items are compared: ``equal(expected, got) -> bool``.
Equal = Callable[[Any, Any], bool]

#: ``positions=None`` checkpoints at every position up to this many items, else at this many.
DEFAULT_POSITIONS = 100

_END: Any = object()


# ------------------------------------------------------------------------------ comparisons
def items_equal(a: Any, b: Any) -> bool:
    """Whether two stream items are equal, looking inside dicts, lists, tuples and arrays.

    Arrays are equal when both are arrays with the same shape, dtype and values (NaN equals
    NaN in float and complex arrays); mappings when they have the same keys and equal values;
    lists and tuples when they have the same type, length and equal elements. Anything else
    is compared with ``==`` (a float NaN equals a float NaN).

    Parameters
    ----------
    a, b : object
        The items.

    Returns
    -------
    bool

    Examples
    --------
    >>> import numpy as np
    >>> items_equal({"X": np.arange(3), "y": 1}, {"X": np.arange(3), "y": 1})
    True
    >>> items_equal({"X": np.arange(3)}, {"X": np.arange(3.0)})  # dtypes differ
    False
    >>> items_equal((np.zeros(2), "a"), (np.zeros(2), "a"))
    True
    """
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        x, y = a, b
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        if x.dtype.kind == "O":
            return all(map(items_equal, x.ravel().tolist(), y.ravel().tolist()))
        return bool(np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(items_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(items_equal, a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        result = a == b
        return bool(result) if isinstance(result, (bool, np.bool_)) else bool(np.all(result))
    except Exception:  # an == that raises, or a result with no truth value: not equal
        return False


def _show(item: Any, width: int = 160) -> str:
    text = repr(item)
    return text if len(text) <= width else text[: width - 3] + "..."


def _first_difference(
    expected: Sequence[Any], got: Sequence[Any], equal: Equal, offset: int = 0
) -> str | None:
    """What differs between two item sequences (``None`` if nothing); ``offset`` numbers
    the items as positions in the whole stream."""
    for j, (want, have) in enumerate(zip(expected, got, strict=False)):
        if not equal(want, have):
            return (
                f"item {offset + j} differs:\n  expected {_show(want)}\n  got      {_show(have)}"
            )
    if len(got) < len(expected):
        missing = f"starting with {_show(expected[len(got)])}"
        if not got:
            return f"it yielded nothing, but {len(expected)} items were expected, {missing}"
        return (
            f"it ended after item {offset + len(got) - 1} ({len(got)} items), but "
            f"{len(expected) - len(got)} more were expected, {missing}"
        )
    if len(got) > len(expected):
        return (
            f"it yielded {len(got) - len(expected)} extra item(s) after item "
            f"{offset + len(expected) - 1}, starting with {_show(got[len(expected)])}"
        )
    return None


# ------------------------------------------------------------------------------ iteration
def _iteration(
    stream: Any, n: int | None, state: Mapping[str, Any] | None = None, cycle: bool = False
) -> Any:
    method = getattr(stream, "cycle" if cycle else "iterate", None)
    if method is None:
        raise TypeError(
            f"expected a pescador stream (a Streamer, a mux, a ParallelStreamer) with "
            f"{'cycle' if cycle else 'iterate'}(max_iter=..., state=...); got "
            f"{_show(stream, 80)}. Check a map through the Streamer that calls it, e.g. "
            "Streamer(buffer_stream, mux, 32)"
        )
    if state is None:
        return method(max_iter=n)
    return method(max_iter=n, state=state)


def _count(n: Any, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"{name}={n!r} must be a non-negative integer")
    return int(n)


def _close(iterator: Any) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def _take(iterator: Any, n: int) -> list[Any]:
    """Up to ``n`` items of ``iterator``, which is then closed (its resources released)."""
    try:
        return list(islice(iterator, n))
    finally:
        _close(iterator)


# ------------------------------------------------------------------------------ restartable
def assert_restartable(stream: Any, n: int = 100, *, equal: Equal | None = None) -> list[Any]:
    """Check that every iteration of ``stream`` gives the same first ``n`` items.

    Takes ``n`` items from one iteration, then from two more iterations run side by side
    (interleaved item by item), and checks that all three agree. This holds for a stream
    that is a *recipe*: a seeded mux (``random_state=...``), a Streamer over a generator
    function whose randomness comes from :data:`pescador.ACTIVATION_RNG` under a seeded mux
    (or none at all), a list. It fails for a Streamer over a one-shot iterator (a generator
    object) and for generators that share mutable state between iterations.

    An *unseeded* stream (``random_state=None`` all the way up) takes fresh entropy at each
    iteration, so its iterations may differ: that is not a defect, and this check is not
    meant for it (:func:`assert_resumable` is).

    Parameters
    ----------
    stream : Streamer, mux or ParallelStreamer
        Anything with ``iterate(max_iter=...)``.
    n : int
        Items to compare (fewer if the stream ends first; its end must agree too).
    equal : callable, optional
        ``equal(expected, got) -> bool`` for two items; :func:`items_equal` by default (it
        handles dicts of arrays).

    Returns
    -------
    list
        The items of the first iteration.

    Raises
    ------
    AssertionError
        Naming the iteration and the first item that differs, or where one ended early.

    Examples
    --------
    >>> import pescador
    >>> assert_restartable(pescador.Streamer(range(5)), n=10)
    [0, 1, 2, 3, 4]
    >>> one_shot = pescador.Streamer(iter(range(5)))
    >>> assert_restartable(one_shot, n=10)
    Traceback (most recent call last):
    ...
    AssertionError: Streamer(range_iterator) is not restartable: iteration 2 differs from \
iteration 1: it yielded nothing, but 5 items were expected, starting with 0
    """
    n = _count(n)
    equal = items_equal if equal is None else equal
    first = _take(_iteration(stream, n), n)
    a, b = _iteration(stream, n), _iteration(stream, n)
    got: tuple[list[Any], list[Any]] = ([], [])
    try:
        live = [True, True]
        while any(live):
            for k, it in enumerate((a, b)):
                if live[k]:
                    item = next(it, _END)
                    if item is _END:
                        live[k] = False
                    else:
                        got[k].append(item)
    finally:
        _close(a)
        _close(b)
    for k in (0, 1):
        problem = _first_difference(first, got[k], equal)
        if problem is not None:
            raise AssertionError(
                f"{_show(stream, 80)} is not restartable: iteration {k + 2} differs from "
                f"iteration 1: {problem}"
            )
    return first


# ------------------------------------------------------------------------------ resumable
def checkpoint_positions(positions: Any, n: int) -> list[int]:
    """The sorted checkpoint positions in ``0 .. n`` that ``positions`` asks for.

    ``"all"``: every one. An int ``k``: ``0``, ``n`` and ``k - 2`` others drawn at random
    with a fixed seed (so a check is deterministic, yet its checkpoints fall at varied
    phases of the stream). ``None``: ``"all"`` if ``n <=`` :data:`DEFAULT_POSITIONS`, else
    :data:`DEFAULT_POSITIONS` positions. A collection of ints: those.

    Examples
    --------
    >>> checkpoint_positions("all", 3)
    [0, 1, 2, 3]
    >>> len(checkpoint_positions(10, 1000)), checkpoint_positions(10, 1000)[::9]
    (10, [0, 1000])
    >>> checkpoint_positions([5, 2, 5], 10)
    [2, 5]
    """
    if positions is None:
        positions = "all" if n <= DEFAULT_POSITIONS else DEFAULT_POSITIONS
    if isinstance(positions, str):
        if positions != "all":
            raise ValueError(f"positions={positions!r}: expected None, 'all', an int or ints")
        return list(range(n + 1))
    if isinstance(positions, numbers.Integral) and not isinstance(positions, bool):
        k = int(positions)
        if k < 1:
            raise ValueError(f"positions={positions!r}: expected at least one checkpoint")
        if k >= n + 1:
            return list(range(n + 1))
        inner = np.random.default_rng(0).choice(np.arange(1, n), max(0, k - 2), replace=False)
        return sorted({0, n, *inner.tolist()})[:k]
    chosen = sorted({_count(p, "positions[...]") for p in positions})
    if chosen and chosen[-1] > n:
        raise ValueError(f"positions: {chosen[-1]} is beyond n={n}")
    return chosen


def _json_state(it: Any, position: int) -> str:
    """The JSON text of ``it.state_dict()``, or an AssertionError saying why there is none."""
    where = f"at position {position}"
    try:
        state = it.state_dict()
    except Exception as exc:
        raise AssertionError(f"state_dict() {where} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(state, dict):
        raise AssertionError(f"state_dict() {where} returned a {type(state).__name__}, not a dict")
    try:
        return json.dumps(state, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"the state {where} is not JSON-serialisable: {exc}") from exc


def assert_resumable(
    stream: Any,
    n: int = 100,
    *,
    positions: Any = None,
    equal: Equal | None = None,
    cycle: bool = False,
) -> list[Any]:
    """Check that a checkpoint taken at each position resumes exactly where it was taken.

    One iteration of ``n`` items is the *uninterrupted* sequence. At each chosen position
    ``k`` (before item ``k``; ``0`` is before the first, ``n`` after the last) its
    ``state_dict()`` is taken, turned into JSON text and back, and given to a new iteration
    (``stream.iterate(max_iter=n, state=state)``). The new iteration must yield exactly the
    items ``k, k+1, ...`` of the uninterrupted one, and end where it ends.

    The uninterrupted sequence is the checkpointed iteration itself, so the check also holds
    for unseeded streams (a state records the seed it was drawn with); taking a state must
    not disturb the iteration. For a seeded stream, compare the items returned with another
    iteration (or use :func:`assert_restartable`) to check that too.

    Parameters
    ----------
    stream : Streamer, mux or ParallelStreamer
        Anything with ``iterate(max_iter=..., state=...)`` (``cycle(...)`` if ``cycle``).
    n : int
        Length of the uninterrupted sequence (shorter if the stream ends first).
    positions : None, "all", int, or collection of ints
        Where to checkpoint, in ``0 .. n``: ``"all"``; an int ``k`` for ``0``, ``n`` and
        ``k - 2`` positions drawn at random with a fixed seed; ``None`` (default) for every
        position if ``n <= 100``, else 100 of them. Resuming replays up to ``n - k`` items
        per checkpoint, so ``"all"`` costs about ``n**2 / 2`` items.
    equal : callable, optional
        ``equal(expected, got) -> bool`` for two items; :func:`items_equal` by default.
    cycle : bool
        Check ``stream.cycle(max_iter=n, state=...)`` instead of ``iterate``.

    Returns
    -------
    list
        The uninterrupted sequence.

    Raises
    ------
    AssertionError
        Naming the first checkpoint position whose resumed items differ (and the first item
        that differs), or a state that cannot be taken, serialised or loaded.

    Examples
    --------
    >>> import pescador
    >>> streams = [pescador.Streamer("abc"), pescador.Streamer("xyz")]
    >>> "".join(assert_resumable(pescador.RoundRobinMux(streams), n=10))
    'axbycz'

    A generator that draws from numpy's global RNG cannot be replayed exactly, so it is not
    resumable (give it an ``ACTIVATION_RNG`` parameter instead):

    >>> import numpy as np
    >>> def noise():
    ...     while True:
    ...         yield int(np.random.randint(1000))
    >>> assert_resumable(pescador.Streamer(noise), n=20)
    Traceback (most recent call last):
    ...
    AssertionError: Streamer(noise) does not resume exactly from a checkpoint at position 0 ...
    """
    n = _count(n)
    equal = items_equal if equal is None else equal
    chosen = checkpoint_positions(positions, n)
    wanted = set(chosen)
    items: list[Any] = []
    saved: list[tuple[int, str, str]] = []  # (position, what, JSON state)
    it = _iteration(stream, n, cycle=cycle)
    try:
        for k in range(n + 1):
            if k in wanted:
                saved.append((k, f"position {k}", _json_state(it, k)))
            if k == n:
                break
            item = next(it, _END)
            if item is _END:  # a finite stream: positions past its end resume at its end
                if any(p >= k for p in chosen):
                    saved.append((k, f"position {k} (after the end)", _json_state(it, k)))
                break
            items.append(item)
    finally:
        it.close()
    name = _show(stream, 80)
    for k, where, text in saved:
        state = json.loads(text)
        try:
            resumed = _iteration(stream, n, state, cycle)
            rest = _take(resumed, len(items) - k + 1)
        except Exception as exc:
            raise AssertionError(
                f"{name} cannot resume from its checkpoint at {where}: {type(exc).__name__}: {exc}"
            ) from exc
        problem = _first_difference(items[k:], rest, equal, offset=k)
        if problem is not None:
            raise AssertionError(
                f"{name} does not resume exactly from a checkpoint at {where} "
                f"({len(text)} bytes of JSON): {problem}"
            )
    return items


# ------------------------------------------------------------------------------ proportions
def hoeffding_tolerance(n: float, alpha: float = 1e-6, n_categories: int = 1) -> float:
    """Largest deviation of observed shares that :func:`assert_proportions` accepts.

    For ``n`` independent items, Hoeffding's inequality bounds the chance that the observed
    share of one category strays from its probability by ``t`` or more:
    ``P(|share - p| >= t) <= 2 exp(-2 n t**2)``. Over ``n_categories`` categories (a union
    bound), a correct stream fails with probability at most ``alpha`` when

    ``t = sqrt(log(2 * n_categories / alpha) / (2 * n))``.

    Parameters
    ----------
    n : float
        The (effective) number of independent items.
    alpha : float
        The false-failure probability, in (0, 1).
    n_categories : int
        How many shares are checked.

    Examples
    --------
    >>> round(hoeffding_tolerance(10_000, alpha=1e-6), 4)
    0.0269
    >>> round(hoeffding_tolerance(10_000, alpha=1e-6, n_categories=10), 4)
    0.029
    """
    if not n > 0:
        raise ValueError(f"n={n!r} must be positive")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r} must be in (0, 1)")
    if n_categories < 1:
        raise ValueError(f"n_categories={n_categories!r} must be at least 1")
    return math.sqrt(math.log(2 * n_categories / alpha) / (2 * n))


def _category(value: Any) -> Hashable:
    """A hashable category: a one-element array becomes its scalar."""
    if isinstance(value, (np.ndarray, np.generic)) and value.size == 1:
        return value.item()
    return value


def _shares(expected: Any) -> dict[Hashable, float]:
    if isinstance(expected, Mapping):
        pairs = list(expected.items())
    elif isinstance(expected, Iterable) and not isinstance(expected, (str, bytes)):
        pairs = list(enumerate(expected))
    else:
        raise ValueError(
            f"expected={expected!r}: give a mapping {{category: share}} or a sequence of "
            "shares for the categories 0, 1, ..."
        )
    try:
        values = [float(v) for _, v in pairs]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"expected={expected!r}: shares must be numbers") from exc
    total = math.fsum(values)
    if not all(math.isfinite(v) and v >= 0 for v in values) or not total > 0:
        raise ValueError(
            f"expected={expected!r}: shares must be finite, non-negative and not all zero"
        )
    return {c: v / total for (c, _), v in zip(pairs, values, strict=True)}


def assert_proportions(
    stream: Any,
    key: Any,
    expected: Any,
    n: int = 10_000,
    *,
    alpha: float = 1e-6,
    correlation: float = 1.0,
    effective_n: float | None = None,
) -> dict[Hashable, float]:
    """Check that the shares of the categories of ``n`` items are as ``expected``, within a bound.

    Each item of one iteration (``stream.iterate(max_iter=n)``) falls in a category, given by
    ``key``. Every category's observed share must be within ``t`` of its expected share (0
    for a category not in ``expected``), where ``t`` is :func:`hoeffding_tolerance` of the
    effective number of items, ``alpha`` and the number of categories with a positive share.

    **The bound.** For independent items, a correct stream fails with probability at most
    ``alpha``. Items of a mux are *not* independent: consecutive items often come from the
    same activation. If items further apart than ``correlation - 1`` positions are
    independent (an ``m``-dependent sequence, with ``correlation = m + 1``), Hoeffding's bound
    still holds with ``n / correlation`` items in place of ``n`` (Janson, 2004: sums over a
    dependency graph of fractional chromatic number ``m + 1``), and so does ``alpha``. Muxes
    are only approximately like that, so for them ``correlation`` is a rule of thumb: use
    about twice the mean run of items a streamer gives at a time (``2 * rate`` for a
    :class:`~pescador.StochasticMux` with a ``rate``; ``1`` for a
    :class:`~pescador.ShuffledMux`, whose draws are independent). ``effective_n`` sets the
    effective count directly instead.

    Parameters
    ----------
    stream : Streamer, mux or ParallelStreamer
        Anything with ``iterate(max_iter=...)``; a stream that ends early is checked on the
        items it gave.
    key : callable, hashable or None
        The category of an item: ``key(item)`` if callable, ``item[key]`` otherwise, or the
        item itself for ``None``. A one-element array counts as its scalar value.
    expected : mapping or sequence
        ``{category: share}``, or a sequence of shares for the categories ``0, 1, ...``;
        normalised to sum to 1.
    n : int
        Items to draw.
    alpha : float
        The false-failure probability of the bound (see above).
    correlation : float >= 1
        The number of consecutive items that count as one independent draw.
    effective_n : float, optional
        The number of independent draws the sample is worth (overrides ``correlation``).

    Returns
    -------
    dict
        The observed share of each category (those of ``expected`` first).

    Raises
    ------
    AssertionError
        Naming the first category whose share is out of bounds (those not in ``expected``
        first, then in the order of ``expected``), with every share, the tolerance and the
        sample size.

    Examples
    --------
    >>> import pescador
    >>> streams = [pescador.Streamer(c * 10_000) for c in "ab"]
    >>> mux = pescador.StochasticMux(streams, 2, 8, weights=[3, 1], random_state=0)
    >>> shares = assert_proportions(mux, None, {"a": 0.75, "b": 0.25}, n=4000, correlation=16)
    >>> sorted(shares)
    ['a', 'b']
    >>> assert_proportions(mux, None, {"a": 0.5, "b": 0.5}, n=4000, correlation=16)
    Traceback (most recent call last):
    ...
    AssertionError: share of 'a' is 0.7..., expected 0.5 ± 0.174; 4000 items, ...
    """
    n = _count(n)
    want = _shares(expected)
    if effective_n is None and not (math.isfinite(correlation) and correlation >= 1):
        raise ValueError(f"correlation={correlation!r} must be a finite number >= 1")
    if callable(key):
        get = key
    elif key is None:

        def get(item: Any) -> Any:
            return item
    else:

        def get(item: Any) -> Any:
            return item[key]

    counts: Counter[Hashable] = Counter()
    for item in _take(_iteration(stream, n), n):
        counts[_category(get(item))] += 1
    total = sum(counts.values())
    if not total:
        raise AssertionError(f"{_show(stream, 80)} yielded no items: no proportions to check")
    n_eff = total / correlation if effective_n is None else float(effective_n)
    n_positive = sum(1 for share in want.values() if share > 0)
    tolerance = hoeffding_tolerance(n_eff, alpha, max(1, n_positive))
    observed = {c: counts.get(c, 0) / total for c in want}
    observed.update({c: k / total for c, k in counts.items() if c not in want})
    # A category that is not expected at all (a wrong key?) is reported first.
    for category in sorted(observed, key=lambda c: c in want):
        share, target = observed[category], want.get(category, 0.0)
        if abs(share - target) > tolerance:
            table = ", ".join(
                f"{c!r}: {s:.4g} (expected {want.get(c, 0.0):.4g})" for c, s in observed.items()
            )
            absent = "" if category in want else " (it is not in `expected`)"
            raise AssertionError(
                f"share of {category!r} is {share:.4g}, expected {target:.4g} ± "
                f"{tolerance:.3g}{absent}; {total} items, effective n = {n_eff:.4g}, "
                f"alpha = {alpha:g}. Shares: {table}"
            )
    return observed
