"""Checkpoint and resume (issue 5): every iterator pescador returns resumes exactly.

The central check is :func:`pescador.testing.assert_resumable`: one iteration is checkpointed
at every position (``state_dict()``, JSON text and back), each state is resumed with
``iterate(state=...)`` (or ``cycle(state=...)``), and the resumed items must equal the rest of
the uninterrupted sequence, ending where it ends. Seeded streams are also compared with a fresh
iteration, so a checkpoint that disturbed its iterator would be caught.

Every test is deterministic: fixed seeds, and properties that hold for every random outcome
(no statistical claim is made here, so there is no false-failure probability).

Position 0 *before the first ``next``* (an iterator not yet started) is a case of its own: it
is tested per kind of iterator in the "unstarted" section, and the sweeps checkpoint at
positions ``1 .. n`` of a started iterator (:data:`STARTED`).
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import pescador
import pescador.io
from pescador import (
    ACTIVATION_RNG,
    ChainMux,
    ParallelStreamer,
    RoundRobinMux,
    ShuffledMux,
    StateError,
    StochasticMux,
    Streamer,
)
from pescador.testing import assert_resumable, items_equal

MODES = ("with_replacement", "single_active", "exhaustive")
DISTS = ("constant", "binomial", "poisson")
LENGTHS = (5, 0, 9, 3, 20, 1, 7)  # an empty streamer and a one-item streamer included
WEIGHTS = (1, 2, 0, 3, 1, 0.5, 2)  # a zero weight included
REPO = Path(__file__).resolve().parent.parent


def STARTED(n: int) -> range:
    """Checkpoint positions of a started iterator (position 0 unstarted is tested apart)."""
    return range(1, n + 1)


# --------------------------------------------------------------------------- sources
def letters(tag, n):
    for i in range(n):
        yield f"{tag}{i}"


def draws(tag, rng=ACTIVATION_RNG):
    """Endless items drawn from the activation's generator: exact resume needs its seed."""
    while True:
        yield f"{tag}{int(rng.integers(1000))}"


def finite_draws(tag, n, rng=ACTIVATION_RNG):
    for _ in range(n):
        yield (tag, int(rng.integers(1000)))


def data(tag, n):
    for i in range(n):
        yield {"X": np.full(3, i, np.float32), "tag": np.array(tag), "i": i}


def endless_data(tag, rng=ACTIVATION_RNG):
    i = 0
    while True:
        yield {"X": np.full(4, i, np.int64), "tag": tag, "r": int(rng.integers(1000))}
        i += 1


def row_blocks(tag, rng=ACTIVATION_RNG):
    """Items that already have a batch axis (for ``buffer_stream(..., axis=0)``)."""
    while True:
        yield {"X": rng.normal(size=(2, 3)), "tag": np.array([tag, tag])}


def finite_streams():
    return [Streamer(letters, c, n) for c, n in zip("abcdefg", LENGTHS, strict=True)]


def data_streams():
    return [Streamer(data, c, n) for c, n in zip("abcdefg", LENGTHS, strict=True)]


def random_streams(k=7):
    return [Streamer(draws, c) for c in "abcdefghijklmnop"[:k]]


def check(stream, n, positions=None, cycle=False, fresh=True):
    """assert_resumable at ``positions`` (default: every position of a started iterator);
    for a seeded stream (``fresh``), the items also equal a fresh iteration's."""
    positions = STARTED(n) if positions is None else positions
    items = assert_resumable(stream, n, positions=positions, cycle=cycle)
    if fresh:
        again = list((stream.cycle if cycle else stream.iterate)(max_iter=n))
        assert items_equal(items, again), "the checkpointed iteration differs from a fresh one"
    return items


def roundtrip(state):
    return json.loads(json.dumps(state, allow_nan=False))


def advance(it, k):
    for _ in itertools.islice(it, k):
        pass
    return it


def state_at(stream, k, cycle=False):
    """The JSON-round-tripped state of an iteration after ``k`` items."""
    it = (stream.cycle if cycle else stream.iterate)()
    advance(iter(it), k)
    state = roundtrip(it.state_dict())
    it.close()
    return state


