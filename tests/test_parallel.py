"""ParallelStreamer: splitting, merging, shared memory, exact resume, failures, cleanup."""

from __future__ import annotations

import gc
import itertools
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import pescador
from pescador import ParallelStreamer, Streamer

SHM = "/dev/shm"


def labelled(tag: str, n: int):
    for j in range(n):
        yield {"X": np.full((2, 3), j, np.float32), "tag": tag, "j": j}


def endless(tag: str):
    j = 0
    while True:
        yield {"X": np.full(4, j, np.int64), "tag": tag, "j": j}
        j += 1


def failing(n: int):
    yield from ({"x": np.arange(3)} for _ in range(n))
    raise ValueError("boom in the worker")


def dying(n: int):
    yield from ({"x": np.arange(3)} for _ in range(n))
    os.kill(os.getpid(), signal.SIGKILL)
    yield {"x": np.arange(3)}  # pragma: no cover


def whoami():
    info = pescador.worker_info()
    yield {"index": info.index, "n": info.n_workers}


def slow_endless(closed=None):
    """Items of 1 MiB every 10 ms; counts in ``closed`` the times it is closed (a worker that
    is terminated never closes its stream)."""
    try:
        while True:
            time.sleep(0.01)
            yield {"x": np.zeros(1 << 20, np.uint8)}
    finally:
        if closed is not None:
            with closed.get_lock():
                closed.value += 1


def keys(items):
    return [(item["tag"], item["j"]) for item in items]


def our_segments(pid: int | None = None) -> list[str]:
    """The shared-memory directories of ParallelStreamers consumed by process ``pid`` (this
    one by default; other test runs on the machine have their own)."""
    if not os.path.isdir(SHM):
        return []
    prefix = f"pescador-{os.getpid() if pid is None else pid}-"
    return [name for name in os.listdir(SHM) if name.startswith(prefix)]


@pytest.fixture(autouse=True)
def no_leaks():
    """After each test: no worker process and no shared-memory file is left."""
    before = set(our_segments())
    yield
    gc.collect()
    deadline = time.monotonic() + 2
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert multiprocessing.active_children() == []
    assert set(our_segments()) <= before


def finite_streams(n=6, length=20):
    return [Streamer(labelled, chr(ord("a") + i), length + i) for i in range(n)]


@pytest.mark.parametrize("mux_kind", ["chain", "roundrobin", "exhaustive"])
@pytest.mark.parametrize("n_workers", [1, 2, 3])
def test_split_mux_yields_every_item_exactly_once(mux_kind, n_workers):
    streams = finite_streams()
    if mux_kind == "chain":
        mux = pescador.ChainMux(streams)
    elif mux_kind == "roundrobin":
        mux = pescador.RoundRobinMux(streams)
    else:
        mux = pescador.StochasticMux(streams, 2, None, mode="exhaustive", random_state=1)
    expected = sorted(keys(mux.iterate()))
    got = keys(ParallelStreamer(mux, n_workers).iterate())
    assert sorted(got) == expected  # nothing lost, nothing duplicated


def test_each_source_keeps_its_order():
    mux = pescador.ChainMux(finite_streams())
    got = keys(ParallelStreamer(mux, 3).iterate())
    for tag in "abcdef":
        js = [j for t, j in got if t == tag]
        assert js == sorted(js)


def test_output_is_deterministic_for_a_seed_and_worker_count():
    mux = pescador.StochasticMux([Streamer(endless, t) for t in "abcdefgh"], 4, 8, random_state=7)
    stream = ParallelStreamer(mux, 2)
    first = keys(stream.iterate(max_iter=200))
    assert first == keys(stream.iterate(max_iter=200))


def test_shares_follow_the_weights():
    """Share of items from the first four of eight streamers, weights 3:1.

    The share is a mean of 4000 draws (items), each from a heavy streamer with probability
    0.75 (weights sum: 4*3 + 4*1 = 16, heavy total 12): the merge draws workers by their
    shares' weights and each worker's mux draws by weight. Activations make items correlated
    in runs of about ``rate`` = 4, so the effective count is about 4000 / 4 = 1000; Hoeffding
    with n = 1000 and t = 0.08 gives a false-failure probability 2 exp(-2 n t^2) < 6e-6.
    """
    weights = [3, 3, 3, 3, 1, 1, 1, 1]
    streams = [Streamer(endless, t) for t in "abcdefgh"]
    mux = pescador.StochasticMux(streams, 4, 4, weights=weights, random_state=11)
    got = keys(ParallelStreamer(mux, 2).iterate(max_iter=4000))
    heavy = sum(1 for tag, _ in got if tag in "abcd") / len(got)
    assert abs(heavy - 0.75) < 0.08


