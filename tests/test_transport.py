"""The shared-memory transport of ParallelStreamer and ZMQStreamer, in one process.

Every item round-trips exactly, by each way it can travel (a chunk of shared memory, frames,
pickled, and the JSON layouts of the 3.0 ZMQ functions); chunks are reused once released and
held ones are never overwritten; the limit and a full ``/dev/shm`` send items another way; the
directory, the processes and the error reports behave as both streamers need.
"""

from __future__ import annotations

import errno
import json
import mmap
import multiprocessing
import os
import signal
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pescador import DataError, PescadorError, WorkerError
from pescador import transport as _transport

DTYPES = st.one_of(
    hnp.scalar_dtypes(),
    hnp.byte_string_dtypes(),
    hnp.unicode_string_dtypes(),
    hnp.nested_dtypes(max_itemsize=64),
)
PLAIN = hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, max_side=5))
# Every memory layout: C, Fortran, transposed, strided, reversed.
ARRAYS = st.one_of(
    PLAIN,
    PLAIN.map(np.asfortranarray),
    PLAIN.map(lambda a: a.T),
    PLAIN.map(lambda a: a[..., ::2] if a.ndim else a),
    PLAIN.map(lambda a: a[::-1] if a.ndim else a),
)
VALUES = st.one_of(ARRAYS, st.integers(), st.text(max_size=5), st.none())
KEYS = st.one_of(st.text(max_size=4), st.integers(-3, 3), st.booleans())
ITEMS = st.one_of(
    st.dictionaries(st.one_of(KEYS, st.tuples(KEYS, KEYS)), VALUES, max_size=4),
    st.lists(VALUES, max_size=4).map(tuple),
    ARRAYS,
    st.integers(),
    st.lists(ARRAYS, max_size=2),
)
# What the 3.0 ZMQ functions send: dicts of arrays with str or int keys.
DATA = st.dictionaries(st.one_of(st.text(max_size=4), st.integers(-3, 3)), ARRAYS, max_size=4)


@pytest.fixture()
def directory():
    path = _transport.make_directory("test-")
    yield path
    _transport.remove_directory(path)
    assert not os.path.exists(path)


@pytest.fixture()
def pipe(directory):
    """An encoder and a decoder joined by a real pipe, as in a worker and the consumer."""
    read_fd, write_fd = os.pipe()
    encoder = _transport.Encoder(_transport.ChunkFiles(directory, 0, 8 << 20))
    decoder = _transport.Decoder(_transport.ChunkMaps(directory, 0))
    inbox = _transport.Inbox(read_fd)

    def send(item):
        _transport.send(write_fd, encoder.pack(item, lambda: None))
        message = inbox.pop()
        while message is None:
            assert inbox.fill()
            message = inbox.pop()
        return decoder.unpack(message)

    def release():
        encoder.chunks.release(decoder.maps.drain())

    yield send, encoder, release
    decoder.close()
    encoder.close()
    os.close(read_fd)
    os.close(write_fd)


def shared(array: np.ndarray) -> bool:
    """Whether ``array`` is a view of a chunk (else it was unpickled, or made from frames)."""
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap)


def same(a, b, exact: bool = False) -> bool:
    """Whether ``b`` is ``a`` received (``exact``: every dtype kept as it was)."""
    if isinstance(a, np.ndarray):
        if not isinstance(b, np.ndarray) or a.shape != b.shape:
            return False
        if a.dtype != b.dtype:
            # What travels pickled follows numpy's pickling, which may make a non-native
            # dtype native (the values are kept); shared memory and frames keep every dtype.
            if exact or shared(b) or a.dtype.newbyteorder("=") != b.dtype:
                return False
            a = a.astype(b.dtype)
        return a.tobytes() == b.tobytes()  # the values, in C order whatever the layouts
    if isinstance(a, (tuple, list)):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(same(x, y, exact) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and list(a) == list(b)
            and [type(k) for k in a] == [type(k) for k in b]
            and all(same(a[k], b[k], exact) for k in a)
        )
    return type(a) is type(b) and a == b


# One pipe for all examples, on purpose: layouts and chunks carry over from one to the next.
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=st.lists(ITEMS, min_size=1, max_size=6))
def test_every_item_round_trips_exactly_through_shared_memory(pipe, items):
    send, _, release = pipe
    release()  # the previous example's items are gone (refcounting)
    received = [send(item) for item in items]  # all held at once: no chunk is shared
    for item, got in zip(items, received, strict=True):
        assert same(item, got)


