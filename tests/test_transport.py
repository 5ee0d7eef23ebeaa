"""The shared-memory transport of ParallelStreamer, in one process: every item round-trips
exactly, chunks are reused once released, held chunks are never overwritten, and the limit is
honoured (items beyond it travel pickled)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pescador import transport as _transport

DTYPES = st.one_of(
    hnp.scalar_dtypes(),
    hnp.byte_string_dtypes(),
    hnp.unicode_string_dtypes(),
    hnp.nested_dtypes(max_itemsize=64),
)
ARRAYS = hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, max_side=5))
VALUES = st.one_of(ARRAYS, st.integers(), st.text(max_size=5), st.none())
KEYS = st.one_of(st.text(max_size=4), st.integers(-3, 3), st.booleans())
ITEMS = st.one_of(
    st.dictionaries(st.one_of(KEYS, st.tuples(KEYS, KEYS)), VALUES, max_size=4),
    st.lists(VALUES, max_size=4).map(tuple),
    ARRAYS,
    st.integers(),
    st.lists(ARRAYS, max_size=2),
)


@pytest.fixture()
def pipe():
    """A writer and a reader joined by a real pipe, as in a worker and the consumer."""
    directory = _transport.make_directory()
    read_fd, write_fd = os.pipe()
    writer = _transport.ChunkWriter(directory, 0, 8 << 20)
    reader = _transport.ChunkReader(directory, 0)
    inbox = _transport.Inbox(read_fd)

    def send(item):
        _transport.send(write_fd, writer.pack(item, lambda: None))
        message = inbox.pop()
        while message is None:
            assert inbox.fill()
            message = inbox.pop()
        return reader.unpack(message)

    yield send, writer, reader
    reader.close()
    writer.close()
    os.close(read_fd)
    os.close(write_fd)
    _transport.remove_directory(directory)


def same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        if not isinstance(b, np.ndarray) or a.shape != b.shape:
            return False
        if a.dtype != b.dtype:
            # What travels pickled follows numpy's pickling, which turns a non-native
            # datetime native (the values are kept); shared memory keeps every dtype.
            if not (a.dtype.kind in "mM" and a.dtype.newbyteorder("=") == b.dtype):
                return False
            a = a.astype(b.dtype)
        return a.tobytes() == np.ascontiguousarray(b).tobytes()
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and list(a) == list(b)
            and [type(k) for k in a] == [type(k) for k in b]
            and all(same(a[k], b[k]) for k in a)
        )
    return type(a) is type(b) and a == b


# One pipe for all examples, on purpose: layouts and chunks carry over from one to the next.
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=st.lists(ITEMS, min_size=1, max_size=6))
def test_every_item_round_trips_exactly(pipe, items):
    send, writer, reader = pipe
    writer.release(reader.drain())  # the previous example's items are gone (refcounting)
    received = [send(item) for item in items]  # all held at once: no chunk is shared
    for item, got in zip(items, received, strict=True):
        assert same(item, got)


def test_non_contiguous_arrays_arrive_as_their_values(pipe):
    send, _, _ = pipe
    base = np.arange(60, dtype=np.float64).reshape(6, 10)
    item = {"t": base.T, "s": base[::2, ::3], "f": np.asfortranarray(base)}
    got = send(item)
    for key, value in item.items():
        np.testing.assert_array_equal(got[key], value)
        assert got[key].flags.writeable


def test_released_chunks_are_reused_and_held_ones_are_not(pipe):
    send, writer, reader = pipe
    held = send({"x": np.full(100, 1.0)})
    for j in range(50):
        got = send({"x": np.full(100, float(j))})
        assert got["x"][0] == j
        del got  # its chunk is queued at once (refcounting, no cycle)
        writer.release(reader.drain())
    assert np.all(held["x"] == 1.0)  # its chunk was never handed out again
    assert len(writer.maps) == 1  # a chunk or two, reused, in one file


def test_items_beyond_the_limit_are_pickled(pipe):
    send, writer, _ = pipe
    writer.limit = 0
    got = send({"x": np.arange(5)})
    np.testing.assert_array_equal(got["x"], np.arange(5))
    assert not writer.maps


def test_tuples_and_bare_arrays_travel_in_shared_memory(pipe):
    send, writer, _ = pipe
    x, y = np.arange(12.0).reshape(3, 4), np.arange(3)
    pair = send((x, "label", y))
    bare = send(x)
    assert type(pair) is tuple and pair[1] == "label"
    for got, want in ((pair[0], x), (pair[2], y), (bare, x)):
        np.testing.assert_array_equal(got, want)
        assert not got.flags.owndata  # a view of the chunk, not an unpickled copy
    assert len(writer.maps) == 1
