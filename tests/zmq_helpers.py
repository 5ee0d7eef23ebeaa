"""Sources and checks shared by the ZMQStreamer tests (``test_zmq_stream``, ``test_zmq_wire``).

Generator functions are module-level so that the ``spawn`` tests can pickle them.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import sys
import tempfile
import time

import numpy as np
import pytest

import pescador

LINUX = sys.platform.startswith("linux")
BIG = 1 << 20  # bytes: items this large travel through shared memory (where available)


# ------------------------------------------------------------------------------ sources
def counting(n: int, size: int = 3):
    for i in range(n):
        yield {"x": np.full(size, i, np.int64)}


def endless(nbytes: int = 40):
    i = 0
    while True:
        yield {"x": np.full(nbytes // 8, i, np.int64)}
        i += 1


def with_pid(n: int):
    for _ in range(n):
        yield {"pid": np.array(os.getpid())}


def failing(n: int):
    yield from counting(n)
    raise ValueError("boom in the worker")


def killed(n: int):
    yield from counting(n)
    os.kill(os.getpid(), signal.SIGKILL)
    yield {"x": np.zeros(1)}  # pragma: no cover


def exiting(n: int):
    yield from counting(n)
    os._exit(7)
    yield {"x": np.zeros(1)}  # pragma: no cover


def yields(*items):
    yield from items


def producing(counter, nbytes: int = 8, closed=None):
    """Counts in ``counter`` the items it produces; sets ``closed`` if it is closed (a worker
    that is terminated or killed never closes its stream)."""
    try:
        while True:
            with counter.get_lock():
                counter.value += 1
            yield {"x": np.zeros(nbytes // 8, np.int64)}
    finally:
        if closed is not None:
            closed.value = 1


def stuck(ignore_sigterm: bool = False):
    if ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    yield {"x": np.zeros(1)}
    time.sleep(600)
    yield {"x": np.zeros(1)}  # pragma: no cover


def random_draws(n: int):
    for _ in range(n):
        yield {"x": np.random.random_sample(2)}


def rng_draws(n: int, rng=pescador.ACTIVATION_RNG):
    for _ in range(n):
        yield {"x": rng.random(2)}


def sizes(sizes_in_bytes):
    for i, nbytes in enumerate(sizes_in_bytes):
        yield {"x": np.full(nbytes // 8, i, np.int64)}


def reusing(n: int, nbytes: int):
    buffer = np.zeros(nbytes // 8, np.int64)
    for i in range(n):
        buffer[:] = i  # the same array, overwritten after each yield
        yield {"x": buffer}


def slow_endless():
    while True:
        time.sleep(0.05)
        yield {"x": np.zeros(1)}


def fails_to_start(max_iter=None):
    raise RuntimeError("cannot start")


def plain_callable(max_iter=None):
    yield from counting(max_iter or 10)


# ------------------------------------------------------------------------------ helpers
def xs(items) -> list[int]:
    return [int(item["x"].flat[0]) for item in items]


def our_dirs(pid: int | None = None) -> list[str]:
    """The private directories of the ZMQStreamers consumed by process ``pid`` (this one by
    default: other test runs on the machine have their own)."""
    prefix = f"pescador-{os.getpid() if pid is None else pid}-zmq-"
    found = []
    for base in {tempfile.gettempdir(), "/dev/shm"}:
        if os.path.isdir(base):
            found += [os.path.join(base, d) for d in os.listdir(base) if d.startswith(prefix)]
    return found


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture(autouse=True)
def no_leftovers():
    """Every test leaves no worker process and no private directory behind."""
    before = set(our_dirs())
    yield
    gc.collect()
    assert multiprocessing.active_children() == []
    assert set(our_dirs()) <= before


@contextlib.contextmanager
def inproc_pair(name: str):
    """Two connected ZeroMQ PAIR sockets over ``inproc://name`` (sender, receiver), closed and
    their context ended on leaving."""
    import zmq

    ctx = zmq.Context()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    try:
        a.bind(f"inproc://{name}")
        b.connect(f"inproc://{name}")
        yield a, b
    finally:
        a.close(linger=0)
        b.close(linger=0)
        ctx.term()