@settings(max_examples=100, deadline=None)
@given(items=st.lists(ITEMS.filter(lambda i: type(i) in (dict, tuple, np.ndarray)), max_size=4))
def test_every_item_round_trips_exactly_as_frames(items):
    encoder, decoder = _transport.Encoder(), _transport.Decoder(writable=False)
    for item in items:
        body, frames = encoder.frames(*encoder.split(item))
        got = decoder.unpack(body, [bytes(f) for f in frames])  # received elsewhere
        assert same(item, got, exact=True)
        arrays = got.values() if type(got) is dict else got if type(got) is tuple else [got]
        for value in arrays:
            if isinstance(value, np.ndarray) and not value.dtype.hasobject:
                assert not value.flags.writeable


@settings(max_examples=100, deadline=None)
@given(data=DATA)
def test_every_dict_of_arrays_round_trips_through_a_json_layout(data):
    layout, arrays, values = _transport.Encoder().split(data)
    assert values == []
    text = _transport.layout_json(layout)
    plan = _transport.layout_from_json(json.dumps(json.loads(text)).encode())
    frames = [
        bytes(_transport.as_frame(a, e[3])) for a, e in zip(arrays, plan.arrays, strict=True)
    ]
    got = plan.from_frames(frames, [], False)
    assert same(data, got, exact=True)
    assert not any(value.flags.writeable for value in got.values())


def test_memory_orders_travel_as_they_are(pipe):
    send, _, _ = pipe
    base = np.arange(60, dtype=np.float64).reshape(6, 10)
    item = {"t": base.T, "s": base[::2, ::3], "f": np.asfortranarray(base), "c": base}
    got = send(item)
    for key, value in item.items():
        np.testing.assert_array_equal(got[key], value)
        assert got[key].flags.writeable
    assert got["f"].flags.f_contiguous and not got["f"].flags.c_contiguous
    assert got["t"].flags.f_contiguous  # a transpose is Fortran-ordered
    assert got["s"].flags.c_contiguous and got["c"].flags.c_contiguous


def test_released_chunks_are_reused_and_held_ones_are_not(pipe):
    send, encoder, release = pipe
    held = send({"x": np.full(100, 1.0)})
    for j in range(50):
        got = send({"x": np.full(100, float(j))})
        assert got["x"][0] == j
        del got  # its chunk is queued at once (refcounting, no cycle)
        release()
    assert np.all(held["x"] == 1.0)  # its chunk was never handed out again
    assert len(encoder.chunks.maps) == 1  # a chunk or two, reused, in one file


def test_small_items_share_a_file_and_large_ones_have_their_own(pipe):
    send, encoder, _ = pipe
    held = [send(np.full(10, j)) for j in range(100)]
    assert len(encoder.chunks.maps) == 1
    held.append(send(np.zeros(3 << 20, np.uint8)))  # a chunk of 4 MiB: a file of its own
    assert len(encoder.chunks.maps) == 2
    assert [int(a[0]) for a in held[:100]] == list(range(100))


def test_items_beyond_the_limit_are_pickled(pipe):
    send, encoder, _ = pipe
    encoder.chunks.limit = 0
    got = send({"x": np.arange(5)})
    np.testing.assert_array_equal(got["x"], np.arange(5))
    assert not shared(got["x"])  # unpickled
    assert not encoder.chunks.maps


def test_a_full_dev_shm_sends_items_another_way(pipe, monkeypatch):
    send, encoder, _ = pipe
    calls = []

    def full(fd, offset, length):
        calls.append(length)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    for j in range(3):
        got = send({"x": np.full(5, j)})
        assert int(got["x"][0]) == j and not shared(got["x"])
    split = encoder.split({"x": np.arange(4)})
    assert encoder.place(*split, lambda: None) is None
    assert len(calls) == 1  # refused once: not tried again for every item
    assert os.listdir(encoder.chunks.directory) == ["owner"]  # the refused file is gone


def test_a_layout_first_met_without_room_is_announced_when_there_is_room(pipe):
    send, encoder, _ = pipe
    limit, encoder.chunks.limit = encoder.chunks.limit, 0
    assert not shared(send({"a": np.arange(3)})["a"])  # pickled: the layout is not sent
    encoder.chunks.limit = limit
    for item in ({"b": np.ones(2)}, {"a": np.arange(3)}, {"b": np.ones(2)}):
        got = send(item)
        ((key, value),) = got.items()
        assert list(item) == [key] and shared(value)
        np.testing.assert_array_equal(value, item[key])


def test_tuples_and_bare_arrays_travel_in_shared_memory(pipe):
    send, encoder, _ = pipe
    x, y = np.arange(12.0).reshape(3, 4), np.arange(3)
    pair = send((x, "label", y))
    bare = send(x)
    assert type(pair) is tuple and pair[1] == "label"
    for got, want in ((pair[0], x), (pair[2], y), (bare, x)):
        np.testing.assert_array_equal(got, want)
        assert shared(got)
    assert len(encoder.chunks.maps) == 1


