"""Property-based tests (hypothesis) of the structural guarantees of pescador.maps."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pescador
import pescador.maps
import pescador.maps._batches as maps_batches
from pescador.maps import buffer_stream, cache, tuples

DTYPES = st.sampled_from(
    [np.dtype(d) for d in ["f4", "f8", "i1", "u2", "i8", "?", "c8", "U3", "S2", ">f4", ">i8"]]
)


@st.composite
def data_streams(draw, min_rows=None):
    """A list of dicts {"x": array of one shape and dtype, "y": its index}.

    With ``min_rows``, each item carries a batch axis of its own length (for ``axis=0``).
    """
    dtype = draw(DTYPES)
    shape = draw(hnp.array_shapes(min_dims=0 if min_rows is None else 1, max_dims=3, max_side=4))
    if min_rows is not None:
        shape = (draw(st.integers(min_rows, 3)), *shape[1:])
    n = draw(st.integers(0, 30))
    items = []
    for i in range(n):
        rows = shape if min_rows is None else (draw(st.integers(1, 3)), *shape[1:])
        x = draw(hnp.arrays(dtype, rows))
        items.append({"x": x, "y": i if min_rows is None else np.full(len(x), i)})
    return items


def same_array(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")


def check_dtypes(batches, items, size, stack):
    # The dtype numpy gives (the items' dtype; byte order may become native, as in 3.0).
    for b, batch in enumerate(batches):
        group = [item["x"] for item in items[b * size : (b + 1) * size]]
        assert batch["x"].dtype == stack(group).dtype
        assert batch["x"].dtype.newbyteorder("=") == items[0]["x"].dtype.newbyteorder("=")


@given(data_streams(), st.integers(1, 8), st.booleans())
def test_batch_then_unbatch_is_identity(items, size, partial):
    batches = list(buffer_stream(items, size, partial=partial))
    kept = len(items) if partial else len(items) - len(items) % size
    unbatched = [
        {key: batch[key][i] for key in batch} for batch in batches for i in range(len(batch["y"]))
    ]
    assert len(unbatched) == kept
    check_dtypes(batches, items, size, np.array)
    for got, want in zip(unbatched, items, strict=False):
        assert same_array(got["x"], want["x"])
        assert got["y"] == want["y"]


@given(data_streams(min_rows=1), st.integers(1, 8), st.booleans())
def test_concatenate_then_split_is_identity(items, size, partial):
    batches = list(buffer_stream(items, size, partial=partial, axis=0))
    kept = items if partial else items[: len(items) - len(items) % size]
    rows = [item["x"] for item in kept]
    pieces = []
    for b, batch in enumerate(batches):
        group = rows[b * size : (b + 1) * size]
        bounds = np.cumsum([len(r) for r in group])[:-1]
        pieces.extend(np.split(batch["x"], bounds))
    assert len(pieces) == len(rows)
    check_dtypes(batches, items, size, np.concatenate)
    for got, want in zip(pieces, rows, strict=True):
        assert same_array(got, want)


@given(st.integers(0, 100), st.integers(1, 20), st.booleans())
def test_batch_count(n, size, partial):
    items = [{"y": i} for i in range(n)]
    expected = n // size + (1 if partial and n % size else 0)
    assert len(list(buffer_stream(items, size, partial=partial))) == expected


@given(
    st.lists(st.dictionaries(st.sampled_from("abcde"), st.integers(), min_size=5), max_size=20),
    st.lists(st.sampled_from("abcde"), min_size=1, max_size=6),
)
def test_tuples_is_per_item_lookup(items, keys):
    assert list(tuples(items, *keys)) == [tuple(item[k] for k in keys) for item in items]


@given(
    st.integers(0, 200),
    st.integers(1, 20),
    st.floats(0.01, 1.0),
    st.integers(0, 2**32 - 1),
)
@settings(max_examples=200)
def test_cache_keeps_input_order_of_first_appearance(n, n_cache, prob, seed):
    out = list(cache(range(n), n_cache, prob=prob, random_state=seed))
    assert list(dict.fromkeys(out)) == list(range(n))
    assert len(out) >= n
    if n_cache > n or prob == 1.0:
        assert out == list(range(n))
    assert out == list(cache(range(n), n_cache, prob=prob, random_state=seed))


STACK_DTYPES = ["f4", "f8", "i1", "u2", "i8", "?", "c8", "U3", "S2", ">f4", ">i8", "M8[s]"]
STACK_DTYPES += [
    [("a", "<i4"), ("b", ">f8")],
    {"names": ["a", "b"], "formats": ["u1", "<f8"], "offsets": [0, 8], "itemsize": 24},
    "O",
]


def make_array(dtype, shape, seed):
    raw = np.random.default_rng(seed).integers(0, 100, size=shape)
    dtype = np.dtype(dtype)
    if dtype.names:
        out = np.zeros(shape, dtype)
        out["a"], out["b"] = raw, raw / 2
        return out
    if dtype.kind in "US":
        return raw.astype(str).astype(dtype)
    return raw.astype(dtype)


def same_contents(got, expected):
    """Byte for byte, except where bytes are not the data: a structured dtype's padding
    (undefined) is skipped by comparing field by field, and an object array's elements (their
    bytes are pointers) are compared by type and value."""
    names = expected.dtype.names
    if names is not None:
        return got.dtype.names == names and all(same_contents(got[k], expected[k]) for k in names)
    if expected.dtype.kind == "O":
        typed = [(type(x), x) for x in expected.ravel().tolist()]
        return [(type(x), x) for x in got.ravel().tolist()] == typed
    return got.tobytes() == expected.tobytes()


@st.composite
def array_lists(draw):
    """Lists of arrays that mostly share a shape and dtype, in assorted memory layouts."""
    dtype = draw(st.sampled_from(STACK_DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=5))
    values = []
    for _ in range(draw(st.integers(1, 6))):
        this_dtype, this_shape = dtype, shape
        if draw(st.integers(0, 9)) == 0:  # now and then, another shape or dtype
            this_dtype = draw(st.sampled_from(STACK_DTYPES))
            this_shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=5))
        base = make_array(this_dtype, (2, 2, *this_shape), draw(st.integers(0, 2**16)))
        layout = draw(st.sampled_from(["c", "f", "strided", "view"]))
        if layout == "strided":
            value = base[:, 0][0] if not this_shape else base[0, 0][..., ::2]
        elif layout == "f":
            value = np.asfortranarray(base[0, 0])
        elif layout == "view":
            value = base[1, 1]
        else:
            value = np.ascontiguousarray(base[0, 1])
        values.append(value)
    return values


@given(array_lists())
@settings(max_examples=300)
def test_fast_stacking_matches_np_array(values):
    def outcome(func):
        try:
            return func(values)
        except ValueError as exc:
            return type(exc)

    expected = outcome(np.array)
    with mock.patch.object(maps_batches, "_JOIN_MIN_NBYTES", 0):
        got = outcome(lambda vs: maps_batches._stack_data([{"v": v} for v in vs], None)["v"])
    if isinstance(expected, type):
        assert got is expected
    else:
        assert isinstance(got, np.ndarray) and type(got) is np.ndarray
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert got.flags.writeable and got.flags.c_contiguous
        if expected.dtype.names is None and expected.dtype.kind in "fc":
            np.testing.assert_array_equal(got, expected)
        else:
            assert same_contents(got, expected)
        assert not any(np.shares_memory(got, v) for v in values)


@pytest.mark.parametrize("dtype", STACK_DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(), (4,), (2, 3)], ids=str)
def test_fast_stacking_follows_numpy_dtype_rules(dtype, shape):
    # np.array converts some dtypes (byte order, padded structs) when it stacks 2+ arrays.
    values = [make_array(dtype, shape, seed) for seed in range(3)]
    expected = np.array(values)
    with mock.patch.object(maps_batches, "_JOIN_MIN_NBYTES", 0):
        got = maps_batches._stack_data([{"v": v} for v in values], None)["v"]
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert same_contents(got, expected)


def test_fast_stacking_is_used_for_large_arrays():
    values = [np.full((64, 64), i, dtype=np.float32) for i in range(3)]
    with mock.patch.object(maps_batches, "_join_arrays", wraps=maps_batches._join_arrays) as spy:
        next(buffer_stream([{"x": v} for v in values], 3))
    assert spy.call_count == 1


@pytest.mark.parametrize("n", [0, 1, 7])
def test_stream_iterator_inputs_are_consumed_in_place(n):
    inner = pescador.Streamer([{"y": i} for i in range(n)]).iterate()
    assert sum(len(b["y"]) for b in buffer_stream(inner, 3, partial=True)) == n
    assert list(inner) == []
