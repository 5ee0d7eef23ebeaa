"""Items that are not only arrays, through ZMQStreamer and ParallelStreamer (docs/compat.md).

- A numpy scalar (``{"Y": np.float32(label)}``, a common pattern) goes through ZMQStreamer as a
  0-d array of its dtype (read-only, like every received array): pescador 3.0 code reads
  arrays there. ParallelStreamer, which carries any picklable item, delivers it unchanged.
- Python numbers and strings (``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``)
  arrive unchanged through both.
- Other values (lists, ``None``, objects) are refused by ZMQStreamer with a ``WorkerDataError``;
  ParallelStreamer delivers them (pickled).
- ``zmq_send_data`` (3.0's function for hand-built consumers) never pickles: it sends numpy
  scalars as 0-d arrays and refuses Python values.
"""

from __future__ import annotations

import numpy as np
import pytest
from zmq_helpers import inproc_pair, no_leftovers, yields

from pescador import DataError, ParallelStreamer, Streamer

zmq = pytest.importorskip("zmq")
from pescador import zmq_stream  # noqa: E402
from pescador.zmq_stream import WorkerDataError, ZMQStreamer  # noqa: E402

__all__ = ["no_leftovers"]  # the autouse fixture, imported to apply here

NUMPY_SCALARS = {
    "f32": np.float32(2.5),
    "i64": np.int64(-7),
    "u8": np.uint8(200),
    "bool": np.bool_(True),
    "c64": np.complex64(1 - 2j),
    "str": np.str_("label"),
    "bytes": np.bytes_(b"ab"),
    "date": np.datetime64("2020-01-02", "D"),
}

PYTHON_VALUES = {
    "int": 3,
    "big": 2**70,
    "float": 0.25,
    "bool": False,
    "complex": 1j,
    "text": "hello",
    "raw": b"\x00\x01",
}


def labelled(n: int):
    """The common pattern: arrays, and a numpy scalar label."""
    for i in range(n):
        yield {"X": np.full(4, i, np.float32), "Y": np.float32(i % 3)}


@pytest.mark.parametrize("key", sorted(NUMPY_SCALARS))
@pytest.mark.parametrize("shared_memory", [False, True])
def test_numpy_scalars_arrive_as_0d_arrays_through_zmq(key, shared_memory):
    value = NUMPY_SCALARS[key]
    big = np.zeros(1 << 16)  # with it, the item travels through shared memory (where there is)
    item = {"v": value, "big": big} if shared_memory else {"v": value}
    got = list(ZMQStreamer(Streamer([item, item]), shared_memory=shared_memory).iterate())
    assert len(got) == 2
    for out in got:
        v = out["v"]
        assert type(v) is np.ndarray and v.shape == () and v.dtype == np.asarray(value).dtype
        assert v[()] == value
        assert not v.flags.writeable


def test_numpy_scalar_labels_stream_through_zmq():
    got = list(ZMQStreamer(Streamer(labelled, 50)).iterate())
    assert [float(item["Y"]) for item in got] == [float(i % 3) for i in range(50)]
    assert all(item["Y"].dtype == np.float32 and item["Y"].ndim == 0 for item in got)
    np.testing.assert_array_equal(got[7]["X"], np.full(4, 7, np.float32))


def test_numpy_scalars_unchanged_through_parallel():
    item = dict(NUMPY_SCALARS)
    (out,) = list(ParallelStreamer(Streamer([item]), 1).iterate())
    for key, value in item.items():
        assert type(out[key]) is type(value) and out[key] == value


@pytest.mark.parametrize("stream_cls", ["zmq", "parallel"])
def test_python_numbers_and_strings_arrive_unchanged(stream_cls):
    item = {**PYTHON_VALUES, "x": np.arange(3)}
    items = [item, {**item, "int": 4}]
    source = Streamer(items)
    stream = ZMQStreamer(source) if stream_cls == "zmq" else ParallelStreamer(source, 1)
    got = list(stream.iterate())
    assert [g["int"] for g in got] == [3, 4]
    for out, sent in zip(got, items, strict=True):
        for key in PYTHON_VALUES:
            assert type(out[key]) is type(sent[key]) and out[key] == sent[key]
        np.testing.assert_array_equal(out["x"], np.arange(3))


def test_values_are_checked_on_every_item_through_zmq():
    """A layout does not tell a number from a list: items with values are checked each time."""
    it = ZMQStreamer(Streamer(yields, {"v": 1.0}, {"v": 2.0}, {"v": [1, 2]})).iterate()
    assert [next(it)["v"], next(it)["v"]] == [1.0, 2.0]
    with pytest.raises(WorkerDataError, match="numpy arrays only"):
        next(it)


def test_a_number_then_a_numpy_scalar_under_one_key():
    got = list(ZMQStreamer(Streamer([{"v": 1.0}, {"v": np.float32(2.0)}, {"v": 3}])).iterate())
    assert got[0]["v"] == 1.0 and type(got[0]["v"]) is float
    assert type(got[1]["v"]) is np.ndarray and got[1]["v"].dtype == np.float32
    assert got[2]["v"] == 3 and type(got[2]["v"]) is int


@pytest.mark.parametrize("value", [[1, 2], None, {"a": 1}, object()], ids=str)
def test_other_values_refused_by_zmq_delivered_by_parallel(value):
    if type(value) is not object:  # (a bare object pickles, but arrives as another one)
        (out,) = list(ParallelStreamer(Streamer([{"v": value}]), 1).iterate())
        assert out["v"] == value
    it = ZMQStreamer(Streamer([{"v": value}])).iterate()
    with pytest.raises(WorkerDataError, match="numpy arrays only") as info:
        next(it)
    assert isinstance(info.value, DataError)


def test_zmq_send_data_sends_numpy_scalars_and_refuses_values():
    with inproc_pair("pescador-items") as (a, b):
        zmq_stream.zmq_send_data(a, {"Y": np.float32(1.5), "X": np.ones(2)})
        got = zmq_stream.zmq_recv_data(b)
        assert got["Y"].shape == () and got["Y"].dtype == np.float32 and got["Y"] == 1.5
        with pytest.raises(DataError, match="numpy arrays only"):
            zmq_stream.zmq_send_data(a, {"Y": 1.5})
