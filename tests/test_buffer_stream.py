"""buffer_stream: batches of items stacked (or concatenated along an axis), dtypes and copies,
malformed batches, resources; and the :mod:`pescador.testing` conformance checks.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import pescador
import pescador.io
import pescador.maps
from conftest import (
    LENGTHS,
    assert_conforms,
    data_items,
    data_streams,
    endless_data,
    pulled_generator,
    roundtrip,
)
from pescador import ACTIVATION_RNG, ChainMux, StochasticMux, Streamer
from pescador.maps import buffer_stream
from pescador.testing import items_equal

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


# --------------------------------------------------------------------------- conformance
# The pescador.testing checks, through assert_conforms (conftest.py): restartable, resumable
# at every position (JSON states), and, where the stream is random, the proportions of items.


def row_blocks(tag, rng=ACTIVATION_RNG):
    """Items that already have a batch axis (for ``buffer_stream(..., axis=0)``)."""
    while True:
        yield {"X": rng.normal(size=(2, 3)), "tag": np.array([tag, tag])}


def test_buffer_stream_resumes_between_batches():
    mux = StochasticMux(data_streams(), 3, 4, random_state=3)
    assert_conforms(Streamer(pescador.buffer_stream, mux, 4), 15)
    rows = StochasticMux([Streamer(row_blocks, t) for t in "abc"], 2, 3, random_state=3)
    assert_conforms(Streamer(pescador.buffer_stream, rows, 3, axis=0), 15)


def test_buffer_stream_with_a_partial_last_batch():
    stream = Streamer(pescador.buffer_stream, ChainMux(data_streams()), 4, partial=True)
    items = assert_conforms(stream, 20)
    assert len(items[-1]["i"]) == sum(LENGTHS) % 4  # the partial batch is there


def test_buffer_stream_checkpoint_while_its_input_is_half_way_through_an_activation():
    """Batches of 3 over activations of 4 items: every batch boundary falls at a different
    point of the running activations, so the input's state is mid-activation; and a batch
    whose items were half gathered from the input by hand resumes from the input's state."""
    mux = StochasticMux(
        [Streamer(endless_data, t) for t in "abcd"], 2, 4, dist="constant", random_state=8
    )
    assert_conforms(Streamer(pescador.buffer_stream, mux, 3), 25)

    inner = mux.iterate()
    batches = pescador.buffer_stream(inner, 4)
    first = next(batches)
    half = [next(inner), next(inner)]  # taken out of the input between two batches
    state = roundtrip(batches.state_dict())
    expected = next(batches)
    resumed_input = mux.iterate()
    resumed = pescador.buffer_stream(resumed_input, 4)
    resumed.load_state_dict(state)
    got = next(resumed)
    assert items_equal(got, expected)
    assert first["X"].shape == (4, 4) and len(half) == 2
