"""assert_proportions: the shares of categories of items are within a stated bound."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import numpy as np

from ._compare import _show
from ._drive import _count, _iteration, _take


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
