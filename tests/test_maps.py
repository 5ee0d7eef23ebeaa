"""Tests for pescador.maps: buffer_stream, tuples, keras_tuples, cache.

Arguments are checked at the call, with a message naming the parameter.
"""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest

import pescador
import pescador.maps
from pescador.core import StreamIterator
from pescador.maps import buffer_stream, cache, keras_tuples, tuples

# --------------------------------------------------------------------------- helpers


def data_items(n, shape=(4, 5)):
    return [{"X": np.full(shape, i, dtype=np.float64), "Y": np.int64(i)} for i in range(n)]


def plain(value):
    """Arrays, dicts, tuples and lists as nested plain lists/dicts, for == comparisons."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


def pulled_generator(items, log):
    for item in items:
        log.append(item)
        yield item


# --------------------------------------------------------------------------- module surface


def test_all():
    assert set(pescador.maps.__all__) == {"buffer_stream", "tuples", "keras_tuples", "cache"}
    for name in pescador.maps.__all__:
        assert callable(getattr(pescador.maps, name))


def test_error_names():
    assert pescador.maps.DataError is pescador.DataError
    assert pescador.maps.PescadorError is pescador.PescadorError
    assert issubclass(pescador.maps.DataError, pescador.maps.PescadorError)


@pytest.mark.parametrize(
    "make",
    [
        lambda s: buffer_stream(s, 2),
        lambda s: tuples(s, "X"),
        lambda s: keras_tuples(s, "X", "Y"),
        lambda s: cache(s, 2),
    ],
    ids=["buffer_stream", "tuples", "keras_tuples", "cache"],
)
def test_maps_return_lazy_stream_iterators(make):
    log = []
    it = make(pulled_generator(data_items(4), log))
    assert isinstance(it, StreamIterator)
    assert not it.started
    assert log == []  # nothing pulled at call time
    next(it)
    assert it.started
    assert log  # pulled at the first next


@pytest.mark.parametrize(
    "factory, args",
    [
        (buffer_stream, (2,)),
        (tuples, ("X",)),
        (keras_tuples, ("X", "Y")),
        (cache, (2, 0.5, 0)),
    ],
)
def test_maps_are_accepted_by_streamer_and_restart(factory, args):
    stream = pescador.Streamer(factory, pescador.Streamer(data_items(6)), *args)
    first = plain(list(stream))
    assert len(first) >= 3
    assert plain(list(stream)) == first


@pytest.mark.parametrize("bad", [5, None, 3.5, object()])
@pytest.mark.parametrize(
    "call",
    [
        lambda s: buffer_stream(s, 2),
        lambda s: tuples(s, "X"),
        lambda s: keras_tuples(s, "X"),
        lambda s: cache(s, 2),
    ],
)
def test_non_iterable_stream_fails_at_call(call, bad):
    with pytest.raises(pescador.PescadorError, match="stream="):
        call(bad)


# --------------------------------------------------------------------------- buffer_stream


def test_buffer_stream_stacks_new_leading_axis():
    stream = pescador.Streamer(data_items(10))
    batches = list(buffer_stream(stream, 10))
    assert len(batches) == 1
    assert batches[0]["X"].shape == (10, 4, 5)
    assert batches[0]["Y"].shape == (10,)
    np.testing.assert_array_equal(batches[0]["Y"], np.arange(10))
    for i in range(10):
        np.testing.assert_array_equal(batches[0]["X"][i], np.full((4, 5), i))


@pytest.mark.parametrize("partial, expected", [(False, [4, 4]), (True, [4, 4, 2])])
def test_buffer_stream_partial(partial, expected):
    batches = list(buffer_stream(data_items(10), 4, partial=partial))
    assert [len(b["Y"]) for b in batches] == expected
    assert [b["X"].shape[1:] for b in batches] == [(4, 5)] * len(expected)
    flat = np.concatenate([b["Y"] for b in batches])
    np.testing.assert_array_equal(flat, np.arange(sum(expected)))


def test_buffer_stream_partial_default_is_false():
    assert len(list(buffer_stream(data_items(3), 2))) == 1


@pytest.mark.parametrize("partial", [False, True])
def test_buffer_stream_empty_input(partial):
    assert list(buffer_stream([], 3, partial=partial)) == []


def test_buffer_stream_short_input_without_partial_yields_nothing():
    assert list(buffer_stream(data_items(2), 3)) == []


def test_buffer_stream_size_one():
    batches = list(buffer_stream(data_items(3), 1))
    assert [b["X"].shape for b in batches] == [(1, 4, 5)] * 3


def test_buffer_stream_keys_from_first_item_extra_keys_dropped():
    items = [{"a": 1}, {"a": 2, "b": 3}, {"a": 4, "b": 5}]
    batch = next(buffer_stream(items, 3))
    assert set(batch) == {"a"}
    np.testing.assert_array_equal(batch["a"], [1, 2, 4])


def test_buffer_stream_missing_key_is_keyerror():
    items = [{"a": 1, "b": 2}, {"a": 3}]
    with pytest.raises(KeyError, match="b") as info:
        next(buffer_stream(items, 2))
    assert not isinstance(info.value, pescador.DataError)
    if sys.version_info >= (3, 11):
        assert any("first item" in note for note in info.value.__notes__)


def test_buffer_stream_accepts_python_scalars_and_lists():
    batch = next(buffer_stream([{"a": 1, "b": [1, 2]}, {"a": 2, "b": [3, 4]}], 2))
    np.testing.assert_array_equal(batch["a"], [1, 2])
    np.testing.assert_array_equal(batch["b"], [[1, 2], [3, 4]])


def test_buffer_stream_axis_concatenates():
    items = [{"X": np.full((2, 3), i), "Y": np.arange(2) + 2 * i} for i in range(4)]
    batches = list(buffer_stream(items, 2, axis=0))
    assert [b["X"].shape for b in batches] == [(4, 3), (4, 3)]
    np.testing.assert_array_equal(batches[1]["Y"], [4, 5, 6, 7])
    batch = next(buffer_stream([{"X": item["X"]} for item in items], 2, axis=1))
    assert batch["X"].shape == (2, 6)


def test_buffer_stream_negative_axis():
    items = [{"X": np.zeros((2, 3))}] * 4
    assert [b["X"].shape for b in buffer_stream(items, 2, axis=-1)] == [(2, 6), (2, 6)]


def test_buffer_stream_axis_with_zero_dim_values_is_valueerror():
    items = [{"X": np.zeros(3), "Y": np.int64(1)}] * 2
    with pytest.raises(ValueError):
        next(buffer_stream(items, 2, axis=0))


def test_buffer_stream_axis_out_of_bounds_is_numpy_axis_error():
    items = [{"X": np.zeros((2, 3))}] * 2
    with pytest.raises(np.exceptions.AxisError if hasattr(np, "exceptions") else ValueError):
        next(buffer_stream(items, 2, axis=5))


@pytest.mark.parametrize("axis", [None, 0])
def test_buffer_stream_shape_mismatch_is_numpy_valueerror(axis):
    items = [{"X": np.zeros((2, 2))}, {"X": np.zeros((2, 3))}]
    with pytest.raises(ValueError) as info:
        next(buffer_stream(items, 2, axis=axis))
    assert not isinstance(info.value, pescador.PescadorError)


@pytest.mark.parametrize(
    "items, cause",
    [
        ([1, 2, 3, 4], AttributeError),
        ([None, None], AttributeError),
        (["ab", "cd"], AttributeError),
        ([[1], [2]], AttributeError),
        ([{"a": 1}, 5], TypeError),
        ([{"a": 1}, [1, 2]], TypeError),
        ([{"a": 1}, "text"], TypeError),
    ],
)
def test_buffer_stream_malformed_batch_is_chained_dataerror(items, cause):
    with pytest.raises(pescador.maps.DataError, match="Malformed data stream") as info:
        list(buffer_stream(items, 2))
    assert isinstance(info.value.__cause__, cause)


@pytest.mark.parametrize(
    "items, size", [([1], 2), ([{"a": 1}, {"a": 2}, 7], 2), ([{"a": 1}, None], 3)]
)
def test_buffer_stream_malformed_partial_batch_is_dataerror(items, size):
    # pescador 3.0 raised a raw AttributeError for the final partial batch; now it is a
    # chained DataError, as for every other batch.
    with pytest.raises(pescador.DataError, match="Malformed data stream") as info:
        list(buffer_stream(items, size, partial=True))
    assert isinstance(info.value.__cause__, (TypeError, AttributeError))


def test_buffer_stream_malformed_message_names_the_item():
    with pytest.raises(pescador.DataError, match=r"item 1 of a batch of 2 is int 5"):
        next(buffer_stream([{"a": 1}, 5], 2))


def test_buffer_stream_malformed_message_is_bounded():
    items = [{"a": np.zeros(10_000)}, list(range(10_000))]
    with pytest.raises(pescador.DataError) as info:
        next(buffer_stream(items, 2))
    assert len(str(info.value)) < 300


def test_buffer_stream_user_errors_from_input_are_not_wrapped():
    def broken():
        yield {"a": 1}
        raise TypeError("from the user's generator")

    with pytest.raises(TypeError, match="user's generator") as info:
        list(buffer_stream(broken(), 2))
    assert not isinstance(info.value, pescador.DataError)


DTYPES = [np.float16, np.float32, np.float64, np.int8, np.uint16, np.int64, np.bool_]
DTYPES += [np.complex64, "U3", "S2", "datetime64[s]", ">f4"]


SHAPES_AXES = [((), None), ((3,), None), ((2, 3), None), ((40, 30), None)]
SHAPES_AXES += [((3,), 0), ((2, 3), 0), ((2, 3), 1), ((40, 30), 0)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape, axis", SHAPES_AXES, ids=str)
def test_buffer_stream_preserves_dtype_and_copies(dtype, shape, axis):
    rng = np.random.default_rng(0)
    values = [rng.integers(0, 2, size=shape).astype(dtype) for _ in range(5)]
    items = [{"v": v} for v in values]
    batch = next(buffer_stream(items, 5, axis=axis))
    out = batch["v"]
    expected = np.array(values) if axis is None else np.concatenate(values, axis=axis)
    # numpy keeps the dtype, in native byte order (as pescador 3.0's np.array did)
    assert out.dtype == expected.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(out, expected)
    assert out.shape == expected.shape
    assert out.flags.writeable
    assert not any(np.shares_memory(out, v) for v in values)


def test_buffer_stream_output_does_not_alias_inputs_on_write():
    x = np.zeros((64, 64), dtype=np.float32)
    batch = next(buffer_stream([{"x": x}] * 2, 2))
    batch["x"][0, 0, 0] = 1
    assert x[0, 0] == 0


def test_buffer_stream_mixed_dtypes_promote_like_numpy():
    items = [{"a": np.zeros(1000, np.int32)}, {"a": np.ones(1000, np.float32)}]
    assert (
        next(buffer_stream(items, 2))["a"].dtype == np.array([items[0]["a"], items[1]["a"]]).dtype
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a[:, ::2],  # not contiguous
        np.asfortranarray,
        lambda a: a[::-1],
        lambda a: a.astype(object),
        lambda a: a.view(np.recarray),
    ],
    ids=["strided", "fortran", "reversed", "object", "subclass"],
)
def test_buffer_stream_large_unusual_arrays_match_np_array(make):
    rng = np.random.default_rng(1)
    values = [make(rng.random((64, 64))) for _ in range(3)]
    out = next(buffer_stream([{"v": v} for v in values], 3))["v"]
    expected = np.array(values)
    assert out.dtype == expected.dtype and out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)


def test_buffer_stream_large_same_size_different_shapes_is_valueerror():
    items = [{"v": np.zeros((32, 64))}, {"v": np.zeros((64, 32))}]
    with pytest.raises(ValueError):
        next(buffer_stream(items, 2))


def test_buffer_stream_large_mixed_arrays_and_scalars_match_np_array():
    values = [np.zeros(4096), np.float64(1.0)]
    with pytest.raises(ValueError):
        np.array(values)
    with pytest.raises(ValueError):
        next(buffer_stream([{"v": v} for v in values], 2))


def test_buffer_stream_memmap_items(tmp_path):
    path = tmp_path / "x.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(8, 1024))
    mm[:] = np.arange(8)[:, None]
    mm.flush()
    data = np.load(path, mmap_mode="c")
    items = [{"X": data[i : i + 2]} for i in range(0, 8, 2)]
    batch = next(buffer_stream(items, 4))
    assert type(batch["X"]) is np.ndarray
    np.testing.assert_array_equal(batch["X"], np.array([data[i : i + 2] for i in range(0, 8, 2)]))
    del data, items, batch, mm


@pytest.mark.parametrize("size", [0, -1, 2.5, "3", None, True, float("nan"), float("inf")])
def test_buffer_stream_bad_size_fails_at_call(size):
    with pytest.raises(pescador.PescadorError, match=r"buffer_size=.* must be a positive integer"):
        buffer_stream(data_items(4), size)


@pytest.mark.parametrize("size", [2, 2.0, np.int64(2), np.float32(2)])
def test_buffer_stream_integral_sizes_are_accepted(size):
    assert len(list(buffer_stream(data_items(4), size))) == 2


@pytest.mark.parametrize("axis", ["0", 1.0, True])
def test_buffer_stream_bad_axis_fails_at_call(axis):
    with pytest.raises(pescador.PescadorError, match="axis="):
        buffer_stream(data_items(4), 2, axis=axis)


def test_buffer_stream_numpy_integer_axis():
    items = [{"X": np.zeros((2, 3))}] * 2
    assert next(buffer_stream(items, 2, axis=np.int64(1)))["X"].shape == (2, 6)


@pytest.mark.parametrize(
    "source",
    [
        lambda items: items,
        lambda items: iter(items),
        lambda items: (x for x in items),
        lambda items: pescador.Streamer(items),
        lambda items: pescador.Streamer(items).iterate(),
        lambda items: tuple(items),
    ],
    ids=["list", "iterator", "generator", "Streamer", "StreamIterator", "tuple"],
)
def test_buffer_stream_input_kinds(source):
    batches = list(buffer_stream(source(data_items(6)), 3))
    assert [b["Y"].tolist() for b in batches] == [[0, 1, 2], [3, 4, 5]]


def test_buffer_stream_never_pulls_ahead():
    log = []
    it = buffer_stream(pulled_generator(data_items(10), log), 3)
    next(it)
    assert len(log) == 3
    next(it)
    assert len(log) == 6


def test_buffer_stream_of_a_map():
    items = [{"X": np.full(2, i)} for i in range(8)]
    inner = buffer_stream(items, 2)
    outer = list(buffer_stream(inner, 2, axis=0))
    assert [b["X"].shape for b in outer] == [(4, 2), (4, 2)]


def test_streamer_over_buffer_stream_restarts_and_limits():
    stream = pescador.Streamer(buffer_stream, pescador.Streamer(data_items(10)), 3)
    assert [len(b["Y"]) for b in stream] == [3, 3, 3]
    assert [len(b["Y"]) for b in stream] == [3, 3, 3]
    assert len(list(stream.iterate(max_iter=2))) == 2
    assert len(list(stream.cycle(max_iter=7))) == 7


def test_buffer_stream_items_delivered_counts_batches():
    it = buffer_stream(data_items(10), 3)
    assert it.items_delivered == 0
    list(it)
    assert it.items_delivered == 3


def test_buffer_stream_close_releases_an_input_it_opened():
    inner = pescador.Streamer(data_items(10))
    it = buffer_stream(inner, 2)
    next(it)
    assert inner.active == 1
    it.close()
    assert inner.active == 0
    with pytest.raises(StopIteration):
        next(it)


def test_buffer_stream_close_leaves_a_callers_iterator_open():
    source = iter(data_items(10))
    it = buffer_stream(source, 2)
    next(it)
    it.close()
    assert next(source)["Y"] == 2


def test_buffer_stream_context_manager():
    inner = pescador.Streamer(data_items(10))
    with buffer_stream(inner, 2) as it:
        next(it)
        assert inner.active == 1
    assert inner.active == 0


# --------------------------------------------------------------------------- __stack_data


def test_stack_data_compat_helper():
    data = [{"a": np.zeros(2), "b": 1}, {"a": np.ones(2), "b": 2}]
    stacked = pescador.maps.__stack_data(data, None)
    np.testing.assert_array_equal(stacked["a"], [[0, 0], [1, 1]])
    np.testing.assert_array_equal(stacked["b"], [1, 2])
    concat = pescador.maps.__stack_data([{"a": np.zeros(2)}, {"a": np.ones(2)}], 0)
    np.testing.assert_array_equal(concat["a"], [0, 0, 1, 1])


def test_stack_data_does_not_wrap_errors():
    with pytest.raises(AttributeError):
        pescador.maps.__stack_data([1, 2], None)
    with pytest.raises(KeyError):
        pescador.maps.__stack_data([{"a": 1}, {"b": 1}], None)


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


# --------------------------------------------------------------------------- cache


@pytest.mark.parametrize("n_cache", [0, -1, 2.5, None, "3", True])
def test_cache_bad_n_cache_fails_at_call(n_cache):
    with pytest.raises(pescador.PescadorError, match=r"n_cache=.* must be a positive integer"):
        cache(range(5), n_cache)


@pytest.mark.parametrize("prob", [0, -0.5, 1.5, float("nan"), "0.5", None, True])
def test_cache_bad_prob_fails_at_call(prob):
    with pytest.raises(pescador.PescadorError, match=r"prob=.* must be a number in the range"):
        cache(range(5), 2, prob=prob)


@pytest.mark.parametrize("random_state", ["x", -1, 1.5])
def test_cache_bad_random_state_fails_at_call(random_state):
    with pytest.raises(pescador.PescadorError, match="random_state"):
        cache(range(5), 2, random_state=random_state)


@pytest.mark.parametrize("prob", [1, 1.0, np.float32(0.25), 1e-9])
def test_cache_valid_probs(prob):
    out = list(itertools.islice(cache(itertools.count(), 3, prob=prob, random_state=0), 50))
    assert out[:3] == [0, 1, 2]


@pytest.mark.parametrize(
    "source",
    [
        lambda: list(range(20)),
        lambda: range(20),
        lambda: iter(range(20)),
        lambda: (i for i in range(20)),
        lambda: pescador.Streamer(list(range(20))),
        lambda: pescador.Streamer(list(range(20))).iterate(),
    ],
    ids=["list", "range", "iterator", "generator", "Streamer", "StreamIterator"],
)
def test_cache_accepts_any_iterable(source):
    # pescador 3.0 raised TypeError for lists and Streamers.
    out = list(cache(source(), 4, random_state=1))
    assert out[:4] == [0, 1, 2, 3]
    assert sorted(set(out)) == list(range(20))
    assert len(out) >= 20


def test_cache_warm_up_passes_items_in_order():
    out = list(itertools.islice(cache(itertools.count(), 10, random_state=3), 10))
    assert out == list(range(10))


@pytest.mark.parametrize("seed", range(5))
def test_cache_first_appearances_in_input_order(seed):
    out = list(cache(range(200), 8, prob=0.3, random_state=seed))
    firsts = list(dict.fromkeys(out))
    assert firsts == list(range(200))
    assert len(out) > 200


@pytest.mark.parametrize("n_cache", [1, 3, 7])
def test_cache_holds_at_most_n_cache_items(n_cache):
    # An item yielded at t and again later was cached throughout, and an evicted item never
    # comes back; so at every step at most n_cache items are "live" (seen before, seen again).
    out = list(cache(range(400), n_cache, prob=0.4, random_state=n_cache))
    first = {v: out.index(v) for v in set(out)}
    last = {v: len(out) - 1 - out[::-1].index(v) for v in set(out)}
    live = np.zeros(len(out) + 1, dtype=int)
    for v in first:
        live[first[v]] += 1
        live[last[v]] -= 1
    assert np.cumsum(live).max() <= n_cache
    assert len(out) > 400


def test_cache_prob_one_reproduces_input():
    assert list(cache(range(50), 3, prob=1, random_state=0)) == list(range(50))


def test_cache_larger_than_input_reproduces_input():
    assert list(cache(range(10), 11, random_state=0)) == list(range(10))
    assert list(cache(range(10), 100)) == list(range(10))


def test_cache_exactly_input_length_starts_with_the_input():
    # The cache learns that the input ended at its first refill, after some repeats.
    out = list(cache(range(10), 10, prob=0.5, random_state=0))
    assert out[:10] == list(range(10))
    assert set(out[10:]) <= set(range(10))


def test_cache_empty_input():
    assert list(cache([], 3)) == []


def test_cache_yields_the_same_objects():
    items = [{"i": i} for i in range(30)]
    out = list(cache(items, 4, random_state=2))
    ids = {id(item) for item in items}
    assert all(id(o) in ids for o in out)
    assert len(out) > len(items)


def test_cache_pulls_only_refills():
    log = []
    it = cache(pulled_generator(range(10**6), log), 5, prob=0.25, random_state=4)
    out = list(itertools.islice(it, 1000))
    assert len(log) == len(set(out))  # every pulled item was yielded, nothing read ahead
    assert max(it._slot_positions) + 1 == len(log)


def test_cache_is_infinite_over_an_infinite_input():
    out = list(itertools.islice(cache(itertools.count(), 4, random_state=0), 5000))
    assert len(out) == 5000


def test_cache_int_seed_is_reproducible():
    first = list(cache(range(100), 5, random_state=42))
    assert list(cache(range(100), 5, random_state=42)) == first
    assert list(cache(range(100), 5, random_state=43)) != first


def test_cache_streamer_replays_a_seeded_sequence():
    stream = pescador.Streamer(cache, list(range(100)), 5, random_state=7)
    first = list(stream)
    assert list(stream) == first
    assert len(first) > 100


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.random.RandomState(5),
        lambda: np.random.default_rng(5),
        lambda: np.random.SeedSequence(5),
        lambda: np.int64(5),
    ],
    ids=["RandomState", "Generator", "SeedSequence", "np.int64"],
)
def test_cache_rng_objects_are_read_not_advanced(make):
    rng = make()
    before = rng.get_state()[1].tolist() if isinstance(rng, np.random.RandomState) else None
    if isinstance(rng, np.random.Generator):
        before = rng.bit_generator.state
    first = list(cache(range(100), 5, random_state=rng))
    assert list(cache(range(100), 5, random_state=rng)) == first
    if isinstance(rng, np.random.RandomState):
        assert rng.get_state()[1].tolist() == before
    if isinstance(rng, np.random.Generator):
        assert rng.bit_generator.state == before


def test_cache_unseeded_follows_numpy_global_seed():
    np.random.seed(123)
    first = list(cache(range(200), 5))
    second = list(cache(range(200), 5))
    np.random.seed(123)
    assert list(cache(range(200), 5)) == first
    assert second != first


def test_cache_inherits_a_parent_seed_when_unseeded():
    from pescador._seeds import Seed

    runs = []
    for _ in range(2):
        it = cache(range(200), 5)
        it._seed = Seed(99)  # what a seeded parent mux hands its children
        runs.append(list(it))
    assert runs[0] == runs[1]
    it = cache(range(200), 5, random_state=1)
    it._seed = Seed(99)  # an explicit random_state wins over the parent's seed
    assert list(it) == list(cache(range(200), 5, random_state=1))


def test_cache_refill_rate_matches_prob():
    # Refills among K post-warm-up steps ~ Binomial(K, p); Hoeffding:
    # P(|rate - p| >= 0.01) <= 2 exp(-2 K 0.01^2) = 4e-9 for K = 100_000.
    n, p, k = 10, 0.3, 100_000
    out = list(itertools.islice(cache(itertools.count(), n, prob=p, random_state=0), n + k))
    refills = len(set(out)) - n
    assert abs(refills / k - p) < 0.01


def test_cache_slot_choice_is_uniform():
    # With prob tiny, the warm-up contents stay put; repeats pick slots uniformly.
    # Chi-square on 100_000 draws over 8 slots at alpha = 1e-4.
    from scipy import stats

    out = list(itertools.islice(cache(itertools.count(), 8, prob=1e-12, random_state=5), 100_008))
    counts = np.bincount(out[8:], minlength=8)
    assert counts.size == 8
    assert stats.chisquare(counts).pvalue > 1e-4


def test_cache_state_lives_on_the_iterator():
    # What a checkpoint needs: slot contents with their input positions, the RNG state at the
    # start of the current block of draws and the position in it.
    from operator import length_hint

    from pescador.mux._draws import BLOCK

    n, prob = 6, 0.4
    it = cache(itertools.count(), n, prob=prob, random_state=8)
    out = [next(it) for _ in range(2500)]  # crosses two block boundaries
    assert it._slot_positions == it._slots  # count() yields its own positions
    assert max(it._slot_positions) + 1 == max(out) + 1
    consumed = BLOCK - length_hint(it._decisions)
    assert consumed == (len(out) - n) % BLOCK or consumed == BLOCK
    # Replaying the block from the saved state gives the decisions still to come.
    replay = np.random.Generator(np.random.PCG64())
    replay.bit_generator.state = it._block_state
    index = replay.integers(0, n, BLOCK)
    refill = replay.random(BLOCK) < prob
    codes = np.where(refill, ~index, index).tolist()
    assert list(it._decisions) == codes[consumed:]


def test_cache_close():
    inner = pescador.Streamer(list(range(100)))
    it = cache(inner, 5, random_state=0)
    next(it)
    assert inner.active == 1
    it.close()
    assert inner.active == 0
    with pytest.raises(StopIteration):
        next(it)