# --------------------------------------------------------------------------- StochasticMux


# --------------------------------------------------------------------------- other muxes


# --------------------------------------------------------------------------- Streamer, cycle


def test_load_state_dict_path_equals_iterate_state_path():
    for stream in [
        StochasticMux(random_streams(), 3, 4, random_state=2),
        Streamer(pescador.buffer_stream, StochasticMux(data_streams(), 2, 3, random_state=1), 2),
        Streamer(finite_draws, "z", 50),
    ]:
        it = stream.iterate(max_iter=60)
        advance(it, 17)
        state = roundtrip(it.state_dict())
        expected = list(it)
        via_iterate = list(stream.iterate(max_iter=60, state=state))
        loaded = stream.iterate(max_iter=60)
        loaded.load_state_dict(state)
        via_load = list(loaded)
        assert items_equal(via_iterate, expected)
        assert items_equal(via_load, expected)
        assert loaded.items_delivered == 17 + len(expected)


def test_max_iter_counts_the_items_before_the_checkpoint():
    mux = StochasticMux(random_streams(), 2, 3, random_state=0)
    it = mux.iterate(max_iter=50)
    advance(it, 20)
    state = roundtrip(it.state_dict())
    resumed = mux.iterate(max_iter=50, state=state)
    assert resumed.items_delivered == 20
    assert len(list(resumed)) == 30
    assert resumed.items_delivered == 50
    # Without a limit, the resumed iterator goes on past it.
    assert len(list(itertools.islice(mux.iterate(state=state), 100))) == 100


def test_a_resumed_iterator_can_be_checkpointed_again():
    mux = StochasticMux(random_streams(), 3, 4, random_state=7)
    full = list(mux.iterate(max_iter=300))
    items, state = [], None
    for stop in (40, 41, 97, 180, 260, 300):
        it = mux.iterate(max_iter=300, state=state)
        items += list(itertools.islice(it, stop - len(items)))
        state = roundtrip(it.state_dict())
        it.close()
    assert items == full


def test_state_dict_does_not_disturb_the_iteration():
    mux = StochasticMux(random_streams(), 3, 4, random_state=1)
    expected = list(mux.iterate(max_iter=200))
    it = mux.iterate(max_iter=200)
    got = []
    for item in it:
        got.append(item)
        first, second = it.state_dict(), it.state_dict()
        assert first == second
    assert got == expected


def test_state_of_a_finished_iteration_resumes_to_nothing():
    for stream in [
        Streamer(letters, "a", 3),
        StochasticMux(finite_streams(), 2, 3, mode="exhaustive", random_state=0),
        ChainMux(finite_streams()),
        RoundRobinMux(finite_streams()),
    ]:
        it = stream.iterate()
        n = len(list(it))
        state = roundtrip(it.state_dict())
        assert state["n"] == n
        assert list(stream.iterate(state=state)) == []
        closed = stream.iterate()
        advance(closed, 1)
        closed.close()
        assert list(stream.iterate(state=roundtrip(closed.state_dict()))) == []


def test_items_delivered_resume_from_the_state():
    mux = ShuffledMux(random_streams(), random_state=0)
    state = state_at(mux, 25)
    resumed = mux.iterate(state=state)
    assert resumed.items_delivered == 25
    advance(resumed, 5)
    assert resumed.items_delivered == 30
    assert roundtrip(resumed.state_dict())["n"] == 30


# --------------------------------------------------------------------------- user sources
class Seekable:
    """A user iterator with the state protocol: it resumes without replaying anything."""

    produced = 0  # items computed, by every instance (to see that resume is O(1))

    def __init__(self, n):
        self.n = n
        self.i = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.i >= self.n:
            raise StopIteration
        Seekable.produced += 1
        self.i += 1
        return self.i - 1

    def state_dict(self):
        return {"i": self.i}

    def load_state_dict(self, state):
        self.i = state["i"]


@pescador.iterator_factory
def seekable(n):
    return Seekable(n)