@pytest.mark.parametrize("ordered", [True, False])
def test_resume_is_exact(ordered):
    streams = finite_streams(5, 30)
    mux = pescador.ChainMux(streams)
    stream = ParallelStreamer(mux, 2, ordered=ordered, prefetch=3, random_state=0)
    full = keys(stream.iterate())
    for k in (0, 1, 17, 60, len(full) - 1, len(full)):
        it = stream.iterate()
        head = keys(itertools.islice(it, k))
        state = json.loads(json.dumps(it.state_dict()))
        it.close()
        rest = keys(stream.iterate(state=state))
        if ordered:
            assert head + rest == full
        else:
            assert sorted(head + rest) == sorted(full)  # nothing lost or repeated


def test_resume_of_an_infinite_stochastic_mux_with_max_iter():
    mux = pescador.StochasticMux([Streamer(endless, t) for t in "abcdef"], 3, 5, random_state=2)
    stream = ParallelStreamer(mux, 2, snapshot_every=0.0)
    full = keys(stream.iterate(max_iter=150))
    it = stream.iterate(max_iter=150)
    head = keys(itertools.islice(it, 77))
    state = it.state_dict()
    it.close()
    assert head + keys(stream.iterate(max_iter=150, state=state)) == full


def test_state_from_another_worker_count_is_rejected():
    mux = pescador.ChainMux(finite_streams())
    it = ParallelStreamer(mux, 2).iterate()
    next(it)
    state = it.state_dict()
    it.close()
    with pytest.raises(pescador.StateError, match="n_workers"):
        ParallelStreamer(mux, 3).iterate(state=state)


def test_arrays_round_trip_exactly_and_are_writable():
    f_order = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    strided = np.arange(20, dtype=np.int16)[::3]
    big_endian = np.arange(5, dtype=">i4")
    item = {
        "f": f_order,
        "s": strided,
        "b": big_endian,
        "empty": np.zeros((0, 3)),
        "scalar": np.float32(2.5),
        "text": "hello",
        "obj": np.array([{"a": 1}], dtype=object),
    }
    got = list(ParallelStreamer(Streamer([item, {}]), 1).iterate())
    assert len(got) == 2 and got[1] == {}
    out = got[0]
    assert list(out) == list(item)
    for key in ("f", "s", "b", "empty"):
        np.testing.assert_array_equal(out[key], item[key])
        assert out[key].dtype == item[key].dtype
    assert out["f"].flags.writeable
    out["f"][0, 0] = -1.0  # the consumer owns the slot
    assert out["scalar"] == np.float32(2.5) and out["text"] == "hello"
    assert out["obj"][0] == {"a": 1}


def test_plain_streamers_learn_their_worker():
    got = sorted((d["index"], d["n"]) for d in ParallelStreamer(Streamer(whoami), 3).iterate())
    assert got == [(0, 3), (1, 3), (2, 3)]
    assert pescador.worker_info() is None


def test_worker_exception_is_reraised_with_the_remote_traceback():
    stream = ParallelStreamer(Streamer(failing, 3), 1)
    with pytest.raises(pescador.WorkerError) as info:
        list(stream.iterate())
    assert "boom in the worker" in str(info.value)
    assert "ValueError" in info.value.remote_traceback
    assert "failing" in info.value.remote_traceback


def test_worker_killed_by_a_signal_raises():
    stream = ParallelStreamer(Streamer(dying, 2), 1)
    with pytest.raises(pescador.WorkerError, match="died"):
        list(stream.iterate())


def test_close_stops_every_worker_at_once():
    """Each worker hears the stop message and closes its stream itself (a worker that had to
    be terminated would not)."""
    closed = multiprocessing.Value("i", 0)
    stream = ParallelStreamer(Streamer(slow_endless, closed), 2, prefetch=2)
    it = stream.iterate()
    next(it)
    it.close()
    assert closed.value == 2
    assert multiprocessing.active_children() == []


def test_dropping_the_iterator_stops_the_workers():
    stream = ParallelStreamer(Streamer(slow_endless), 2)
    it = stream.iterate()
    next(it)
    del it
    gc.collect()
    assert multiprocessing.active_children() == []


def test_keyboard_interrupt_in_the_consumer_cleans_up():
    stream = ParallelStreamer(Streamer(slow_endless), 2)
    with pytest.raises(KeyboardInterrupt):
        for i, _ in enumerate(stream.iterate()):
            if i == 3:
                raise KeyboardInterrupt