def test_items_without_array_bytes_are_pickled(pipe):
    send, encoder, _ = pipe
    for item in ({}, {"e": np.zeros((0, 3))}, ("a", 1), "text", np.array([None], object)):
        assert same(item, send(item))
    assert not encoder.chunks.maps


def test_shapes_that_keep_changing_carry_their_layout(pipe):
    send, encoder, release = pipe
    for n in range(_transport.MAX_LAYOUTS + 20):
        got = send({"x": np.arange(n + 1)})
        np.testing.assert_array_equal(got["x"], np.arange(n + 1))
        del got
        release()
    assert len(encoder.layouts) == _transport.MAX_LAYOUTS


def test_read_only_mappings_give_read_only_arrays(directory):
    encoder = _transport.Encoder(_transport.ChunkFiles(directory, 3, 1 << 20))
    decoder = _transport.Decoder(_transport.ChunkMaps(directory, 3, writable=False), False)
    body = encoder.pack({"x": np.arange(4.0)}, lambda: None)
    assert body[0] == "s"
    got = decoder.unpack(body)
    np.testing.assert_array_equal(got["x"], np.arange(4.0))
    with pytest.raises(ValueError):
        got["x"].flags.writeable = True
    del got
    assert decoder.maps.drain() == [(body[5], body[6])]
    decoder.close()
    encoder.close()


@pytest.mark.parametrize(
    "text",
    [
        b"not json",
        b'["set", ["x"]]',
        b'["dict", ["x", "<f8", [-1], "C", 0]]',
        b'["dict", ["x", "<f8", [2], "Z", 0]]',
        b'["dict", ["x", "|O", [2], "C", 0]]',
        b'["dict", ["x", "<f8"]]',
    ],
)
def test_malformed_json_layouts_are_refused(text):
    with pytest.raises(PescadorError):
        _transport.layout_from_json(text)


def test_frames_must_match_the_layout():
    layout, _, _ = _transport.Encoder().split({"a": np.arange(3), "b": np.ones(2)})
    plan = _transport.layout_from_json(_transport.layout_json(layout))
    with pytest.raises(PescadorError, match="1 frames for 2 arrays"):
        plan.from_frames([b"x" * 24], [], False)


# ------------------------------------------------------------------ directory, processes
def test_the_directory_is_private_and_named_after_the_consumer(directory):
    name = os.path.basename(directory)
    assert name.startswith(f"pescador-{os.getpid()}-test-")
    assert os.stat(directory).st_mode & 0o777 == 0o700
    if _transport.shm_available():
        assert os.path.dirname(directory) == "/dev/shm"
    open(os.path.join(directory, "w0-0"), "wb").close()
    _transport.remove_directory(directory)
    assert not os.path.exists(directory)
    _transport.remove_directory(directory)  # again: nothing to do


def _make_and_report(conn, stay: bool) -> None:
    conn.send(_transport.make_directory("test-"))
    if stay:
        time.sleep(60)
    os._exit(0)  # without removing it