class SeekableData:
    """An iterable whose iterators have the state protocol."""

    def __iter__(self):
        return Seekable(9)


def test_user_protocol_resumes_in_constant_time():
    stream = Streamer(seekable, 10**7)
    it = advance(stream.iterate(), 200_000)
    state = roundtrip(it.state_dict())
    assert state["source"] == {"i": 200_000}
    Seekable.produced = 0
    assert next(stream.iterate(state=state)) == 200_000
    assert Seekable.produced == 1  # nothing replayed


def test_user_protocol_at_every_position_and_in_a_mux():
    check(Streamer(seekable, 20), 30)
    check(Streamer(SeekableData()), 12)
    mux = StochasticMux([Streamer(seekable, n) for n in (5, 10, 50)], 2, 4, random_state=0)
    check(mux, 60)


def test_a_plain_generator_is_replayed_and_skipped():
    produced = []

    def counting(n):
        for i in range(n):
            produced.append(i)
            yield i

    stream = Streamer(counting, 10**6)
    state = state_at(stream, 1000)
    produced.clear()
    assert next(stream.iterate(state=state)) == 1000
    assert len(produced) == 1001  # the 1000 delivered items are recomputed, then one more


def test_a_mux_replays_at_most_n_active_times_rate_items():
    produced = [0]

    def endless(i):
        while True:
            produced[0] += 1
            yield i

    for mode in ("with_replacement", "single_active"):
        mux = StochasticMux(
            [Streamer(endless, i) for i in range(100)],
            8,
            16,
            mode=mode,
            dist="constant",
            random_state=0,
        )
        for k in (1, 999, 10_000, 54_321):
            state = state_at(mux, k)
            produced[0] = 0
            next(mux.iterate(state=state))
            assert produced[0] <= 8 * 16, (mode, k, produced[0])


def test_a_global_rng_generator_resumes_only_approximately():
    """Documented limitation: numpy's global RNG is not part of any state."""

    def noisy():
        while True:
            yield int(np.random.randint(1 << 30))

    stream = Streamer(noisy)
    it = stream.iterate(max_iter=20)
    head = list(itertools.islice(it, 10))
    state = roundtrip(it.state_dict())
    expected = list(it)
    resumed = list(stream.iterate(max_iter=20, state=state))
    assert len(resumed) == len(expected) == 10 and len(head) == 10
    assert resumed != expected  # values differ (equal with probability 2**-300)


# --------------------------------------------------------------------------- maps
def test_buffer_stream_resumes_between_batches():
    mux = StochasticMux(data_streams(), 3, 4, random_state=3)
    check(Streamer(pescador.buffer_stream, mux, 4), 15)
    rows = StochasticMux([Streamer(row_blocks, t) for t in "abc"], 2, 3, random_state=3)
    check(Streamer(pescador.buffer_stream, rows, 3, axis=0), 15)


def test_buffer_stream_with_a_partial_last_batch():
    stream = Streamer(pescador.buffer_stream, ChainMux(data_streams()), 4, partial=True)
    items = check(stream, 20)
    assert len(items[-1]["i"]) == sum(LENGTHS) % 4  # the partial batch is there


def test_buffer_stream_checkpoint_while_its_input_is_half_way_through_an_activation():
    """Batches of 3 over activations of 4 items: every batch boundary falls at a different
    point of the running activations, so the input's state is mid-activation; and a batch
    whose items were half gathered from the input by hand resumes from the input's state."""
    mux = StochasticMux(
        [Streamer(endless_data, t) for t in "abcd"], 2, 4, dist="constant", random_state=8
    )
    check(Streamer(pescador.buffer_stream, mux, 3), 25)

    inner = mux.iterate()
    batches = pescador.buffer_stream(inner, 4)
    first = next(batches)
    half = [next(inner), next(inner)]  # taken out of the input between two batches
    state = roundtrip(batches.state_dict())
    expected = next(batches)
    resumed_input = mux.iterate()
    resumed = pescador.buffer_stream(resumed_input, 4)
    resumed.load_state_dict(state)
    got = next(resumed)
    assert items_equal(got, expected)
    assert first["X"].shape == (4, 4) and len(half) == 2