def counted_endless(counter):
    j = 0
    while True:
        with counter.get_lock():
            counter.value += 1
        yield {"X": np.full(4, j, np.int64), "j": j}
        j += 1


@pytest.mark.parametrize("prefetch", [1, 2, 5])
def test_read_ahead_is_bounded(prefetch):
    """A worker runs ahead of the consumer by ``prefetch`` items, and no further.

    The generator counts the items it has yielded: the one delivered, ``prefetch`` sent ahead,
    and at most one more that the worker holds while it waits for credit.
    """
    counter = multiprocessing.get_context("fork").Value("i", 0)
    stream = ParallelStreamer(
        Streamer(counted_endless, counter), 1, prefetch=prefetch, start_method="fork"
    )
    it = stream.iterate()
    assert next(it)["j"] == 0
    deadline = time.monotonic() + 5
    while counter.value < 1 + prefetch and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # let the worker run as far ahead as it may
    assert 1 + prefetch <= counter.value <= 2 + prefetch
    assert [next(it)["j"] for _ in range(10)] == list(range(1, 11))
    it.close()


def test_held_items_do_not_block_the_stream():
    """Keeping every item (the slots stay in use) must not stall the workers."""
    items = list(ParallelStreamer(Streamer(endless, "a"), 1, prefetch=2).iterate(max_iter=50))
    assert [d["j"] for d in items] == list(range(50))
    assert [int(d["X"][0]) for d in items] == list(range(50))


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_bad_arguments_raise(value):
    with pytest.raises(pescador.PescadorError, match="n_workers"):
        ParallelStreamer(Streamer([1]), value)
    with pytest.raises(pescador.PescadorError, match="prefetch"):
        ParallelStreamer(Streamer([1]), 1, prefetch=value)
    if value != 0:
        with pytest.raises(pescador.PescadorError, match="shm_limit"):
            ParallelStreamer(Streamer([1]), 1, shm_limit=value)


def test_spawn_start_method():
    mux = pescador.ChainMux(finite_streams(3, 5))
    got = keys(ParallelStreamer(mux, 2, start_method="spawn").iterate())
    assert sorted(got) == sorted(keys(mux.iterate()))


def test_batches_of_a_split_mux():
    mux = pescador.StochasticMux([Streamer(endless, t) for t in "abcd"], 2, 4, random_state=0)
    batches = Streamer(pescador.buffer_stream, mux, 8)
    out = list(ParallelStreamer(batches, 2).iterate(max_iter=10))
    assert len(out) == 10
    assert all(b["X"].shape == (8, 4) for b in out)


def five_streams():
    for i in range(5):
        yield Streamer(labelled, chr(ord("a") + i), 4)


def test_a_lazy_chain_is_split_too():
    mux = pescador.ChainMux(five_streams)
    expected = sorted(keys(mux.iterate()))
    assert len(expected) == 20
    assert sorted(keys(ParallelStreamer(mux, 2).iterate())) == expected


def test_structured_and_unusual_dtypes_round_trip():
    record = np.dtype([("a", "<i4"), ("b", ">f8", (2,))])
    items = [
        {"rec": np.zeros(3, record), "half": np.arange(4, dtype=np.float16)},
        {"u": np.array(["ab", "c"]), "dt": np.arange(3).astype("datetime64[s]")},
        {1: np.arange(3)},
        {True: np.arange(3)},  # equal to 1 as a key, but another item
    ]
    items[0]["rec"]["b"] = [[1, 2], [3, 4], [5, 6]]
    got = list(ParallelStreamer(Streamer(items), 1).iterate())
    for out, item in zip(got, items, strict=True):
        assert list(out) == list(item)
        assert [type(k) for k in out] == [type(k) for k in item]
        for key, value in item.items():
            assert out[key].dtype == value.dtype
            np.testing.assert_array_equal(out[key], value)


def varying(n: int):
    for j in range(n):
        yield {"X": np.arange(j + 1, dtype=np.float32), "j": j}


def test_items_whose_shapes_keep_changing():
    """More distinct layouts than a worker remembers: each still arrives exactly."""
    got = list(ParallelStreamer(Streamer(varying, 600), 1).iterate())
    assert [d["j"] for d in got] == list(range(600))
    assert all(np.array_equal(d["X"], np.arange(d["j"] + 1)) for d in got)


