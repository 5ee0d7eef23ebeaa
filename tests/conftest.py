"""Fixtures and helpers shared by the test files.

Fixtures (``probe``, ``global_rng``, and ``nothing_left_after_the_session``, which fails the
run if a worker process or a shared-memory directory outlives the whole suite) are found by
pytest. The plain helpers (generator
functions, stream builders, constants, checks) are imported by name, ``from conftest import
letters, assert_conforms``: pytest puts this folder on ``sys.path`` (its default ``prepend``
import mode; ``tests`` is not a package). The generator functions are defined here, at module
level, so that streamers of them pickle (as ``conftest.letters``), also into the worker
processes of ParallelStreamer and ZMQStreamer under ``spawn``.
"""

from __future__ import annotations

import collections
import itertools
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import pescador
import pescador._state
from pescador import ACTIVATION_RNG, Streamer
from pescador.testing import assert_restartable, assert_resumable, items_equal

REPO = Path(__file__).resolve().parent.parent

MODES = ("with_replacement", "single_active", "exhaustive")
DISTS = ("constant", "binomial", "poisson")
LENGTHS = (5, 0, 9, 3, 20, 1, 7)  # an empty streamer and a one-item streamer included
WEIGHTS = (1, 2, 0, 3, 1, 0.5, 2)  # a zero weight included


# ------------------------------------------------------------------------- leak check
def _descendants() -> dict[int, str]:
    """The live processes descended from this one (Linux), with their command lines; not the
    helpers multiprocessing keeps for the whole session (fork server, resource tracker)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                state, ppid = stat.read().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if state not in "ZX":
            children[int(ppid)].append(int(entry))
    found: dict[int, str] = {}
    todo = list(children[os.getpid()])
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if "multiprocessing.forkserver" not in cmdline and "resource_tracker" not in cmdline:
            found[pid] = cmdline
        todo += children[pid]
    return found


def _leftovers() -> list[str]:
    """Worker processes and pescador directories of this process (or its live descendants)."""
    left = [f"process {p!r}" for p in multiprocessing.active_children()]
    descendants = _descendants()
    left += [f"process {pid}: {cmd}" for pid, cmd in descendants.items()]
    owners = {os.getpid(), *descendants}
    for base in {"/dev/shm", tempfile.gettempdir()}:
        if os.path.isdir(base):
            left += [
                os.path.join(base, name)
                for name in os.listdir(base)
                if name.startswith("pescador-") and name.split("-")[1] in map(str, owners)
            ]
    return left


@pytest.fixture(scope="session", autouse=True)
def nothing_left_after_the_session():
    """After the whole suite: no worker process, no shared-memory directory (a few seconds
    allowed for workers that are still exiting)."""
    yield
    if not sys.platform.startswith("linux"):
        return
    deadline = time.monotonic() + 5
    while (left := _leftovers()) and time.monotonic() < deadline:
        time.sleep(0.05)
    if left:
        pytest.fail("left behind after the test session:\n" + "\n".join(left))


@pytest.fixture(scope="session")
def framework_workers():
    """The worker processes of the Keras and TensorFlow tests, one per Keras backend, started
    on first use (framework_worker.py) and stopped at the end of the session."""
    from framework_worker import Worker

    workers: dict[str, Worker] = {}

    def worker(backend: str) -> Worker:
        return workers.setdefault(backend, Worker(backend))

    yield worker
    for started in workers.values():
        started.close()


# --------------------------------------------------------------------------- sources
def count_up(n):
    """0, 1, ..., n - 1."""
    yield from range(n)


def naturals():
    """0, 1, 2, ... forever."""
    yield from itertools.count()


def nothing():
    """A generator function that yields nothing."""
    return
    yield  # pragma: no cover


def endless(value):
    """``value``, forever."""
    while True:
        yield value


def letters(tag, n):
    """``tag0``, ``tag1``, ..., ``tag{n-1}``."""
    for i in range(n):
        yield f"{tag}{i}"


def draws(tag, n=None, rng=ACTIVATION_RNG):
    """``(tag, i, r)`` for ``i`` in ``0 .. n - 1`` (forever if ``n`` is None), ``r`` drawn from
    the activation's generator: a resume is exact only if it restores that generator's seed."""
    for i in itertools.count() if n is None else range(n):
        yield (tag, i, int(rng.integers(1 << 30)))


def random_ints(n, rng=ACTIVATION_RNG):
    """``n`` integers drawn from the activation's generator."""
    for _ in range(n):
        yield int(rng.integers(2**62))


def data(tag, n):
    """``n`` dicts of arrays, numbered by ``"i"``."""
    for i in range(n):
        yield {"X": np.full(3, i, np.float32), "tag": np.array(tag), "i": i}


def endless_data(tag, rng=ACTIVATION_RNG):
    """Dicts of arrays forever, with a random ``"r"`` from the activation's generator."""
    i = 0
    while True:
        yield {"X": np.full(4, i, np.int64), "tag": tag, "r": int(rng.integers(1000))}
        i += 1


def data_items(n, shape=(4, 5)):
    """A list of ``n`` dicts of an array ``X`` of ``shape`` and a scalar ``Y``."""
    return [{"X": np.full(shape, i, dtype=np.float64), "Y": np.int64(i)} for i in range(n)]


def pulled_generator(items, log):
    """The items, each appended to ``log`` as it is pulled."""
    for item in items:
        log.append(item)
        yield item


def finite_streams():
    """Seven streamers of :data:`LENGTHS` items (one empty), from ``letters``."""
    return [Streamer(letters, c, n) for c, n in zip("abcdefg", LENGTHS, strict=True)]