def test_tuples_and_keras_tuples_resume_at_every_position():
    mux = StochasticMux(data_streams(), 3, 4, random_state=3)
    check(Streamer(pescador.tuples, mux, "X", "i"), 40)
    check(Streamer(pescador.tuples, mux, "i"), 40)
    check(Streamer(pescador.keras_tuples, mux, "X", ["i"]), 40)
    check(Streamer(pescador.keras_tuples, mux, inputs=["X", "tag"]), 40)


def test_cache_resumes_at_every_position_including_its_warm_up():
    mux = StochasticMux(data_streams(), 3, 4, random_state=3)
    for prob in (0.5, 0.1, 1.0):
        items = check(Streamer(pescador.cache, mux, 5, prob, random_state=2), 60)
        assert items  # warm-up positions 1..4 are among the checkpoints
    check(Streamer(pescador.cache, Streamer(data, "a", 3), 5, random_state=0), 10)  # short


def test_cache_over_a_long_run_crossing_blocks_of_decisions():
    mux = StochasticMux([Streamer(endless_data, t) for t in "abc"], 2, 4, random_state=3)
    check(
        Streamer(pescador.cache, mux, 5, 0.05, random_state=2),
        2600,
        positions=[1, 2, 5, 6, 1023, 1024, 1025, 2047, 2048, 2049, 2600],
    )


def test_unseeded_cache_resumes_its_own_iteration():
    check(Streamer(pescador.cache, Streamer(data, "a", 30), 5, 0.5), 80, fresh=False)
    check(Streamer(pescador.cache, StochasticMux(data_streams(), 3, 4), 5), 80, fresh=False)


def test_cache_replays_its_input_from_the_start():
    """Documented cost: the cached items are data, not state; resume refetches them."""
    fetched = []

    def source():
        i = 0
        while True:
            fetched.append(i)
            yield {"i": i}
            i += 1

    stream = Streamer(pescador.cache, Streamer(source), 4, 0.5, random_state=0)
    it = stream.iterate()
    advance(it, 500)
    n_fetched = len(fetched)
    state = roundtrip(it.state_dict())
    expected = next(it)
    fetched.clear()
    assert items_equal(next(stream.iterate(state=state)), expected)
    assert n_fetched <= len(fetched) <= n_fetched + 1


def test_chains_of_maps_and_maps_inside_muxes():
    mux = StochasticMux(data_streams(), 3, 4, random_state=3)
    cached = Streamer(
        pescador.cache, Streamer(pescador.buffer_stream, mux, 2), 4, 0.5, random_state=1
    )
    check(Streamer(pescador.buffer_stream, cached, 3, axis=0), 25)
    inner = [Streamer(pescador.cache, mux, 5, 0.3), Streamer(pescador.buffer_stream, mux, 2)]
    check(StochasticMux(inner, 2, 3, random_state=1), 120)


def test_a_map_over_a_plain_generator_cannot_checkpoint():
    batches = pescador.buffer_stream(({"x": np.zeros(1)} for _ in range(10)), 2)
    next(batches)
    with pytest.raises(StateError, match="cannot describe its position"):
        batches.state_dict()


# --------------------------------------------------------------------------- nested muxes
def test_nested_muxes_resume_at_every_position():
    streams = finite_streams()
    rand = random_streams()
    inner = [
        ShuffledMux(rand[:3]),
        StochasticMux(streams, 2, 3),
        ChainMux(streams[:2], mode="cycle"),
        RoundRobinMux(streams[2:5], mode="permuted_cycle"),
    ]
    check(StochasticMux(inner, 2, 5, random_state=1), 200)
    check(ShuffledMux(inner, random_state=1), 120)
    check(RoundRobinMux(inner, mode="cycle", random_state=1), 120)
    check(ChainMux([*inner[1:], inner[0]], random_state=1), 120)