@pytest.mark.parametrize("limit", [0, 1 << 20])
def test_items_beyond_the_shared_memory_limit_still_arrive(limit):
    """With no room in shared memory (``shm_limit``), items travel through the pipe."""
    stream = ParallelStreamer(Streamer(endless, "a"), 1, shm_limit=limit)
    items = list(stream.iterate(max_iter=5000))  # all held: 4096 fit in 1 MiB, the rest do not
    assert [d["j"] for d in items] == list(range(5000))
    assert all(int(d["X"][0]) == d["j"] for d in items)


def test_small_held_items_share_files():
    """Holding many small items pins small chunks, not a file each."""
    stream = ParallelStreamer(Streamer(endless, "a"), 1)
    it = stream.iterate()
    held = [next(it) for _ in range(1000)]
    assert [d["j"] for d in held] == list(range(1000))
    assert len(os.listdir(it._directory)) <= 2  # 1000 chunks of 256 bytes: one 1 MiB file
    it.close()


def stalling(go_on):
    for j in range(5):
        yield {"X": np.full(3, j), "j": j}
    waited = go_on.wait(30)  # stalls until the consumer has the five items
    yield {"X": np.full(3, 5), "j": 5, "waited": waited}


def test_an_item_is_not_held_back_while_the_generator_stalls():
    """Items produced before a generator stalls reach the consumer without waiting for it:
    the generator resumes only once they have arrived."""
    go_on = multiprocessing.Event()
    it = ParallelStreamer(Streamer(stalling, go_on), 1).iterate()
    assert [next(it)["j"] for _ in range(5)] == list(range(5))
    go_on.set()
    assert next(it)["waited"] is True  # not the end of a 30-s stall
    it.close()


def big(n: int):
    for j in range(n):
        yield {"X": np.full(5 << 20, j, np.uint8), "j": j}


@pytest.mark.parametrize("ordered", [True, False])
def test_large_items_are_bounded_by_bytes_and_flow(ordered):
    """Items of 5 MiB: the bytes in flight, not ``prefetch``, bound a worker; nothing stalls."""
    stream = ParallelStreamer(Streamer(big, 40), 2, ordered=ordered)
    got = [(d["j"], int(d["X"][-1])) for d in stream.iterate()]
    assert sorted(got) == sorted((j, j) for j in range(40) for _ in range(2))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(
    "pad",
    [
        "np.zeros(1 << 12)",  # through shared memory
        "bytes(1 << 18)",  # pickled: the workers block on full pipes
    ],
)
def test_workers_whose_consumer_is_killed_exit_and_clean_up(pad):
    """SIGKILL the consumer: its workers exit and its shared-memory directory goes."""
    code = (
        "import os, numpy as np, pescador\n"
        "def pids():\n"
        "    while True:\n"
        f"        yield {{'pid': np.array(os.getpid()), 'pad': {pad}}}\n"
        "stream = pescador.ParallelStreamer(pescador.Streamer(pids), 2, start_method='fork')\n"
        "it = stream.iterate()\n"
        "seen = {int(next(it)['pid']) for _ in range(200)}\n"
        "mine = [d for d in os.listdir('/dev/shm') if d.startswith(f'pescador-{os.getpid()}-')]\n"
        "print(len(mine), os.getpid(), *seen, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == -signal.SIGKILL, out.stderr
    n_dirs, consumer, *pids = (int(p) for p in out.stdout.split())
    assert n_dirs == 1 and len(pids) == 2

    def gone(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] in "ZX"
        except FileNotFoundError:
            return True

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
        all(gone(p) for p in pids) and not our_segments(consumer)
    ):
        time.sleep(0.02)
    assert all(gone(p) for p in pids)
    assert our_segments(consumer) == []


def test_the_guide_runs():
    """docs/parallel.md: its code blocks, run in order as one script, hold what they assert."""
    guide = Path(__file__).resolve().parent.parent / "docs" / "parallel.md"
    blocks = re.findall(r"```python\n(.*?)```", guide.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 3
    done = subprocess.run(
        [sys.executable, "-c", "\n".join(blocks)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_tuples_of_arrays_arrive_through_shared_memory():
    """``(X, y)`` items (``pescador.tuples``) keep their arrays in shared memory too."""
    pairs = Streamer(pescador.tuples, Streamer(labelled, "a", 5), "X", "j")
    got = list(ParallelStreamer(pairs, 1).iterate())
    assert [j for _, j in got] == list(range(5))
    for j, (x, _) in enumerate(got):
        np.testing.assert_array_equal(x, np.full((2, 3), j, np.float32))
        assert not x.flags.owndata


def test_an_unknown_start_method_raises():
    with pytest.raises(pescador.PescadorError, match="start_method='teleport' is not available"):
        ParallelStreamer(Streamer([1]), 1, start_method="teleport")