@pytest.mark.skipif(not _transport.shm_available(), reason="needs /dev/shm")
def test_directories_whose_owner_is_gone_are_reclaimed():
    """The owner's lock decides, not its pid: a live owner keeps its directory."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    dead = context.Process(target=_make_and_report, args=(send, False))
    alive = context.Process(target=_make_and_report, args=(send, True), daemon=True)
    alive.start()
    alive_dir = receive.recv()
    dead.start()
    dead_dir = receive.recv()
    dead.join()
    try:
        assert os.listdir(dead_dir) == ["owner"]
        removed = _transport.reclaim("/dev/shm")
        assert dead_dir in removed and not os.path.exists(dead_dir)
        assert alive_dir not in removed and os.path.isdir(alive_dir)
    finally:
        alive.kill()
        alive.join()
        _transport.remove_directory(alive_dir)
        _transport.remove_directory(dead_dir)


@pytest.mark.skipif(not _transport.shm_available(), reason="needs /dev/shm")
def test_directories_without_an_owner_file_are_reclaimed_when_old_and_ownerless():
    """A directory from an older pescador (no lock): its pid decides, once it is a minute old
    (a directory being made has no lock for a moment)."""
    context = multiprocessing.get_context("fork")
    process = context.Process(target=os._exit, args=(0,))
    process.start()
    process.join()  # a pid that is gone
    old, young = (f"/dev/shm/pescador-{process.pid}-{tag}" for tag in ("old", "young"))
    for path in (old, young):
        os.mkdir(path, 0o700)
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    try:
        removed = _transport.reclaim("/dev/shm")
        assert old in removed and young not in removed and os.path.isdir(young)
    finally:
        _transport.remove_directory(old)
        _transport.remove_directory(young)


def _sleep(ignore_sigterm: bool) -> None:
    if ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(60)


@pytest.mark.parametrize("ignore_sigterm", [False, True])
def test_stop_processes_terminates_then_kills(ignore_sigterm):
    context = multiprocessing.get_context("fork")
    process = context.Process(target=_sleep, args=(ignore_sigterm,), daemon=True)
    process.start()
    _transport.stop_processes([process], 0.05, grace=2.0)
    wanted = signal.SIGKILL if ignore_sigterm else signal.SIGTERM
    with pytest.raises(ValueError):  # closed
        process.is_alive()
    assert _transport.death_message("worker 1", -wanted) == (
        f"worker 1 died without a word (killed by {signal.Signals(wanted).name})"
    )
    assert multiprocessing.active_children() == []


def test_death_messages():
    assert _transport.death_message("w", 7) == "w died without a word (exited with code 7)"
    assert _transport.death_message("w", -99).endswith("(killed by signal 99)")
    assert _transport.death_message("w", 143).endswith("(terminated by SIGTERM, exit code 143)")


# ------------------------------------------------------------------------ error reports
class _Unprintable(Exception):
    def __str__(self):
        raise RuntimeError


@pytest.mark.parametrize(
    "exc, name, cls",
    [
        (ValueError("boom"), "ValueError: boom", WorkerError),
        (DataError("bad item"), "pescador.exceptions.DataError: bad item", DataError),
        (_Unprintable(), "_Unprintable: <unprintable>", WorkerError),
    ],
)
def test_error_reports_round_trip_through_json(exc, name, cls):
    class DataWorkerError(WorkerError, DataError):
        pass

    try:
        raise exc
    except Exception as caught:
        report = json.loads(json.dumps(_transport.error_report(caught)))
    error = _transport.worker_error(report, "worker 2", DataWorkerError)
    assert isinstance(error, cls) and isinstance(error, WorkerError)
    assert error.message.startswith("worker 2 failed: ") and error.message.endswith(name)
    assert "raise exc" in error.remote_traceback


def test_an_unreadable_error_report_is_still_an_error():
    error = _transport.worker_error({"message": "no type"}, "the worker")
    assert type(error) is WorkerError and "unreadable" in str(error)


# ------------------------------------------------------------------------------ Pool
def test_a_pool_hands_out_chunks_that_come_back_when_released():
    """A producer whose consumer sends nothing back (a DataLoader worker): the consumer clears
    a chunk's byte when no array views it, and the producer takes it back first."""
    pool = _transport.Pool("test-", 1 << 20)
    maps = _transport.PoolMaps()
    try:
        taken = pool.take(1 << 18)  # four such chunks in the first file
        assert taken is not None and pool.held is not None
        pool.buffer(taken[0], taken[1], 8)[:] = np.arange(8, dtype=np.uint8)
        base = maps.base(pool.directory, *taken, 8)
        view = base[2:4]
        del base
        assert pool.held[taken[2]] == 1  # a view still holds it
        np.testing.assert_array_equal(view, [2, 3])
        del view
        assert pool.held[taken[2]] == 0
        assert pool.take(1 << 18) == taken  # the one released last, still in the caches
        others = [pool.take(1 << 18) for _ in range(3)]
        assert taken not in others and None not in others  # then the file's other chunks
        assert pool.take(1 << 18) is None  # the limit: one file of 1 MiB, all held
    finally:
        maps.remove_all()
        assert not os.path.exists(pool.directory)


def _pool_and_report(send, how: str) -> None:
    pool = _transport.pool("test-", 1 << 20)
    assert pool.take(100) is not None
    send.send(pool.directory)
    if how == "killed":
        os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.skipif(not _transport.shm_available(), reason="needs /dev/shm")
def test_a_pool_directory_goes_with_its_process():
    """Removed when the process exits; reclaimed by the next directory made on the machine
    when it is killed."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    for how in ("exits", "killed"):
        process = context.Process(target=_pool_and_report, args=(send, how))
        process.start()
        directory = receive.recv()
        process.join(10)
        assert process.exitcode == (0 if how == "exits" else -signal.SIGKILL)
        try:
            if how == "killed":
                assert os.path.isdir(directory)
                assert directory in _transport.reclaim("/dev/shm")
            assert not os.path.exists(directory)
        finally:
            _transport.remove_directory(directory)


def test_a_pool_without_room_answers_none(monkeypatch):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    pool = _transport.Pool("test-", 1 << 20)
    try:
        assert pool.held is None and pool.take(100) is None
    finally:
        _transport.remove_directory(pool.directory)