def test_deep_trees_resume_at_every_position():
    leaf = StochasticMux(random_streams(4), 2, 3)
    middle = StochasticMux([leaf, Streamer(letters, "z", 4), Streamer(seekable, 6)], 2, 2)
    top = StochasticMux([middle, ShuffledMux([middle, leaf])], 2, 3, random_state=9)
    check(top, 150, positions=range(1, 151, 2))


def test_nested_state_is_a_tree_of_small_dicts():
    inner = StochasticMux(random_streams(4), 2, 3)
    top = StochasticMux([inner, inner], 2, 3, random_state=0)
    state = state_at(top, 50)
    assert state["pescador_state"] == 1 and state["kind"] == "StochasticMux"
    children = [slot[3] for slot in state["slots"]]
    assert all(child["kind"] == "StochasticMux" for child in children)
    assert all("pescador_state" not in child for child in children)  # one envelope, outermost


# --------------------------------------------------------------------------- unstarted
UNSTARTED = {
    "Streamer": lambda: Streamer(letters, "a", 5),
    "Streamer with ACTIVATION_RNG": lambda: Streamer(finite_draws, "a", 8),
    "cycle": lambda: Streamer(letters, "a", 3),
    "StochasticMux": lambda: StochasticMux(random_streams(), 2, 3),
    "StochasticMux seeded": lambda: StochasticMux(random_streams(), 2, 3, random_state=1),
    "ShuffledMux": lambda: ShuffledMux(random_streams()),
    "RoundRobinMux": lambda: RoundRobinMux(finite_streams(), mode="permuted_cycle"),
    "ChainMux": lambda: ChainMux(finite_streams()),
    "buffer_stream": lambda: Streamer(
        pescador.buffer_stream, StochasticMux(data_streams(), 2, 3), 2
    ),
    "cache": lambda: Streamer(pescador.cache, StochasticMux(data_streams(), 2, 3), 3),
    "ParallelStreamer": lambda: ParallelStreamer(
        StochasticMux(finite_streams(), 2, 3, random_state=0), 2, random_state=0
    ),
}


@pytest.mark.parametrize("name", list(UNSTARTED))
def test_state_of_an_unstarted_iterator_resumes_the_same_iteration(name):
    """``state_dict()`` before the first ``next`` (a checkpoint at step 0 of a training run).

    The resumed iteration must equal the one checkpointed, so an unseeded stream's state must
    pin the seed that the iteration will use.
    """
    stream = UNSTARTED[name]()
    cycle = name == "cycle"
    assert_resumable(stream, 12, positions=[0], cycle=cycle)


@pytest.mark.parametrize(
    "make",
    [
        lambda source: pescador.buffer_stream(source, 2),
        lambda source: pescador.tuples(source, "X"),
        lambda source: pescador.keras_tuples(source, "X", "i"),
        lambda source: pescador.cache(source, 3, random_state=0),
    ],
    ids=["buffer_stream", "tuples", "keras_tuples", "cache"],
)
def test_state_of_an_unstarted_map_made_directly(make):
    source = StochasticMux(data_streams(), 2, 3, random_state=4)
    state = roundtrip(make(source).state_dict())
    resumed = make(source)
    resumed.load_state_dict(state)
    expected = list(itertools.islice(make(source), 30))
    assert items_equal(list(itertools.islice(resumed, 30)), expected)


def test_state_of_a_started_iterator_before_its_first_item():
    """``iter(it)`` starts the pass (a ``for`` loop does): position 0, started."""
    for stream in (UNSTARTED[name]() for name in UNSTARTED if name != "cycle"):
        it = stream.iterate(max_iter=12)
        iter(it)
        state = roundtrip(it.state_dict())
        expected = list(it)
        assert items_equal(list(stream.iterate(max_iter=12, state=state)), expected)


