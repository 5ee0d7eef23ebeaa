"""Checkpoint and resume: every iterator pescador returns resumes exactly from its state.

Each stream's own test file runs :func:`pescador.testing.assert_resumable` on it (through
``assert_conforms`` in conftest.py). Here: the ways to resume (``iterate(state=...)``,
``load_state_dict``), what ``max_iter`` and ``items_delivered`` count, checkpoints of resumed,
finished and unstarted iterators, user iterators with the state protocol, and trees of muxes
and maps. What a resume costs is in test_checkpoint_costs.py, states that do not fit their
pipeline in test_state_errors.py.

Every test is deterministic: fixed seeds, and properties that hold for every random outcome.
Position 0 *before the first ``next``* (an iterator not yet started) is a case of its own,
tested per kind of iterator in the "unstarted" section; elsewhere checkpoints are at positions
``1 .. n`` of a started iterator (``STARTED``).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest

import pescador
import pescador.io
import pescador.maps
from conftest import (
    REPO,
    Seekable,
    advance,
    assert_conforms,
    data_streams,
    draws,
    finite_streams,
    letters,
    random_streams,
    roundtrip,
    seekable,
    state_at,
)
from pescador import (
    ChainMux,
    ParallelStreamer,
    RoundRobinMux,
    ShuffledMux,
    StochasticMux,
    Streamer,
)
from pescador.testing import assert_resumable, items_equal

# --------------------------------------------------------------------------- resuming


def test_load_state_dict_path_equals_iterate_state_path():
    for stream in [
        StochasticMux(random_streams(), 3, 4, random_state=2),
        Streamer(pescador.buffer_stream, StochasticMux(data_streams(), 2, 3, random_state=1), 2),
        Streamer(draws, "z", 50),
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


# --------------------------------------------------------------------------- unstarted


UNSTARTED = {
    "Streamer": lambda: Streamer(letters, "a", 5),
    "Streamer with ACTIVATION_RNG": lambda: Streamer(draws, "a", 8),
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


# --------------------------------------------------------------------------- user iterators


class SeekableData:
    """An iterable whose iterators have the state protocol."""

    def __iter__(self):
        return Seekable(9)


def test_user_protocol_at_every_position_and_in_a_mux():
    assert_conforms(Streamer(seekable, 20), 30)
    assert_conforms(Streamer(SeekableData()), 12)
    mux = StochasticMux([Streamer(seekable, n) for n in (5, 10, 50)], 2, 4, random_state=0)
    assert_conforms(mux, 60)


# --------------------------------------------------------------------------- trees


def test_nested_muxes_resume_at_every_position():
    streams = finite_streams()
    rand = random_streams()
    inner = [
        ShuffledMux(rand[:3]),
        StochasticMux(streams, 2, 3),
        ChainMux(streams[:2], mode="cycle"),
        RoundRobinMux(streams[2:5], mode="permuted_cycle"),
    ]
    assert_conforms(StochasticMux(inner, 2, 5, random_state=1), 200)
    assert_conforms(ShuffledMux(inner, random_state=1), 120)
    assert_conforms(RoundRobinMux(inner, mode="cycle", random_state=1), 120)
    assert_conforms(ChainMux([*inner[1:], inner[0]], random_state=1), 120)


def test_deep_trees_resume_at_every_position():
    leaf = StochasticMux(random_streams(4), 2, 3)
    middle = StochasticMux([leaf, Streamer(letters, "z", 4), Streamer(seekable, 6)], 2, 2)
    top = StochasticMux([middle, ShuffledMux([middle, leaf])], 2, 3, random_state=9)
    assert_conforms(top, 150, positions=range(1, 151, 2))


def test_nested_state_is_a_tree_of_small_dicts():
    inner = StochasticMux(random_streams(4), 2, 3)
    top = StochasticMux([inner, inner], 2, 3, random_state=0)
    state = state_at(top, 50)
    assert state["pescador_state"] == 1 and state["kind"] == "StochasticMux"
    children = [slot[3] for slot in state["slots"]]
    assert all(child["kind"] == "StochasticMux" for child in children)
    assert all("pescador_state" not in child for child in children)  # one envelope, outermost


def test_chains_of_maps_and_maps_inside_muxes():
    mux = StochasticMux(data_streams(), 3, 4, random_state=3)
    cached = Streamer(
        pescador.cache, Streamer(pescador.buffer_stream, mux, 2), 4, 0.5, random_state=1
    )
    assert_conforms(Streamer(pescador.buffer_stream, cached, 3, axis=0), 25)
    inner = [Streamer(pescador.cache, mux, 5, 0.3), Streamer(pescador.buffer_stream, mux, 2)]
    assert_conforms(StochasticMux(inner, 2, 3, random_state=1), 120)


# --------------------------------------------------------------------------- example


def test_the_checkpoint_example_runs(tmp_path):
    """The example resumes a training loop and checks it against an uninterrupted run. No
    assertion on how long it took (the machine may be busy): the timeout only stops a hang."""
    script = REPO / "examples" / "checkpoint_training_loop.py"
    done = subprocess.run(
        [sys.executable, str(script), "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resumed run matches the uninterrupted run" in done.stdout
