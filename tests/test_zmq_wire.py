"""ZMQStreamer's wire format and shared memory: every layout and dtype, the items it refuses,
pescador 3.0's zmq_send_data / zmq_recv_data / zmq_worker, items of every size.

The transport itself (layouts, chunks) is tested in one process in ``test_transport``.
"""

from __future__ import annotations

import contextlib
import mmap
import multiprocessing

import numpy as np
import pytest
from zmq_helpers import (
    BIG,
    LINUX,
    counting,
    failing,
    inproc_pair,
    no_leftovers,
    reusing,
    sizes,
    xs,
    yields,
)

from pescador import DataError, Streamer, WorkerError
from pescador import transport as _transport

zmq = pytest.importorskip("zmq")
from pescador import zmq_stream  # noqa: E402
from pescador.zmq_stream import WorkerDataError, ZMQStreamer  # noqa: E402

__all__ = ["no_leftovers"]  # the autouse fixture, imported to apply here

SHM = LINUX and _transport.shm_available()


def in_shared_memory(array: np.ndarray) -> bool:
    """Whether ``array`` is a view of a chunk of shared memory (else of a frame)."""
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap)


def layouts(repeat: int) -> dict[str, np.ndarray]:
    """Arrays of every layout and many dtypes (1-d ones tiled ``repeat`` times)."""
    return {
        name: np.tile(value, repeat) if value.ndim == 1 and value.size else value
        for name, value in LAYOUTS.items()
    }


def layout_items(repeat: int):
    # Built in the worker: pickling (under spawn) would change the big-endian array's dtype.
    yield layouts(repeat)


LAYOUTS = {
    "C": np.arange(12.0).reshape(3, 4),
    "F": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
    "transposed": np.arange(6).reshape(2, 3).T,
    "strided": np.arange(40)[::3],
    "strided 2d": np.arange(60).reshape(6, 10)[::2, 1::3],
    "0-d": np.array(3.5),
    "empty": np.zeros((0, 4), np.float32),
    "big-endian": np.arange(5, dtype=">i4"),
    "bool": np.array([True, False, True]),
    "complex": np.arange(4) * (1 + 2j),
    "float16": np.arange(7, dtype=np.float16),
    "unicode": np.array(["a", "bcd", "ef"]),
    "bytes": np.array([b"xy", b"z"]),
    "datetime": np.array(["2020-01-01", "2021-06-30"], "datetime64[D]"),
    "timedelta": np.array([1, 2, 3], "timedelta64[ms]"),
    "structured": np.array(
        [(1, 2.5, b"ab"), (3, 4.5, b"cd")], [("i", "<i4"), ("f", "<f8"), ("s", "S2")]
    ),
    "aligned nested": np.zeros(
        3, np.dtype([("a", "u1"), ("b", [("x", "<f8"), ("y", "<i2", (2,))])], align=True)
    ),
}


@pytest.mark.parametrize("shared_memory", [False, True])
@pytest.mark.parametrize("repeat", [1, 3000], ids=["small", "large"])
def test_every_layout_and_dtype_round_trips(shared_memory, repeat):
    item = layouts(repeat)
    got = next(iter(ZMQStreamer(Streamer(layout_items, repeat), shared_memory=shared_memory)))
    assert got.keys() == item.keys()
    for name, value in item.items():
        assert got[name].dtype == value.dtype, name
        assert got[name].shape == value.shape, name
        np.testing.assert_array_equal(got[name], value, err_msg=name)
        assert not got[name].flags.writeable
    assert got["F"].flags.f_contiguous  # Fortran order travels as is
    # Items of 32 KiB or more travel through shared memory, where there is some.
    assert in_shared_memory(got["C"]) == (shared_memory and repeat > 1 and SHM)


def test_empty_dict_is_an_item():
    items = [{}, {"x": np.arange(2)}, {}]
    got = list(ZMQStreamer(Streamer(items)))
    assert len(got) == 3 and got[0] == {} and got[2] == {}


def test_int_keys_and_mixed_keys():
    got = next(iter(ZMQStreamer(Streamer([{1: np.ones(1), "a": np.zeros(1)}]))))
    assert set(got) == {1, "a"}


