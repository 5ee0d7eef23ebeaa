"""ZMQStreamer: the pescador 3.0 behaviour, and what it adds: failures re-raised, a bounded
read-ahead, prompt and complete shutdown, exact checkpoints.

Its wire format and shared memory are tested in ``test_zmq_wire``.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from zmq_helpers import (
    BIG,
    LINUX,
    counting,
    endless,
    exiting,
    failing,
    fails_to_start,
    killed,
    no_leftovers,
    open_fds,
    our_dirs,
    plain_callable,
    producing,
    random_draws,
    rng_draws,
    slow_endless,
    stuck,
    wait_for,
    with_pid,
    xs,
)

import pescador
from pescador import PescadorError, StateError, Streamer, WorkerError

zmq = pytest.importorskip("zmq")
from pescador.zmq_stream import ZMQStreamer  # noqa: E402

__all__ = ["no_leftovers"]  # the autouse fixture, imported to apply here


# ------------------------------------------------------------------------- 3.0 behaviour
def test_items_arrive_in_order():
    assert xs(ZMQStreamer(Streamer(counting, 20))) == list(range(20))


def test_each_iteration_is_a_new_process():
    zs = ZMQStreamer(Streamer(with_pid, 3))
    pids = [{int(item["pid"]) for item in zs} for _ in range(3)]
    assert all(len(p) == 1 for p in pids)
    assert len(set.union(*pids)) == 3
    assert os.getpid() not in set.union(*pids)


def test_early_stop():
    zs = ZMQStreamer(Streamer(endless))
    got = []
    for item in zs:
        got.append(int(item["x"][0]))
        if len(got) == 5:
            break
    assert got == list(range(5))
    assert multiprocessing.active_children() == []


def test_max_iter():
    zs = ZMQStreamer(Streamer(endless))
    assert len(list(zs(max_iter=7))) == 7
    assert xs(zs.iterate(max_iter=3)) == [0, 1, 2]
    assert xs(zs.iterate(max_iter=2.5)) == [0, 1, 2]
    assert list(zs.iterate(max_iter=0)) == []


def test_max_iter_never_computes_extra_items():
    counter = multiprocessing.Value("i", 0)
    assert len(list(ZMQStreamer(Streamer(producing, counter)).iterate(max_iter=3))) == 3
    assert counter.value == 3


def test_inside_a_mux():
    mux = pescador.RoundRobinMux(
        [ZMQStreamer(Streamer(counting, 3)), ZMQStreamer(Streamer(counting, 2))]
    )
    assert xs(mux) == [0, 0, 1, 1, 2]
    shuffled = pescador.ShuffledMux(
        [ZMQStreamer(Streamer(endless)), ZMQStreamer(Streamer(endless))], random_state=0
    )
    assert len(list(shuffled.iterate(max_iter=20))) == 20


def test_wrapping_a_mux_matches_the_mux():
    streams = [Streamer(counting, 10 * (i + 1)) for i in range(3)]
    mux = pescador.StochasticMux(streams, n_active=2, rate=4, random_state=3)
    assert xs(ZMQStreamer(mux).iterate(max_iter=40)) == xs(mux.iterate(max_iter=40))


def test_wrapping_buffer_stream():
    batches = Streamer(pescador.buffer_stream, Streamer(counting, 10), 4)
    got = list(ZMQStreamer(batches))
    assert [b["x"].shape for b in got] == [(4, 3), (4, 3)]
    np.testing.assert_array_equal(got[1]["x"][:, 0], [4, 5, 6, 7])


def test_copy_makes_no_difference():
    items = [{"a": np.arange(10) * i, "b": np.ones((3, 4)) * i} for i in range(5)]
    got = [list(ZMQStreamer(Streamer(items), copy=c)) for c in (False, True)]
    for one, other in zip(*got, strict=True):
        assert one.keys() == other.keys()
        for key in one:
            np.testing.assert_array_equal(one[key], other[key])


def test_received_arrays_are_read_only_and_keys_sorted():
    for size in (3, BIG // 8):
        item = next(iter(ZMQStreamer(Streamer([{"b": np.arange(size), "a": np.zeros(2)}]))))
        assert list(item) == ["a", "b"]
        assert not item["b"].flags.writeable and item["b"].flags.aligned
        assert item["b"].flags.c_contiguous


def test_positional_min_port_as_in_the_demo():
    zs = ZMQStreamer(Streamer(counting, 3), 5156)
    assert (zs.min_port, zs.max_port) == (5156, 65535)
    assert xs(zs) == [0, 1, 2]


def test_cycle_starts_a_process_per_pass():
    assert xs(ZMQStreamer(Streamer(counting, 4)).cycle(max_iter=10)) == [0, 1, 2, 3] * 2 + [0, 1]


# ---------------------------------------------------------------------------- failures
def test_worker_exception_is_reraised_with_its_traceback():
    it = ZMQStreamer(Streamer(failing, 3)).iterate()
    assert xs([next(it) for _ in range(3)]) == [0, 1, 2]
    with pytest.raises(WorkerError, match="ValueError: boom in the worker") as info:
        next(it)
    assert "in failing" in info.value.remote_traceback
    assert "boom in the worker" in str(info.value)
    assert isinstance(info.value, PescadorError)
    assert list(it) == []


@pytest.mark.parametrize(
    "source, match", [(killed, "killed by SIGKILL"), (exiting, "exited with code 7")]
)
def test_worker_dying_without_a_word_raises(source, match):
    it = ZMQStreamer(Streamer(source, 2)).iterate()
    with pytest.raises(WorkerError, match=match) as info:
        list(it)
    assert info.value.remote_traceback is None


def test_stream_error_at_start_is_reraised():
    with pytest.raises(WorkerError, match="RuntimeError: cannot start"):
        list(ZMQStreamer(fails_to_start))


# --------------------------------------------------------------------------- read-ahead
@pytest.mark.parametrize("prefetch", [1, 2, 8])
def test_the_worker_runs_at_most_prefetch_items_ahead(prefetch):
    counter = multiprocessing.Value("i", 0)
    it = ZMQStreamer(Streamer(producing, counter), prefetch=prefetch).iterate()
    next(it)
    time.sleep(0.3)
    assert counter.value <= 1 + prefetch
    for _ in range(10):
        next(it)
    time.sleep(0.3)
    assert 11 <= counter.value <= 11 + prefetch
    it.close()


@pytest.mark.parametrize("nbytes, window", [(8, 64), (1 << 20, 16), (4 << 20, 4)])
def test_the_default_window_is_bounded_in_items_and_bytes(nbytes, window):
    counter = multiprocessing.Value("i", 0)
    it = ZMQStreamer(Streamer(producing, counter, nbytes)).iterate()
    for delivered in (1, 2 * window + 3):
        while it.items_delivered < delivered:
            next(it)
        time.sleep(0.3)
        assert delivered <= counter.value <= delivered + window
    it.close()


# ------------------------------------------------------------------------------- closing
@pytest.mark.parametrize("timeout", [5, None])
@pytest.mark.parametrize("shared_memory", [True, False])
def test_closing_a_saturated_stream_stops_the_worker_at_once(timeout, shared_memory):
    """With its read-ahead full, the worker still hears the stop message: it closes the stream
    and exits by itself (a worker terminated after ``timeout`` would not close it; with
    ``timeout=None`` the consumer would wait for ever)."""
    produced, closed = multiprocessing.Value("i", 0), multiprocessing.Value("i", 0)
    stream = Streamer(producing, produced, BIG, closed)
    it = ZMQStreamer(stream, timeout=timeout, shared_memory=shared_memory).iterate()
    next(it)
    assert wait_for(lambda: produced.value >= 16)  # 1 MiB items: a window of 16
    it.close()
    assert closed.value == 1
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("ignore_sigterm", [False, True])
def test_a_stuck_worker_is_terminated_after_timeout(ignore_sigterm):
    """A stream stuck inside an item (for ten minutes) is terminated, or killed if it ignores
    SIGTERM, once ``timeout`` has passed: close() returns (the test's timeout bounds it)."""
    it = ZMQStreamer(Streamer(stuck, ignore_sigterm), timeout=0.3).iterate()
    next(it)
    it.close()
    assert multiprocessing.active_children() == []


def test_garbage_collection_stops_the_worker():
    it = iter(ZMQStreamer(Streamer(endless, BIG)).iterate())
    next(it)
    del it
    assert wait_for(lambda: multiprocessing.active_children() == [])


def test_an_iterator_started_but_never_read_is_cleaned_up():
    it = ZMQStreamer(Streamer(endless)).iterate()
    iter(it)  # starts the worker
    del it
    assert wait_for(lambda: multiprocessing.active_children() == [])


def test_ctrl_c_while_waiting_stops_the_worker():
    it = ZMQStreamer(Streamer(slow_endless)).iterate()
    next(it)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        while True:
            next(it)
    timer.join()
    assert multiprocessing.active_children() == []
    with pytest.raises(StopIteration):
        next(it)


@pytest.mark.skipif(not LINUX, reason="uses fork and /proc")
def test_a_worker_whose_consumer_is_killed_exits_and_cleans_up():
    code = (
        "import os, numpy as np, pescador\n"
        "from pescador.zmq_stream import ZMQStreamer\n"
        "def pids():\n"
        "    while True:\n"
        "        yield {'pid': np.array(os.getpid()), 'pad': np.zeros(1 << 16)}\n"
        "it = ZMQStreamer(pescador.Streamer(pids), start_method='fork').iterate()\n"
        "print(int(next(it)['pid']), os.getpid(), flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == -signal.SIGKILL, out.stderr
    pid, consumer = (int(p) for p in out.stdout.split())

    def gone() -> bool:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] in "ZX"
        except FileNotFoundError:
            return True

    assert wait_for(gone, 10)
    assert wait_for(lambda: our_dirs(consumer) == [], 10)


def test_close_is_idempotent_and_later_next_stops():
    it = ZMQStreamer(Streamer(endless)).iterate()
    next(it)
    it.close()
    it.close()
    with pytest.raises(StopIteration):
        next(it)


@pytest.mark.skipif(not LINUX, reason="counts /proc/self/fd")
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_nothing_outlives_the_iterator(transport):
    list(ZMQStreamer(Streamer(counting, 3), transport=transport))  # warm-up: lazy imports
    fds = open_fds()
    for _ in range(3):
        list(ZMQStreamer(Streamer(counting, 5, BIG // 8), transport=transport))
        it = ZMQStreamer(Streamer(endless, BIG), transport=transport).iterate()
        next(it)
        it.close()
        with pytest.raises(WorkerError):
            list(ZMQStreamer(Streamer(failing, 2), transport=transport))
    assert multiprocessing.active_children() == []
    assert our_dirs() == []
    assert open_fds() <= fds


# ------------------------------------------------------------------------ configuration
def test_binds_loopback_only(monkeypatch):
    addresses = []
    bind = zmq.Socket.bind_to_random_port

    def recording(self, addr, *args, **kwargs):
        addresses.append(addr)
        return bind(self, addr, *args, **kwargs)

    monkeypatch.setattr(zmq.Socket, "bind_to_random_port", recording)
    list(ZMQStreamer(Streamer(counting, 2)))
    assert addresses == ["tcp://127.0.0.1"]


def test_ipc_transport():
    if not zmq.has("ipc"):
        pytest.skip("no ipc transport here")
    assert xs(ZMQStreamer(Streamer(counting, 5), transport="ipc")) == list(range(5))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_tries": 0},
        {"min_port": 6000, "max_port": 5000},
        {"min_port": 6000, "max_port": 6000},
        {"min_port": 0},
        {"max_port": 70000},
        {"max_tries": 2.5},
        {"prefetch": 0},
        {"timeout": -1},
        {"transport": "udp"},
        {"start_method": "teleport"},
        {"snapshot_every": -1},
    ],
)
def test_bad_arguments_fail_at_construction(kwargs):
    with pytest.raises(PescadorError):
        ZMQStreamer(Streamer(counting, 3), **kwargs)


def test_bad_streamers_fail_at_construction():
    with pytest.raises(PescadorError):
        ZMQStreamer(3)

    @pescador.streamable
    def numbers(n):
        yield from counting(n)

    with pytest.raises(PescadorError, match="max_iter"):
        ZMQStreamer(numbers)
    # An iterable is wrapped in a Streamer.
    assert xs(ZMQStreamer([{"x": np.zeros(1)}])) == [0]


class _Evil:
    def __reduce__(self):
        return pytest.fail, ("a stranger's pickle was loaded",)


@pytest.mark.parametrize("stranger", ["raw", "PAIR", "DEALER", "talking DEALER"])
def test_a_local_process_that_connects_first_cannot_take_the_workers_place(monkeypatch, stranger):
    """A stranger connected to the port before the worker, silent or sending messages (a hello
    with a wrong token, an item whose pickle must never be loaded), is ignored."""
    import pickle
    import socket

    from pescador.zmq_stream import _link

    bind = _link._Link._bind_tcp
    strangers = []
    ctx = zmq.Context()

    def bind_then_let_a_stranger_in(self, sock):
        address = bind(self, sock)
        if stranger == "raw":
            strangers.append(socket.create_connection(("127.0.0.1", int(address[16:]))))
            return address
        other = ctx.socket(getattr(zmq, stranger.split()[-1]))
        other.setsockopt(zmq.LINGER, 0)
        other.connect(address)
        strangers.append(other)
        if stranger.startswith("talking"):
            other.send(b"H" + bytes(17))
            other.send(b"D" + pickle.dumps((_Evil(), None)))
        deadline = time.monotonic() + 5  # the stranger's connection is up before the worker's
        while not sock.getsockopt(zmq.EVENTS) & zmq.POLLIN and time.monotonic() < deadline:
            if not stranger.startswith("talking"):
                time.sleep(0.2)
                break
            time.sleep(0.01)
        return address

    monkeypatch.setattr(_link._Link, "_bind_tcp", bind_then_let_a_stranger_in)
    try:
        start = time.monotonic()
        assert xs(ZMQStreamer(Streamer(counting, 5))) == list(range(5))
        assert time.monotonic() - start < 10
    finally:
        for other in strangers:
            other.close()
        ctx.term()


def test_a_port_range_that_cannot_be_bound_raises():
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PAIR)
    try:
        port = sock.bind_to_random_port("tcp://127.0.0.1", 40000, 60000)
        zs = ZMQStreamer(Streamer(counting, 3), min_port=port, max_port=port + 1, max_tries=3)
        it = zs.iterate()
        with pytest.raises(PescadorError, match="could not bind"):
            next(it)
    finally:
        sock.close(linger=0)
        ctx.term()


def test_spawn_start_method():
    items = [{"x": np.full(2, i)} for i in range(6)] + [{"x": np.zeros(BIG // 8)}]
    zs = ZMQStreamer(Streamer(items), start_method="spawn")
    assert xs(zs)[:6] == list(range(6))
    mux = pescador.RoundRobinMux([Streamer(items[:3]), Streamer(items[3:6])])  # unseeded
    got = xs(ZMQStreamer(mux, start_method="spawn").iterate(max_iter=6))
    assert got == [0, 3, 1, 4, 2, 5]


def test_spawn_with_an_unpicklable_stream_says_why():
    def local_generator():
        yield {"x": np.zeros(1)}

    zs = ZMQStreamer(Streamer(local_generator), start_method="spawn")
    with pytest.raises(Exception, match="local") as info:
        next(iter(zs))
    if sys.version_info >= (3, 11):
        assert any("pickled" in note for note in info.value.__notes__)


def test_import_pescador_does_not_import_zmq_and_missing_pyzmq_is_explained():
    code = (
        "import sys, pescador\n"
        "assert 'zmq' not in sys.modules\n"
        "sys.modules['zmq'] = None\n"
        "try:\n"
        "    import pescador.zmq_stream\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install pescador[zmq]" in out.stdout


# ------------------------------------------------------------------ Streamer integration
def test_active_count_and_with_statement():
    zs = ZMQStreamer(Streamer(endless))
    assert zs.active == 0
    it = zs.iterate()
    next(it)
    assert zs.active == 1
    it.close()
    assert zs.active == 0
    with zs as active:
        assert zs.active == 1 and active.is_activated_copy
        assert len(list(active.iterate(max_iter=3))) == 3
    assert zs.active == 0
    assert wait_for(lambda: multiprocessing.active_children() == [])


def test_an_unseeded_wrapped_mux_differs_per_pass_and_follows_numpy_seed():
    mux = pescador.ShuffledMux([Streamer(counting, 100), Streamer(endless)])
    zs = ZMQStreamer(mux)
    first, second = xs(zs.iterate(max_iter=30)), xs(zs.iterate(max_iter=30))
    assert first != second
    np.random.seed(5)
    again = xs(zs.iterate(max_iter=30))
    np.random.seed(5)
    assert xs(zs.iterate(max_iter=30)) == again


def test_workers_np_random_differs_per_pass_and_follows_numpy_seed():
    zs = ZMQStreamer(Streamer(random_draws, 3))
    passes = [np.concatenate([i["x"] for i in zs]) for _ in range(2)]
    assert not np.array_equal(*passes)
    np.random.seed(1)
    one = np.concatenate([i["x"] for i in zs])
    np.random.seed(1)
    np.testing.assert_array_equal(one, np.concatenate([i["x"] for i in zs]))


def test_seeded_parent_mux_seeds_the_worker():
    def tree():
        return pescador.RoundRobinMux([ZMQStreamer(Streamer(rng_draws, 3))], random_state=7)

    one = [i["x"] for i in tree()]
    np.testing.assert_array_equal(one, [i["x"] for i in tree()])


# ---------------------------------------------------------------------------- checkpoints
def run_resumed(zs, cut, total):
    """Items of ``zs`` delivered up to ``cut``, then from a resume of its state, to ``total``."""
    it = zs.iterate(max_iter=total)
    head = [next(it) for _ in range(cut)]
    state = json.loads(json.dumps(it.state_dict()))
    it.close()
    return head, list(zs.iterate(max_iter=total, state=state)), state


@pytest.mark.parametrize("snapshot_every", [0, 0.01, None])
@pytest.mark.parametrize("cut", [0, 1, 17])
def test_resume_continues_exactly(snapshot_every, cut):
    streams = [Streamer(counting, 15 + 5 * i) for i in range(4)]
    mux = pescador.StochasticMux(streams, n_active=2, rate=3, random_state=11)
    zs = ZMQStreamer(mux, snapshot_every=snapshot_every)
    expected = xs(mux.iterate(max_iter=40))
    head, tail, state = run_resumed(zs, cut, 40)
    assert xs(head) + xs(tail) == expected
    assert state["n"] == cut
    if snapshot_every == 0 and cut:
        assert state["base"] == cut  # exact: nothing to replay


def test_state_counts_delivered_items_not_produced_ones():
    counter = multiprocessing.Value("i", 0)
    it = ZMQStreamer(Streamer(producing, counter), snapshot_every=0).iterate()
    next(it)
    assert wait_for(lambda: counter.value > 1)
    state = it.state_dict()
    assert state["n"] == 1 and state["inner"]["n"] == 1
    it.close()


def test_resume_of_a_plain_callable_replays():
    zs = ZMQStreamer(plain_callable)
    head, tail, _ = run_resumed(zs, 4, 10)
    assert xs(head) + xs(tail) == list(range(10))


def test_resume_inside_a_mux():
    def mux():
        return pescador.RoundRobinMux(
            [ZMQStreamer(Streamer(counting, 6)), ZMQStreamer(Streamer(counting, 4))]
        )

    expected = xs(mux())
    it = mux().iterate()
    head = [next(it) for _ in range(5)]
    state = it.state_dict()
    it.close()
    assert xs(head) + xs(mux().iterate(state=state)) == expected


def test_finished_state_and_bad_states():
    zs = ZMQStreamer(Streamer(counting, 3))
    it = zs.iterate()
    assert len(list(it)) == 3
    assert list(zs.iterate(state=it.state_dict())) == []
    with pytest.raises(StateError):
        zs.iterate(state={"pescador_state": 1, "kind": "ZMQStreamer", "n": 2, "base": 5})
    with pytest.raises(StateError):
        zs.iterate(state=Streamer(counting, 3).iterate().state_dict())


# ------------------------------------------------------------------------------ last check
def test_zz_no_child_process_remains():
    gc.collect()
    assert multiprocessing.active_children() == []
    assert our_dirs() == []


def test_an_unknown_start_method_raises():
    with pytest.raises(PescadorError, match="start_method='teleport' is not available"):
        ZMQStreamer(Streamer(counting, 3), start_method="teleport")
