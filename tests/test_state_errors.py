"""States that do not fit their pipeline raise StateError saying what differs: another kind of
stream, another shape (streamers, slots, rate, mode, dist, cache size, workers), another format
version, a load after the first ``next``, a map whose input cannot describe its position.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import advance, data, data_streams, finite_streams, letters, state_at

import pescador
import pescador.io
import pescador.maps
from pescador import (
    ChainMux,
    ParallelStreamer,
    RoundRobinMux,
    ShuffledMux,
    StateError,
    StochasticMux,
    Streamer,
)

# --------------------------------------------------------------------------- StateError


def stochastic(**kwargs):
    args = {"n_active": 3, "rate": 4, "random_state": 0, **kwargs}
    return StochasticMux(finite_streams(), args.pop("n_active"), args.pop("rate"), **args)


def test_a_map_over_a_plain_generator_cannot_checkpoint():
    batches = pescador.buffer_stream(({"x": np.zeros(1)} for _ in range(10)), 2)
    next(batches)
    with pytest.raises(StateError, match="cannot describe its position"):
        batches.state_dict()


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
