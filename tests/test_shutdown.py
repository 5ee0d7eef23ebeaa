"""What stops the worker processes of ParallelStreamer and ZMQStreamer and removes their
shared memory: an iterator left early (``break``, ``del``, an exception, Ctrl-C), by reference
counting alone (the cyclic garbage collector is off in these tests)."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import threading
import time

import numpy as np
import pytest

from pescador import ParallelStreamer, PescadorError, Streamer, WorkerError

zmq_stream = pytest.importorskip("pescador.zmq_stream")


def endless():
    j = 0
    while True:
        yield {"x": np.full(1 << 14, j, np.int64)}  # 128 KiB: shared memory in both
        j += 1


def slow():
    while True:
        time.sleep(0.05)
        yield {"x": np.zeros(1 << 14)}


def pids():
    while True:
        time.sleep(0.01)
        yield {"pid": np.array(os.getpid())}


def stuck_after(n):
    for _ in range(n):
        yield {"pid": np.array(os.getpid())}
    time.sleep(600)
    yield {"pid": np.array(os.getpid())}  # pragma: no cover


def every(seconds, n):
    for _ in range(n):
        time.sleep(seconds)
        yield {"pid": np.array(os.getpid())}


def echo(arg):
    yield {"x": np.zeros(1)}


def _refuse():
    raise RuntimeError("not here")


class Unloadable:
    """Pickles; cannot be unpickled."""

    def __reduce__(self):
        return _refuse, ()


def our_dirs() -> list[str]:
    """This process's private directories (in /dev/shm or the temporary directory)."""
    import tempfile

    prefix = f"pescador-{os.getpid()}-"
    found = []
    for base in {"/dev/shm", tempfile.gettempdir()}:
        if os.path.isdir(base):
            found += [name for name in os.listdir(base) if name.startswith(prefix)]
    return found


def streamer(kind: str, source, *args, **options) -> Streamer:
    if kind == "parallel":
        return ParallelStreamer(Streamer(source, *args), 2, prefetch=4, **options)
    return zmq_stream.ZMQStreamer(Streamer(source, *args), timeout=0.5, **options)


KINDS = ["parallel", "zmq"]


@pytest.fixture(autouse=True)
def no_cycle_collector():
    """The cyclic garbage collector is off: only reference counting frees the iterators."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
    assert multiprocessing.active_children() == []
    assert our_dirs() == []


def assert_all_stopped():
    """Nothing is left at once: no process, no directory (no gc.collect() before)."""
    assert multiprocessing.active_children() == []
    assert our_dirs() == []


def _leave_by_break(stream):
    for i, _ in enumerate(stream):
        if i == 3:
            break


def _leave_by_del(stream):
    it = stream.iterate()
    next(it)
    next(it)
    del it


def _leave_by_exception(stream):
    it = stream.iterate()
    for _ in it:
        raise ValueError("in the loop body")


def _leave_by_keyboard_interrupt(stream):
    it = stream.iterate()
    for _ in it:
        raise KeyboardInterrupt


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("leave", ["break", "del"])
def test_leaving_early_stops_everything_at_once(kind, leave):
    stream = streamer(kind, endless)
    for _ in range(3):  # three epochs: nothing accumulates
        {"break": _leave_by_break, "del": _leave_by_del}[leave](stream)
        assert_all_stopped()


@pytest.mark.parametrize("kind", KINDS)
def test_an_exception_in_the_loop_body_stops_everything(kind):
    with contextlib.suppress(ValueError):
        _leave_by_exception(streamer(kind, endless))
    assert_all_stopped()


@pytest.mark.parametrize("kind", KINDS)
def test_a_caught_keyboard_interrupt_in_the_loop_body_stops_everything(kind):
    with contextlib.suppress(KeyboardInterrupt):
        _leave_by_keyboard_interrupt(streamer(kind, endless))
    assert_all_stopped()


@pytest.mark.parametrize("kind", KINDS)
def test_ctrl_c_while_waiting_for_an_item_stops_everything(kind):
    it = streamer(kind, slow).iterate()
    next(it)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        while True:
            next(it)
    except KeyboardInterrupt:
        pass
    timer.join()
    assert_all_stopped()
    with pytest.raises(StopIteration):
        next(it)


@pytest.mark.parametrize("kind", KINDS)
def test_an_iterator_held_elsewhere_keeps_its_workers(kind):
    """Only the last reference matters: the loop's own iterator keeps the workers alive after
    the iterator object is gone."""
    fast = iter(streamer(kind, endless).iterate())
    next(fast)
    assert multiprocessing.active_children()
    for _ in range(5):
        next(fast)
    del fast
    assert_all_stopped()


@pytest.mark.parametrize("kind", KINDS)
def test_a_worker_terminated_from_outside_is_an_error(kind):
    """SIGTERM to a worker whose consumer lives: it exits (after waiting a second for its
    consumer to die too, as in a process group's termination), and the consumer says so."""
    it = streamer(kind, pids).iterate()
    os.kill(int(next(it)["pid"]), signal.SIGTERM)
    with pytest.raises(WorkerError, match="terminated by SIGTERM"):
        for _ in it:
            pass
    assert_all_stopped()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_stream_that_cannot_be_pickled_raises_the_pickling_error(kind, method):
    with pytest.raises(TypeError, match="pickle") as info:
        next(iter(streamer(kind, echo, threading.Lock(), start_method=method)))
    assert any("pickled" in note for note in getattr(info.value, "__notes__", []))
    del info
    assert_all_stopped()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_stream_that_cannot_be_unpickled_is_a_worker_error(kind, method):
    with pytest.raises(WorkerError, match="cannot unpickle its stream: RuntimeError: not here"):
        next(iter(streamer(kind, echo, Unloadable(), start_method=method)))
    assert_all_stopped()


# --------------------------------------------------------------------------- stalls
@pytest.mark.parametrize("kind", KINDS)
def test_a_stuck_stream_is_an_error_after_stall_timeout(kind):
    it = streamer(kind, stuck_after, 3, stall_timeout=0.5).iterate()
    start = time.monotonic()
    with pytest.raises(WorkerError, match=r"sent nothing for \d+\.\d s \(stall_timeout=0\.5\)"):
        for _ in it:
            pass
    assert time.monotonic() - start < 5
    assert_all_stopped()


@pytest.mark.parametrize("kind", KINDS)
def test_a_stopped_worker_is_an_error_after_stall_timeout(kind):
    """SIGSTOP: the worker neither works nor dies (as when it swaps, or is debugged)."""
    it = streamer(kind, pids, stall_timeout=0.5).iterate()
    workers = {int(next(it)["pid"]) for _ in range(30)}
    try:
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        with pytest.raises(WorkerError, match=r"stall_timeout=0\.5"):
            for _ in it:
                pass
        assert_all_stopped()
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize("kind", KINDS)
def test_a_slow_but_steady_worker_is_no_stall(kind):
    """The wait is for each next message: 2 s in all, 0.25 s at a time, is no stall."""
    got = list(streamer(kind, every, 0.25, 8, stall_timeout=1.0))
    assert len(got) == {"parallel": 16, "zmq": 8}[kind]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value", [0, -1.0, "5", True, float("nan")])
def test_stall_timeout_must_be_none_or_positive(kind, value):
    with pytest.raises(PescadorError, match="stall_timeout"):
        streamer(kind, pids, stall_timeout=value)
