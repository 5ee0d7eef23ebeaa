"""Streamer.cycle (and ``cycle`` of every stream): passes, limits, resources, and checkpoints.

A cycle of a stream that yields nothing ends instead of spinning forever, and ``cycle(0)`` pulls
nothing. A checkpoint of a cycle resumes exactly, across passes too.
"""

from __future__ import annotations

import gc
import itertools

import pytest

import pescador
from conftest import (
    advance,
    assert_conforms,
    count_up,
    draws,
    finite_streams,
    letters,
    nothing,
    roundtrip,
)
from pescador import ChainMux, RoundRobinMux, StochasticMux, Streamer

# --------------------------------------------------------------------------- passes


def test_cycle_restarts_the_stream():
    stream = pescador.Streamer(count_up, 3)
    assert list(stream.cycle(max_iter=8)) == [0, 1, 2, 0, 1, 2, 0, 1]
    assert list(itertools.islice(stream.cycle(), 7)) == [0, 1, 2, 0, 1, 2, 0]


def test_cycle_calls_the_generator_function_once_per_pass(probe):
    stream = pescador.Streamer(probe.finite, 3)
    assert list(stream.cycle(max_iter=7)) == [0, 1, 2, 0, 1, 2, 0]
    assert probe.calls == 3
    assert probe.pulls == 7
    assert probe.finished == 3
    assert stream.active == 0


@pytest.mark.parametrize("max_iter", [None, 5])
def test_cycle_of_an_empty_stream_ends(max_iter):
    assert list(pescador.Streamer(nothing).cycle(max_iter)) == []
    assert list(pescador.Streamer([]).cycle(max_iter)) == []
    assert list(pescador.Streamer([])(max_iter, cycle=True)) == []


def test_cycle_ends_after_a_pass_that_yields_nothing():
    passes = []

    def shrinking():
        passes.append(None)
        yield from range(3 - len(passes))

    assert list(pescador.Streamer(shrinking).cycle()) == [0, 1, 0]


def test_cycle_zero_pulls_nothing(probe):
    stream = pescador.Streamer(probe.infinite)
    assert list(stream.cycle(0)) == []
    assert probe.pulls == 0
    assert stream.active == 0


def test_cycle_counts_one_activation_at_a_time(probe):
    stream = pescador.Streamer(probe.finite, 2)
    c = stream.cycle()
    for _ in range(5):
        next(c)
        assert stream.active == 1


def test_cycle_close_ends_the_running_pass(probe):
    stream = pescador.Streamer(probe.infinite)
    c = stream.cycle()
    next(c)
    assert stream.active == 1
    c.close()
    assert stream.active == 0
    assert probe.finished == 1
    with pytest.raises(StopIteration):
        next(c)


def test_dropped_cycle_releases_its_pass(probe):
    stream = pescador.Streamer(probe.infinite)
    c = stream.cycle()
    next(c)
    del c
    gc.collect()
    assert stream.active == 0
    assert probe.finished == 1


def test_cycle_max_iter_never_pulls_an_extra_item(probe):
    stream = pescador.Streamer(probe.finite, 3)
    assert len(list(stream.cycle(max_iter=4))) == 4
    assert probe.pulls == 4
    assert probe.finished == 2


# --------------------------------------------------------------------------- conformance


@pytest.mark.parametrize(
    "make",
    [
        lambda: Streamer(letters, "a", 5),
        lambda: Streamer(["x", "y", "z"]),
        lambda: StochasticMux(finite_streams(), 2, 3, random_state=0),
        lambda: StochasticMux(finite_streams(), 2, 3, mode="exhaustive", random_state=0),
        lambda: ChainMux(finite_streams()[:3]),
        lambda: RoundRobinMux(finite_streams()[:3], mode="permuted_cycle", random_state=1),
    ],
    ids=["generator", "list", "mux", "exhaustive mux", "chain", "round robin"],
)
def test_cycle_resumes_at_every_position(make):
    assert_conforms(make(), 90, cycle=True)


def test_cycle_of_an_unseeded_stream_resumes_exactly_across_passes():
    """Each pass of an unseeded cycle draws its own seed; a checkpoint must pin those of the
    passes to come too, or the passes after the checkpointed one differ on resume."""
    assert_conforms(Streamer(draws, "a", 3), 12, cycle=True, seeded=False)
    mux = StochasticMux([Streamer(draws, "a", 3)], 1, None, mode="exhaustive")
    assert_conforms(mux, 12, cycle=True, seeded=False)


def test_call_and_cycle_take_a_state():
    stream = StochasticMux(finite_streams(), 2, 3, mode="exhaustive", random_state=0)
    full = list(stream(max_iter=70, cycle=True))
    it = stream(max_iter=70, cycle=True)
    head = list(itertools.islice(it, 33))
    state = roundtrip(it.state_dict())
    assert head + list(stream(max_iter=70, cycle=True, state=state)) == full
    assert head + list(stream.cycle(max_iter=70, state=state)) == full
    assert state["kind"] == "cycle" and "pass" in state

    once = list(stream(max_iter=30))
    it = stream(max_iter=30)
    head = list(itertools.islice(it, 11))
    state = roundtrip(it.state_dict())
    assert head + list(stream(max_iter=30, state=state)) == once
    assert head + list(stream(30, False, state)) == once


def test_cycle_load_state_dict_path():
    stream = ChainMux(finite_streams()[:2])
    it = stream.cycle(max_iter=40)
    advance(it, 13)
    state = roundtrip(it.state_dict())
    expected = list(it)
    loaded = stream.cycle(max_iter=40)
    loaded.load_state_dict(state)
    assert list(loaded) == expected
