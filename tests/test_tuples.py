"""tuples and keras_tuples: items turned into tuples of their values at some keys; and the
:mod:`pescador.testing` conformance checks.
"""

from __future__ import annotations

import numpy as np
import pytest

import pescador
import pescador.io
import pescador.maps
from conftest import assert_conforms, data_streams, pulled_generator
from pescador import StochasticMux, Streamer
from pescador.maps import keras_tuples, tuples

# --------------------------------------------------------------------------- tuples


ITEMS = [{"x": i, "y": -i, "z": 10 * i} for i in range(3)]


def test_tuples_one_key_gives_one_tuples():
    assert list(tuples(ITEMS, "x")) == [(0,), (1,), (2,)]


def test_tuples_several_keys_in_order():
    assert list(tuples(ITEMS, "z", "x")) == [(0, 0), (10, 1), (20, 2)]
    assert list(tuples(ITEMS, "x", "x")) == [(0, 0), (1, 1), (2, 2)]


def test_tuples_values_are_the_same_objects():
    arr = np.zeros(3)
    (out,) = next(tuples([{"a": arr}], "a"))
    assert out is arr


def test_tuples_no_keys_fails_at_call():
    with pytest.raises(pescador.PescadorError, match="Unable to generate tuples from an empty"):
        tuples(ITEMS)


@pytest.mark.parametrize("item", [1, None, [1, 2], "abc", 2.5])
def test_tuples_unindexable_item_is_chained_dataerror(item):
    with pytest.raises(pescador.maps.DataError, match="Malformed data stream") as info:
        list(tuples([ITEMS[0], item], "x"))
    assert isinstance(info.value.__cause__, TypeError)


def test_tuples_missing_key_is_keyerror():
    with pytest.raises(KeyError):
        list(tuples(ITEMS, "x", "w"))


def test_tuples_any_subscriptable_item():
    assert list(tuples([[1, 2], (3, 4)], 1, 0)) == [(2, 1), (4, 3)]
    with pytest.raises(IndexError):
        list(tuples([[1, 2]], 5))


def test_tuples_never_pulls_ahead():
    log = []
    it = tuples(pulled_generator(ITEMS, log), "x")
    assert next(it) == (0,)
    assert len(log) == 1


# --------------------------------------------------------------------------- keras_tuples


@pytest.mark.parametrize(
    "inputs, outputs, expected",
    [
        ("x", "y", [(0, 0), (1, -1), (2, -2)]),
        (["x"], "y", [([0], 0), ([1], -1), ([2], -2)]),
        (["x", "z"], ["y"], [([0, 0], [0]), ([1, 10], [-1]), ([2, 20], [-2])]),
        (("x",), ("y",), [([0], [0]), ([1], [-1]), ([2], [-2])]),
        # pescador 3.0 raised TypeError when a tuple met a list or None; now a list or a tuple
        # of keys gives a list:
        (("x", "z"), None, [([0, 0], None), ([1, 10], None), ([2, 20], None)]),
        (("x",), ["y"], [([0], [0]), ([1], [-1]), ([2], [-2])]),
        ("x", None, [(0, None), (1, None), (2, None)]),
        (None, "y", [(None, 0), (None, -1), (None, -2)]),
        ([], "y", [(None, 0), (None, -1), (None, -2)]),
        ("", "y", [(None, 0), (None, -1), (None, -2)]),
        ((), ["y"], [(None, [0]), (None, [-1]), (None, [-2])]),
    ],
)
def test_keras_tuples(inputs, outputs, expected):
    assert list(keras_tuples(ITEMS, inputs, outputs)) == expected
    assert list(keras_tuples(ITEMS, inputs=inputs, outputs=outputs)) == expected


def test_keras_tuples_does_not_alias_the_key_list():
    keys = ["x"]
    it = keras_tuples(ITEMS, keys, "y")
    keys.append("z")
    assert next(it) == ([0], 0)


@pytest.mark.parametrize("inputs, outputs", [(None, None), ([], []), ("", None), ((), "")])
def test_keras_tuples_no_key_fails_at_call(inputs, outputs):
    with pytest.raises(pescador.PescadorError, match="At least one key must be given"):
        keras_tuples(ITEMS, inputs, outputs)


@pytest.mark.parametrize("side", [{"x"}, (k for k in "x"), 0, b"x"], ids=repr)
def test_keras_tuples_bad_side_fails_at_call(side):
    with pytest.raises(pescador.PescadorError, match="inputs="):
        keras_tuples(ITEMS, side, "y")
    with pytest.raises(pescador.PescadorError, match="outputs="):
        keras_tuples(ITEMS, "x", side)


@pytest.mark.parametrize("item", [1, None, [1, 2], "abc"])
def test_keras_tuples_unindexable_item_is_chained_dataerror(item):
    with pytest.raises(pescador.DataError, match="Malformed data stream") as info:
        list(keras_tuples([item], "x", "y"))
    assert isinstance(info.value.__cause__, TypeError)


def test_keras_tuples_missing_key_is_keyerror():
    with pytest.raises(KeyError):
        list(keras_tuples(ITEMS, "w", "y"))
    with pytest.raises(KeyError):
        list(keras_tuples(ITEMS, ["x", "w"], None))


# --------------------------------------------------------------------------- conformance
# The pescador.testing checks, through assert_conforms (conftest.py): restartable, resumable
# at every position (JSON states), and, where the stream is random, the proportions of items.


def test_tuples_and_keras_tuples_resume_at_every_position():
    mux = StochasticMux(data_streams(), 3, 4, random_state=3)
    assert_conforms(Streamer(pescador.tuples, mux, "X", "i"), 40)
    assert_conforms(Streamer(pescador.tuples, mux, "i"), 40)
    assert_conforms(Streamer(pescador.keras_tuples, mux, "X", ["i"]), 40)
    assert_conforms(Streamer(pescador.keras_tuples, mux, inputs=["X", "tag"]), 40)