# --------------------------------------------------------------------------- disk streamers
def write_corpus(folder: Path, n_files: int = 6, rows: int = 3000, features: int = 40):
    """NPZ and NPY examples whose X is large enough to be read in place, window by window."""
    for k in range(n_files):
        X = (np.arange(rows * features, dtype=np.float32) + 1e6 * k).reshape(rows, features)
        Y = np.arange(rows) + 10_000 * k
        np.savez(folder / f"{k}.npz", X=X, Y=Y)
        np.save(folder / f"e{k}.X.npy", X)
        np.save(folder / f"e{k}.Y.npy", Y)
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.mark.parametrize("mode", MODES)
def test_npz_windows_through_a_mux_resume_at_every_position(corpus, mode):
    streams = pescador.io.npz_streamers(corpus, 8, id_key="file")
    check(StochasticMux(streams, 3, 5, mode=mode, random_state=2), 120)


def test_npy_windows_through_maps_resume(corpus):
    mux = StochasticMux(pescador.io.npy_streamers(corpus, 8), 2, 7, random_state=3)
    check(mux, 300, positions=range(1, 301, 11))
    check(Streamer(pescador.buffer_stream, mux, 4), 30)


@pytest.fixture
def count_reads(monkeypatch):
    """Count the positioned reads of the window streamers (each reads with ``_pread``)."""
    module = importlib.import_module(pescador.io.WindowIterator.__module__)
    assert hasattr(module, "_pread"), "the window streamers' reader moved: update this test"
    reads = [0]
    real = module._pread

    def counting(fd, buffers, offset):
        reads[0] += 1
        return real(fd, buffers, offset)

    monkeypatch.setattr(module, "_pread", counting)
    return reads


def test_a_window_streamer_resumes_without_rereading(corpus, count_reads):
    """O(1): after 100 000 windows, resuming reads one window (plus the small Y, whole)."""
    stream = Streamer(pescador.io.npz_windows, corpus / "0.npz", 8, random_state=1)
    it = advance(stream.iterate(), 100_000)
    state = roundtrip(it.state_dict())
    expected = next(it)
    it.close()
    count_reads[0] = 0
    got = next(stream.iterate(state=state))
    assert items_equal(got, expected)
    assert count_reads[0] <= 2
    assert len(json.dumps(state)) < 1024


def test_a_mux_of_window_streamers_resumes_without_rereading(corpus, count_reads):
    mux = StochasticMux(pescador.io.npz_streamers(corpus, 8), 3, None, random_state=2)
    it = advance(mux.iterate(), 30_000)
    state = roundtrip(it.state_dict())
    expected = list(itertools.islice(it, 3))
    it.close()
    count_reads[0] = 0
    resumed = mux.iterate(state=state)
    assert items_equal(next(resumed), expected[0])
    assert count_reads[0] <= 2  # only the slot drawn first opened its file
    assert items_equal([expected[0], *itertools.islice(resumed, 2)], expected)


# --------------------------------------------------------------------------- ParallelStreamer
def test_parallel_streamer_resumes_delivered_items_exactly():
    streams = [Streamer(data, c, n) for c, n in zip("abcde", (7, 3, 9, 0, 5), strict=True)]
    batches = Streamer(pescador.buffer_stream, ChainMux(streams), 3, partial=True)
    stream = ParallelStreamer(batches, 2, random_state=0)
    check(stream, 20, positions=[1, 3, 5, 8])
    mux = StochasticMux([Streamer(letters, t, 10**6) for t in "abcdef"], 3, 5, random_state=2)
    check(ParallelStreamer(mux, 2, snapshot_every=0.0), 60, positions=[1, 17, 59, 60])


def test_parallel_streamer_resumes_activation_rngs_exactly():
    """The workers' shares of a mux resume with their own seeds (not a re-derived one)."""
    mux = StochasticMux([Streamer(draws, t) for t in "abcdef"], 3, 5, random_state=2)
    check(ParallelStreamer(mux, 2, snapshot_every=0.0), 60, positions=[1, 17, 59])
    check(ParallelStreamer(mux, 1, snapshot_every=0.0), 30, positions=[5])