def data_streams():
    """Seven streamers of :data:`LENGTHS` dicts of arrays (one empty), from ``data``."""
    return [Streamer(data, c, n) for c, n in zip("abcdefg", LENGTHS, strict=True)]


def random_streams(k=7):
    """``k`` endless streamers of ``draws``."""
    return [Streamer(draws, c) for c in "abcdefghijklmnop"[:k]]


# --------------------------------------------------------------------------- user iterators
class Counting:
    """A user's iterator over ``item(0) .. item(n - 1)``, at position ``i``: the base of the
    sources below and in the state tests, which add the state protocol their own way."""

    def __init__(self, n):
        self.n = n
        self.i = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.i >= self.n:
            raise StopIteration
        self.i += 1
        return self.item(self.i - 1)

    def item(self, i):
        return i


class Seekable(Counting):
    """A user iterator with the state protocol: it resumes without replaying anything."""

    produced = 0  # items computed, by every instance (to see that resume is O(1))

    def item(self, i):
        Seekable.produced += 1
        return i

    def state_dict(self):
        return {"i": self.i}

    def load_state_dict(self, state):
        self.i = state["i"]


@pescador.iterator_factory
def seekable(n):
    return Seekable(n)


# --------------------------------------------------------------------------- instrumentation
class Probe:
    """Generator functions that record how they are used: calls, arguments, items pulled and
    ``finally`` blocks run. Activation passes the same object every time (never a copy)."""

    def __init__(self):
        self.calls = 0
        self.pulls = 0
        self.finished = 0
        self.received = []

    def over(self, items):
        """The items of ``items``."""
        self.calls += 1
        try:
            for item in items:
                self.pulls += 1
                yield item
        finally:
            self.finished += 1

    def infinite(self, *args, **kwargs):
        """0, 1, 2, ... forever; the arguments are recorded in ``received``."""
        self.received.append((args, kwargs))
        yield from self.over(itertools.count())

    def finite(self, n):
        """0, 1, ..., n - 1."""
        yield from self.over(range(n))

    def failing(self, n_good):
        """0, 1, ..., n_good - 1, then ``ValueError("boom")``."""
        yield from self.over(range(n_good))
        raise ValueError("boom")


@pytest.fixture
def probe():
    return Probe()


class Tracker:
    """Records the activations of streamers of :func:`tracked` (activation passes the same
    tracker every time, never a copy, so it sees every activation)."""

    def __init__(self) -> None:
        self.starts: list[int] = []  # streamer index of each activation, in start order
        self.running = collections.Counter()  # activations of i started and not finished
        self.max_running = collections.Counter()
        self.produced: list[tuple[int, int]] = []  # (streamer, items) of finished activations

    def count(self, i: int) -> int:
        return self.starts.count(i)


def tracked(i, tracker, n=None, value=None):
    """Yield ``value`` (default ``i``) ``n`` times (forever if ``None``), reporting to tracker."""
    tracker.starts.append(i)
    tracker.running[i] += 1
    tracker.max_running[i] = max(tracker.max_running[i], tracker.running[i])
    k = 0  # items computed (counted before each is handed over)
    try:
        while n is None or k < n:
            k += 1
            yield i if value is None else value
    finally:
        tracker.running[i] -= 1
        tracker.produced.append((i, k))


def tracked_streams(weights_or_n, tracker, n=None):
    count = weights_or_n if isinstance(weights_or_n, int) else len(weights_or_n)
    return [Streamer(tracked, i, tracker, n) for i in range(count)]


@pytest.fixture
def global_rng():
    """Save and restore numpy's global RNG around a test that seeds it."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


# --------------------------------------------------------------------------- iterations
def take(stream, n=60):
    """The first ``n`` items of an iteration of ``stream``."""
    return list(stream.iterate(max_iter=n))


def advance(it, k):
    """``it`` after ``k`` more items."""
    for _ in itertools.islice(it, k):
        pass
    return it


def roundtrip(state):
    """``state`` through JSON text and back, as a checkpoint file holds it."""
    return json.loads(json.dumps(state, allow_nan=False))


def reseal(state):
    """``state`` with its digest recomputed after an edit made on purpose, so that the test
    reaches the check it is about (kind, shape, fields) instead of the digest's."""
    return pescador._state.reseal(state)


def state_at(stream, k, cycle=False):
    """The JSON-round-tripped state of an iteration after ``k`` items."""
    it = (stream.cycle if cycle else stream.iterate)()
    advance(iter(it), k)
    state = roundtrip(it.state_dict())
    it.close()
    return state


def STARTED(n: int) -> range:
    """Checkpoint positions of a started iterator: ``1 .. n``. Position 0 before the first
    ``next`` (an iterator not yet started) is a case of its own, tested in test_checkpoint."""
    return range(1, n + 1)


def assert_conforms(stream, n, positions=None, cycle=False, seeded=True):
    """The :mod:`pescador.testing` checks of ``n`` items of ``stream`` (of ``stream.cycle``).

    :func:`~pescador.testing.assert_resumable` at ``positions`` (default :func:`STARTED`);
    for a ``seeded`` stream (a recipe), also :func:`~pescador.testing.assert_restartable`,
    and the checkpointed iteration must equal the fresh ones (a ``state_dict()`` that
    disturbed its iterator would show). An unseeded stream takes fresh entropy at each
    iteration: only its resumes are checked. Returns the items.
    """
    positions = STARTED(n) if positions is None else positions
    items = assert_resumable(stream, n, positions=positions, cycle=cycle)
    if seeded:
        again = assert_restartable(Streamer(stream, n, True) if cycle else stream, n)
        assert items_equal(items, again), "the checkpointed iteration differs from a fresh one"
    return items
