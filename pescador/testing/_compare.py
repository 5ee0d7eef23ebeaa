"""How :mod:`pescador.testing` compares items and describes the first mismatch."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

#: How two items are compared: ``equal(expected, got) -> bool``.
Equal = Callable[[Any, Any], bool]


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