@pytest.mark.parametrize(
    "item, match",
    [
        ({"x": np.array([object()], dtype=object)}, "objects"),
        ({"x": [1, 2]}, "numpy arrays only"),
        ({"x": None}, "numpy arrays only"),  # numbers and strings pass: test_zmq_items
        ({"x": np.ma.masked_array([1, 2], [0, 1])}, "numpy arrays only"),
        ({(1, 2): np.ones(1)}, "keys"),
        (3, "dicts of numpy arrays"),
    ],
)
def test_bad_items_raise_a_data_error_from_the_worker(item, match):
    it = ZMQStreamer(Streamer(yields, {"ok": np.zeros(1)}, item)).iterate()
    assert list(next(it)) == ["ok"]
    with pytest.raises(WorkerDataError, match=match) as info:
        next(it)
    assert isinstance(info.value, DataError) and isinstance(info.value, WorkerError)
    assert "DataError" in info.value.remote_traceback


def test_module_functions_round_trip():
    with inproc_pair("pescador-test") as (a, b):
        item = {"F": np.asfortranarray(np.ones((2, 3))), "s": np.arange(9)[::2], "e": np.ones(0)}
        for copy in (True, False):
            zmq_stream.zmq_send_data(a, item, copy=copy)
            got = zmq_stream.zmq_recv_data(b, copy=copy)
            for key in item:
                np.testing.assert_array_equal(got[key], item[key])
        zmq_stream.zmq_send_data(a, {})
        assert zmq_stream.zmq_recv_data(b) == {}


@contextlib.contextmanager
def hand_built_consumer(streamer):
    """A PAIR socket bound by hand and ``zmq_worker`` serving ``streamer`` to it; yields the
    socket and, on leaving, stops the worker and checks that it exited cleanly."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PAIR)
    sock.setsockopt(zmq.RCVTIMEO, 20_000)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    done = multiprocessing.Event()
    worker = multiprocessing.Process(target=zmq_stream.zmq_worker, args=(port, streamer, done))
    worker.start()
    try:
        yield sock
    finally:
        done.set()
        worker.join(10)
        sock.close(linger=0)
        ctx.term()
    assert worker.exitcode == 0


def test_module_worker_for_hand_built_consumers():
    with hand_built_consumer(Streamer(counting, 4)) as sock:
        got = []
        while (item := zmq_stream.zmq_recv_data(sock)) is not None:
            got.append(item)
        assert xs(got) == [0, 1, 2, 3]


def test_module_worker_reports_errors():
    with hand_built_consumer(Streamer(failing, 1)) as sock:
        assert xs([zmq_stream.zmq_recv_data(sock)]) == [0]
        with pytest.raises(WorkerError, match="boom"):
            zmq_stream.zmq_recv_data(sock)


@pytest.mark.parametrize("prefetch", [None, 1, 3])
def test_items_of_varying_sizes(prefetch):
    rng = np.random.default_rng(0)
    nbytes = [int(8 * 2 ** rng.integers(0, 20)) for _ in range(200)]
    nbytes[50:60] = [8 << 20, 8, 16 << 20, 8, 64 << 10, 4 << 20, 8, 8, 1 << 20, 8]
    items = list(ZMQStreamer(Streamer(sizes, nbytes), prefetch=prefetch))
    assert [item["x"].nbytes for item in items] == nbytes
    assert all(np.all(item["x"] == i) for i, item in enumerate(items))


def test_growing_items_arrive_whole():
    nbytes = [(64 << 10) * (1 + i // 3) for i in range(40)]
    got = []
    for item in ZMQStreamer(Streamer(sizes, nbytes), prefetch=1):
        got.append(int(item["x"][-1]))
        assert item["x"].nbytes == nbytes[len(got) - 1]
    assert got == list(range(40))


@pytest.mark.parametrize("nbytes", [64, BIG])
def test_copy_protects_a_stream_that_reuses_its_buffer(nbytes):
    zs = ZMQStreamer(Streamer(reusing, 30, nbytes), copy=True, shared_memory=False)
    assert all(np.all(item["x"] == i) for i, item in enumerate(zs))
    zs = ZMQStreamer(Streamer(reusing, 30, nbytes))  # shared memory copies anyway
    assert all(np.all(item["x"] == i) for i, item in enumerate(zs))


@pytest.mark.skipif(not SHM, reason="no /dev/shm here")
def test_held_arrays_stay_valid_when_shared_memory_runs_out(monkeypatch):
    """Items held by the consumer keep their chunks; beyond the limit (4 MiB), items travel
    as frames, and nothing is overwritten."""
    monkeypatch.setattr(_transport, "default_limit", lambda directory, n_workers: 4 << 20)
    items = list(ZMQStreamer(Streamer(counting, 60, BIG // 8), prefetch=2))
    assert xs(items) == list(range(60))
    assert all(np.all(item["x"] == i) for i, item in enumerate(items))
    shared = [in_shared_memory(item["x"]) for item in items]
    assert 0 < sum(shared) <= 4 and not all(shared[4:])