def test_unordered_parallel_streamer_neither_loses_nor_repeats_items():
    streams = [Streamer(letters, c, n) for c, n in zip("abcde", (30, 10, 25, 0, 15), strict=True)]
    stream = ParallelStreamer(ChainMux(streams), 2, ordered=False, prefetch=3)
    full = sorted(stream.iterate())
    for k in (1, 33, len(full)):
        it = stream.iterate()
        head = list(itertools.islice(it, k))
        state = roundtrip(it.state_dict())
        it.close()
        assert sorted(head + list(stream.iterate(state=state))) == full


# --------------------------------------------------------------------------- StateError
def stochastic(**kwargs):
    args = {"n_active": 3, "rate": 4, "random_state": 0, **kwargs}
    return StochasticMux(finite_streams(), args.pop("n_active"), args.pop("rate"), **args)


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (lambda: ShuffledMux(finite_streams()), "state of a StochasticMux given to a ShuffledMux"),
        (lambda: Streamer(letters, "a", 3), "state of a StochasticMux given to a Streamer"),
        (lambda: StochasticMux(finite_streams()[:6], 3, 4), "n_streams=7 in the state, 6 here"),
        (lambda: stochastic(n_active=2), "n_active=3 in the state, 2 here"),
        (lambda: stochastic(rate=5), "rate=4.0 in the state, 5.0 here"),
        (lambda: stochastic(mode="single_active"), "mode='with_replacement' in the state"),
        (lambda: stochastic(dist="poisson"), "dist='binomial' in the state, 'poisson' here"),
    ],
)
def test_a_state_from_another_mux_is_rejected_saying_what_differs(other, message):
    state = state_at(stochastic(), 10)
    with pytest.raises(StateError, match=message):
        other().iterate(state=state)


def test_a_state_from_another_shape_of_round_robin_or_chain_is_rejected():
    rr = RoundRobinMux(finite_streams())
    with pytest.raises(StateError, match="mode='exhaustive' in the state, 'cycle' here"):
        RoundRobinMux(finite_streams(), mode="cycle").iterate(state=state_at(rr, 5))
    with pytest.raises(StateError, match="n_streams=7 in the state, 4 here"):
        RoundRobinMux(finite_streams()[:4]).iterate(state=state_at(rr, 5))
    chain = ChainMux(finite_streams())
    with pytest.raises(StateError, match="mode='exhaustive' in the state, 'cycle' here"):
        ChainMux(finite_streams(), mode="cycle").iterate(state=state_at(chain, 5))


def test_a_state_from_a_chain_of_another_length_is_rejected():
    state = state_at(ChainMux(finite_streams()), 25)  # running streamer 2 of 7
    with pytest.raises(StateError, match="n_streams"):
        next(ChainMux(finite_streams()[:3]).iterate(state=state))


def test_a_state_from_a_generator_chain_that_now_has_fewer_streamers_is_rejected():
    streams = finite_streams()

    def seven():
        yield from streams

    def two():
        yield from streams[:2]

    state = state_at(ChainMux(seven), 30)
    with pytest.raises(StateError, match="fewer streamers"):
        next(ChainMux(two).iterate(state=state))


def test_cycle_and_iterate_states_do_not_mix():
    mux = stochastic()
    with pytest.raises(StateError, match="state of a StochasticMux given to a cycle"):
        mux.cycle(state=state_at(mux, 5))
    with pytest.raises(StateError, match="state of a cycle given to a StochasticMux"):
        mux.iterate(state=state_at(mux, 5, cycle=True))


def test_a_state_of_another_format_version_is_rejected():
    state = state_at(stochastic(), 5)
    for version in (0, 2, None, "1"):
        changed = {**state, "pescador_state": version}
        with pytest.raises(StateError, match="state format"):
            stochastic().iterate(state=changed)
    missing = {k: v for k, v in state.items() if k != "pescador_state"}
    with pytest.raises(StateError, match="state format None"):
        stochastic().iterate(state=missing)
    with pytest.raises(StateError, match="must be a dict"):
        stochastic().iterate(state=[1, 2])  # type: ignore[arg-type]


