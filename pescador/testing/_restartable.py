"""assert_restartable: every iteration of a stream gives the same items."""

from __future__ import annotations

from typing import Any

from ._compare import Equal, _first_difference, _show, items_equal
from ._drive import _END, _close, _count, _iteration, _take


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
