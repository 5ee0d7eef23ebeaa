"""The batching maps: buffer_stream, tuples, keras_tuples (private; see :mod:`pescador.maps`)."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np

from ..core import StreamIterator, iterator_factory
from ..exceptions import DataError, PescadorError, add_note
from ._iterator import _check_stream, _MapIterator, _positive_int

__all__ = ["buffer_stream", "keras_tuples", "tuples"]

#: Arrays at least this large are stacked by joining their bytes, which beats ``np.array``'s
#: per-item setup once the copy dominates (measured: 3-20% faster from 16 KiB per item, a
#: few % slower below 4 KiB, where the per-item checks cost as much as they save).
_JOIN_MIN_NBYTES = 8192

_JOINABLE = (np.ndarray, np.memmap)
_array = np.array
_dtype_of = attrgetter("dtype")
_shape_of = attrgetter("shape")


# -------------------------------------------------------------------------------- messages
def _describe(item: Any, width: int = 60) -> str:
    text = repr(item)
    if len(text) > width:
        text = text[: width - 3] + "..."
    return f"{type(item).__name__} {text}"


# -------------------------------------------------------------------------------- stacking
def _join_arrays(values: list[Any]) -> np.ndarray | None:
    """Stack arrays of one type, dtype and shape by joining their bytes (None if they are not).

    For large items this beats ``np.array(values)``, whose per-item setup then costs more
    than the copy; the result is the same new, writable array.
    """
    first = values[0]
    n, kind, dtype, shape = len(values), type(first), first.dtype, first.shape
    if (
        # np.array would convert these (to native byte order; structured ones to packed
        # fields), and the buffer of an object array holds pointers.
        not dtype.isnative
        or dtype.names is not None
        or dtype.hasobject
        or list(map(type, values)).count(kind) != n
        or list(map(_dtype_of, values)).count(dtype) != n
        or list(map(_shape_of, values)).count(shape) != n
    ):
        return None
    try:
        joined = bytearray().join(values)
    except TypeError:  # an array that is not C-contiguous exports no plain buffer
        return None
    return np.frombuffer(joined, dtype).reshape((n, *shape))


def _stack_data(data: list[Any], axis: int | None) -> dict[Any, np.ndarray]:
    """Stack a list of dicts of arrays into one dict of arrays.

    The keys are those of ``data[0]``. With ``axis=None`` each value gets a new leading
    axis (as ``np.array`` of the list does); otherwise the values are concatenated along
    ``axis``. Errors are not wrapped: a non-dict first item raises ``AttributeError``, a
    missing key ``KeyError``.
    """
    keys = data[0].keys()
    if axis is not None:
        return {key: np.concatenate(list(map(itemgetter(key), data)), axis=axis) for key in keys}
    batch = {}
    for key in keys:
        values = list(map(itemgetter(key), data))
        first = values[0]
        if type(first) in _JOINABLE and first.nbytes >= _JOIN_MIN_NBYTES:
            stacked = _join_arrays(values)
            batch[key] = _array(values) if stacked is None else stacked
        else:
            batch[key] = _array(values)
    return batch


# ``pescador.maps.__stack_data`` is the 3.0 name. A module-level name is not mangled, but the
# same spelling inside a class body would be, so the code itself calls ``_stack_data``.
__stack_data = _stack_data


def _malformed_batch(batch: list[Any]) -> DataError:
    for i, item in enumerate(batch):
        if not (hasattr(item, "keys") and hasattr(item, "__getitem__")):
            return DataError(
                "Malformed data stream: expected dict-like items (dicts of arrays), but item "
                f"{i} of a batch of {len(batch)} is {_describe(item)}"
            )
    return DataError(f"Malformed data stream: a batch of {len(batch)} items could not be stacked")


def _malformed_item(item: Any, keys: tuple[Any, ...]) -> DataError:
    return DataError(
        f"Malformed data stream: expected an item indexable by the keys {keys!r}, "
        f"got {_describe(item)}"
    )


# -------------------------------------------------------------------------------- iterators
class _BufferIterator(_MapIterator):
    __slots__ = ("_axis", "_partial", "_size")

    kind = "buffer_stream"

    def _shape(self) -> dict[str, Any]:
        return {"buffer_size": self._size}

    def _input_count(self, n: int) -> int:
        return n * self._size

    def __init__(self, stream: Any, size: int, partial: bool, axis: int | None) -> None:
        super().__init__(stream)
        self._size = size
        self._partial = partial
        self._axis = axis

    def _stack(self, batch: list[Any]) -> dict[Any, np.ndarray]:
        try:
            return _stack_data(batch, self._axis)
        except (TypeError, AttributeError) as exc:
            raise _malformed_batch(batch) from exc
        except KeyError as exc:
            add_note(exc, "buffer_stream: every item needs the keys of the batch's first item")
            raise

    def _run(self, source: Iterator[Any]) -> Iterator[dict[Any, np.ndarray]]:
        size, stack = self._size, self._stack
        try:
            while True:
                batch = list(islice(source, size))
                if len(batch) < size:
                    if batch and self._partial:
                        yield stack(batch)
                    return
                yield stack(batch)
        finally:
            self._release_input()


class _TuplesIterator(_MapIterator):
    __slots__ = ("_keys",)

    kind = "tuples"

    def __init__(self, stream: Any, keys: tuple[Any, ...]) -> None:
        super().__init__(stream)
        self._keys = keys

    def _run(self, source: Iterator[Any]) -> Iterator[tuple[Any, ...]]:
        keys = self._keys
        getter = itemgetter(*keys)
        single = len(keys) == 1
        try:
            for item in source:
                try:
                    values = getter(item)
                except TypeError as exc:
                    raise _malformed_item(item, keys) from exc
                yield (values,) if single else values
        finally:
            self._release_input()


def _none(item: Any) -> None:
    return None


def _side_getter(side: str | list[Any] | None) -> Callable[[Any], Any]:
    """The function giving one side of a Keras pair from an item."""
    if side is None:
        return _none
    if isinstance(side, str):
        return itemgetter(side)
    if len(side) == 1:
        one = itemgetter(side[0])
        return lambda item: [one(item)]
    many = itemgetter(*side)
    return lambda item: list(many(item))


class _KerasIterator(_MapIterator):
    __slots__ = ("_inputs", "_outputs")

    kind = "keras_tuples"

    def __init__(
        self, stream: Any, inputs: str | list[Any] | None, outputs: str | list[Any] | None
    ) -> None:
        super().__init__(stream)
        self._inputs = inputs
        self._outputs = outputs

    def _run(self, source: Iterator[Any]) -> Iterator[tuple[Any, Any]]:
        get_x, get_y = _side_getter(self._inputs), _side_getter(self._outputs)
        try:
            for item in source:
                try:
                    pair = get_x(item), get_y(item)
                except TypeError as exc:
                    keys = [k for side in (self._inputs, self._outputs) for k in _as_keys(side)]
                    raise _malformed_item(item, tuple(keys)) from exc
                yield pair
        finally:
            self._release_input()


def _keras_side(name: str, keys: Any) -> str | list[Any] | None:
    if keys is None or (isinstance(keys, (str, list, tuple)) and len(keys) == 0):
        return None
    if isinstance(keys, str):
        return keys
    if isinstance(keys, (list, tuple)):
        return list(keys)
    raise PescadorError(f"{name}={keys!r} must be None, a key (str) or a list or tuple of keys")


def _as_keys(side: str | list[Any] | None) -> list[Any]:
    if side is None:
        return []
    return [side] if isinstance(side, str) else side


# -------------------------------------------------------------------------------- the maps
@iterator_factory
def buffer_stream(
    stream: Iterable[Any], buffer_size: int, partial: bool = False, axis: int | None = None
) -> StreamIterator[dict[Any, np.ndarray]]:
    """Group consecutive data items (dicts of arrays) into batches.

    Parameters
    ----------
    stream : iterable
        Items to batch: a list, a generator, a Streamer or mux, or another map's iterator.
    buffer_size : int > 0
        Number of items per batch.
    partial : bool
        If ``True``, a last batch with fewer than ``buffer_size`` items is yielded when the
        input ends; otherwise (the default) those leftover items are dropped.
    axis : int or None
        ``None`` (default): stack each key's values along a new leading axis, so items of
        shape ``(4, 5)`` give batches of shape ``(buffer_size, 4, 5)``. An integer:
        concatenate along that existing axis (for items that already carry a batch axis).

    Returns
    -------
    StreamIterator
        Yields one dict per batch, with the keys of the batch's first item (extra keys in
        later items are ignored). Its arrays are new (they share no memory with the items)
        and have the dtype ``np.array`` (or ``np.concatenate``) gives: the items' dtype when
        they share one. Python scalars and lists are stacked as ``np.array`` does.

    Raises
    ------
    PescadorError
        At the call, if ``buffer_size`` is not a positive integer or ``axis`` is not ``None``
        or an integer.
    DataError
        At a batch (the last partial one included) holding an item that is not a dict; the
        original error is chained as ``__cause__``.
    KeyError
        At a batch in which an item lacks one of the first item's keys.
    ValueError
        From numpy, at a batch whose values cannot be stacked (mismatched shapes; 0-d values
        with an ``axis``; an ``axis`` out of bounds).

    Notes
    -----
    Order: batches follow the input order. Finite when the input is; ends when the input ends.
    No randomness. State: that of its input at the last batch boundary (no item is held
    between batches).

    Examples
    --------
    >>> import numpy as np
    >>> items = [{"X": np.zeros((4, 5)), "y": i} for i in range(10)]
    >>> [b["X"].shape for b in buffer_stream(items, 4)]
    [(4, 4, 5), (4, 4, 5)]
    >>> [b["y"].tolist() for b in buffer_stream(items, 4, partial=True)]
    [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    >>> rows = [{"X": np.ones((2, 3))}] * 3
    >>> next(buffer_stream(rows, 3, axis=0))["X"].shape
    (6, 3)
    """
    _check_stream(stream)
    size = _positive_int("buffer_size", buffer_size)
    if axis is not None and (not isinstance(axis, numbers.Integral) or isinstance(axis, bool)):
        raise PescadorError(f"axis={axis!r} must be None or an integer")
    return _BufferIterator(stream, size, bool(partial), None if axis is None else int(axis))


@iterator_factory
def tuples(stream: Iterable[Any], *keys: Any) -> StreamIterator[tuple[Any, ...]]:
    """Turn each item into a tuple of its values at ``keys``.

    Parameters
    ----------
    stream : iterable
        Items indexable by the keys (dicts of arrays, typically).
    *keys
        At least one key; the tuple holds ``item[k]`` for each, in this order.

    Returns
    -------
    StreamIterator
        Yields ``tuple(item[k] for k in keys)`` for each item (a 1-tuple for one key).

    Raises
    ------
    PescadorError
        At the call, if no key is given.
    DataError
        At an item that cannot be indexed by a key (``TypeError``, chained as ``__cause__``).
    KeyError
        At an item lacking one of the keys.

    Notes
    -----
    Order: the input's, one tuple per item. Finite when the input is; ends when it ends. No
    randomness. State: that of its input.

    Examples
    --------
    >>> items = [{"X": 1, "Y": "a"}, {"X": 2, "Y": "b"}]
    >>> list(tuples(items, "X", "Y"))
    [(1, 'a'), (2, 'b')]
    >>> list(tuples(items, "Y"))
    [('a',), ('b',)]
    """
    _check_stream(stream)
    if not keys:
        raise PescadorError(
            "Unable to generate tuples from an empty item set: tuples(stream, *keys) needs "
            "at least one key"
        )
    return _TuplesIterator(stream, keys)


@iterator_factory
def keras_tuples(
    stream: Iterable[Any],
    inputs: str | list[Any] | tuple[Any, ...] | None = None,
    outputs: str | list[Any] | tuple[Any, ...] | None = None,
) -> StreamIterator[tuple[Any, Any]]:
    """Turn each item into an ``(inputs, outputs)`` pair, as Keras' ``fit`` expects.

    Parameters
    ----------
    stream : iterable
        Items indexable by the keys (dicts of arrays, typically).
    inputs, outputs : str, list or tuple of keys, or None
        For each side: a key gives that single value; a list or tuple of keys gives a list
        of values (even for one key); ``None`` or an empty one gives ``None``. At least one
        side must name a key.

    Returns
    -------
    StreamIterator
        Yields a 2-tuple ``(x, y)`` per item.

    Raises
    ------
    PescadorError
        At the call, if neither side names a key, or a side is not None, a str, a list or
        a tuple.
    DataError, KeyError
        At an item, as for :func:`tuples`.

    Notes
    -----
    As for :func:`tuples`, with one pair per item.

    Examples
    --------
    >>> items = [{"X": 1, "Z": 0, "Y": "a"}, {"X": 2, "Z": 0, "Y": "b"}]
    >>> list(keras_tuples(items, "X", "Y"))
    [(1, 'a'), (2, 'b')]
    >>> list(keras_tuples(items, inputs=("X", "Z"), outputs=["Y"]))
    [([1, 0], ['a']), ([2, 0], ['b'])]
    >>> list(keras_tuples(items, inputs="X"))
    [(1, None), (2, None)]
    """
    _check_stream(stream)
    x_side = _keras_side("inputs", inputs)
    y_side = _keras_side("outputs", outputs)
    if x_side is None and y_side is None:
        raise PescadorError(
            "At least one key must be given for `inputs` or `outputs`; "
            f"got inputs={inputs!r}, outputs={outputs!r}"
        )
    return _KerasIterator(stream, x_side, y_side)