def test_a_state_nested_in_another_shape_is_rejected_by_the_first_next():
    """Nested states are checked when their iterator opens: by the first ``next``."""
    streams = data_streams()

    def tree(inner):
        return StochasticMux([inner, Streamer(data, "z", 4)], 2, 2, random_state=1)

    state = state_at(tree(StochasticMux(streams, 2, 3)), 1)
    assert any(slot[3]["kind"] == "StochasticMux" for slot in state["slots"])
    for inner, message in [
        (StochasticMux(streams, 3, 3), "n_active=2 in the state, 3 here"),
        (ShuffledMux(streams), "state of a StochasticMux given to a ShuffledMux"),
        (Streamer(data, "q", 40), "state of a StochasticMux given to a Streamer"),
    ]:
        with pytest.raises(StateError, match=message):
            advance(tree(inner).iterate(state=state), 2)
    batches = Streamer(pescador.buffer_stream, StochasticMux(streams, 2, 3, random_state=0), 2)
    with pytest.raises(StateError, match="state of a buffer_stream given to a tuples"):
        next(Streamer(pescador.tuples, streams[0], "X").iterate(state=state_at(batches, 2)))


def test_a_cache_state_of_another_size_is_rejected():
    mux = StochasticMux(data_streams(), 2, 3, random_state=0)
    state = state_at(Streamer(pescador.cache, mux, 4, random_state=0), 10)
    with pytest.raises(StateError, match="n_cache"):
        next(Streamer(pescador.cache, mux, 5, random_state=0).iterate(state=state))


def test_a_parallel_state_from_another_worker_count_is_rejected():
    mux = ChainMux(finite_streams())
    state = state_at(ParallelStreamer(mux, 2), 3)
    with pytest.raises(StateError, match="n_workers=2 in the state, 3 here"):
        ParallelStreamer(mux, 3).iterate(state=state)


def test_load_after_the_first_next_is_rejected():
    for stream in [stochastic(), Streamer(letters, "a", 5), ChainMux(finite_streams())]:
        state = state_at(stream, 2)
        it = stream.iterate()
        next(it)
        with pytest.raises(StateError, match="before the first next"):
            it.load_state_dict(state)
        it = stream.iterate()
        iter(it)  # a for loop starts the pass too
        with pytest.raises(StateError, match="before the first next"):
            it.load_state_dict(state)


def test_state_error_is_a_pescador_error():
    assert issubclass(StateError, pescador.PescadorError)


# --------------------------------------------------------------------------- size
def endless_item(i):
    item = {"x": i}
    while True:
        yield item


@pytest.mark.parametrize("mode", MODES)
def test_state_size_does_not_grow_with_items(mode):
    """Sampled after 1e3, 1e4 and 1e5 items: only counters gain digits."""
    streams = [Streamer(endless_item, i) for i in range(2000)]
    mux = StochasticMux(streams, 32, 16, mode=mode, random_state=0)
    it = mux.cycle() if mode == "exhaustive" else mux.iterate()  # exhaustive: ~32k per pass
    sizes, done = [], 0
    for n in (1000, 10_000, 100_000):
        advance(it, n - done)
        done = n
        sizes.append(len(json.dumps(it.state_dict())))
    assert max(sizes) < 4096, sizes
    assert sizes[2] - sizes[0] < 200, sizes


def test_shuffled_and_round_robin_states_do_not_grow_with_items():
    for mux in [
        ShuffledMux([Streamer(endless_item, i) for i in range(50)], random_state=0),
        RoundRobinMux([Streamer(letters, i, 7) for i in range(50)], "permuted_cycle", 0),
    ]:
        it = mux.iterate()
        sizes, done = [], 0
        for n in (1000, 10_000, 100_000):
            advance(it, n - done)
            done = n
            sizes.append(len(json.dumps(it.state_dict())))
        assert sizes[2] - sizes[0] < 200, sizes


# --------------------------------------------------------------------------- example
def test_the_checkpoint_example_runs(tmp_path):
    script = REPO / "examples" / "checkpoint_training_loop.py"
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(script), "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resumed run matches the uninterrupted run" in done.stdout
    assert time.perf_counter() - start < 60
