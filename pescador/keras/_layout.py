"""Items to the tuples Keras trains on: ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``
(private; see :mod:`pescador.keras`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..exceptions import DataError, PescadorError

__all__ = ["check_side", "tuple_maker"]


def check_side(name: str, keys: Any) -> Any:
    """``keys`` normalised (None, a key, a list of keys or a dict), or PescadorError."""
    if keys is None or (isinstance(keys, (list, tuple, dict)) and len(keys) == 0):
        return None
    if isinstance(keys, (list, tuple)):
        return list(keys)
    if isinstance(keys, dict):
        return dict(keys)
    if isinstance(keys, (str, int, bytes)):
        return keys
    raise PescadorError(
        f"{name}={keys!r} must be None, a key, a list or tuple of keys, or a dict "
        "{model input name: key}"
    )


def _getter(side: Any) -> Callable[[Mapping[Any, Any]], Any]:
    if isinstance(side, list):  # a tuple: Keras' TensorFlow path refuses lists of inputs
        return lambda item: tuple(item[k] for k in side)
    if isinstance(side, dict):
        return lambda item: {name: item[k] for name, k in side.items()}
    return lambda item: item[side]


def tuple_maker(
    inputs: Any, outputs: Any, sample_weights: Any
) -> Callable[[Any], tuple[Any, ...]]:
    """The function that turns one item of the stream into the tuple Keras trains on.

    With keys, an item must be a mapping (a dict of arrays, as ``buffer_stream`` gives);
    without any key, an item must already be such a tuple (``(x,)``, ``(x, y)``,
    ``(x, y, sample_weight)``, a list of those lengths, or an array: ``(x,)``).
    """
    sides = [inputs, outputs, sample_weights]
    if inputs is None and (outputs is not None or sample_weights is not None):
        raise PescadorError("inputs=None: name the inputs' keys when outputs are given")
    if sample_weights is not None and outputs is None:
        raise PescadorError(
            f"sample_weights={sample_weights!r} needs outputs: Keras weighs the loss of "
            "(x, y) pairs"
        )
    if inputs is None:
        return _as_keras_tuple
    getters = [_getter(s) for s in sides if s is not None]

    def make(item: Any) -> tuple[Any, ...]:
        try:
            return tuple(get(item) for get in getters)
        except (KeyError, IndexError, TypeError) as exc:
            keys = _keys(sides)
            if isinstance(item, Mapping):
                missing = [k for k in keys if k not in item]
                found = ", ".join(map(repr, item)) or "none"
                raise DataError(
                    f"an item has no key {missing[0]!r} (its keys: {found}); "
                    f"the keys asked for are {keys}"
                ) from exc
            raise DataError(
                f"an item is a {type(item).__name__}, not a dict: a StreamDataset with "
                f"keys {keys} needs dict items (keep inputs=None for tuple items)"
            ) from exc

    return make


def _keys(sides: list[Any]) -> list[Any]:
    keys: list[Any] = []
    for side in sides:
        if isinstance(side, list):
            keys += side
        elif isinstance(side, dict):
            keys += list(side.values())
        elif side is not None:
            keys.append(side)
    return keys


def _as_keras_tuple(item: Any) -> tuple[Any, ...]:
    if isinstance(item, np.ndarray):
        return (item,)
    if isinstance(item, (tuple, list)) and 1 <= len(item) <= 3:
        # keras_tuples gives lists for several keys: Keras' TensorFlow path needs tuples
        return tuple(tuple(side) if isinstance(side, list) else side for side in item)
    if isinstance(item, Mapping):
        raise DataError(
            f"an item is a dict (keys: {', '.join(map(repr, item))}): name the keys of the "
            "model's inputs and outputs, e.g. StreamDataset(stream, inputs='X', outputs='Y')"
        )
    raise DataError(
        f"an item is a {type(item).__name__}: without keys, a StreamDataset needs items that "
        "are tuples (x,), (x, y) or (x, y, sample_weight), or arrays"
    )
