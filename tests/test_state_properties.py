"""Property-based tests (hypothesis) of checkpoint and resume: random pipelines, long runs,
random checkpoint positions, and chains of resumes (a resumed iteration checkpointed again).

The property: for any pipeline and any increasing positions ``p1 < p2 < ...``, running to
``p1``, checkpointing (JSON round trip), resuming, running on to ``p2``, checkpointing, ... gives
exactly the uninterrupted sequence. It holds for every random outcome, so these tests have no
false-failure probability. Checkpoints are taken on started iterators (positions >= 1); the
state of an unstarted iterator is tested in ``test_checkpoint.py``.

The ``slow`` sweeps checkpoint at *every* position of longer runs, for every mux, mode, dist,
weights, pruning and rate, over several seeds.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pescador
from conftest import DISTS, MODES, draws, roundtrip
from pescador import (
    ACTIVATION_RNG,
    ChainMux,
    RoundRobinMux,
    ShuffledMux,
    StochasticMux,
    Streamer,
)
from pescador.testing import assert_resumable, checkpoint_positions, items_equal

SETTINGS = settings(max_examples=40, deadline=None)

seeds = st.integers(0, 2**32 - 1)


def random_data(tag, n, rng=ACTIVATION_RNG):
    """Dicts of arrays made of the items of ``draws``."""
    for tag_, i, r in draws(tag, n, rng):
        yield {"X": np.array([i, r]), "tag": tag_}


def streams_of(lengths):
    """A streamer of ``draws`` per length (None: endless), tagged by index."""
    return [Streamer(draws, k, n) for k, n in enumerate(lengths)]


def stochastic_mux(lens, n_active, rate, weights, mode, dist, prune, seed):
    return StochasticMux(
        streams_of(lens),
        n_active,
        rate,
        weights=weights,
        mode=mode,
        dist=dist,
        prune_empty_streams=prune,
        random_state=seed,
    )


def resumed_in_pieces(stream, total, positions, cycle=False):
    """The items of ``total`` taken in pieces: a new iteration from a JSON state at each
    position."""
    start = stream.cycle if cycle else stream.iterate
    items, state = [], None
    for stop in [*positions, total]:
        it = start(max_iter=total, state=state)
        items += list(itertools.islice(it, stop - len(items)))
        state = roundtrip(it.state_dict())
        it.close()
    items += list(start(max_iter=total, state=state))
    return items


def check_pieces(stream, total, positions, cycle=False):
    full = list((stream.cycle if cycle else stream.iterate)(max_iter=total))
    got = resumed_in_pieces(stream, total, positions, cycle)
    assert items_equal(got, full), f"positions {positions}"


@st.composite
def positions_in(draw, total, max_size=5):
    chosen = draw(st.lists(st.integers(1, max(1, total)), min_size=1, max_size=max_size))
    return sorted(set(chosen))


lengths = st.lists(st.one_of(st.none(), st.integers(0, 12)), min_size=1, max_size=8)


@st.composite
def stochastic_muxes(draw):
    lens = draw(lengths)
    n = len(lens)
    mode = draw(st.sampled_from(MODES))
    dist = draw(st.sampled_from(DISTS))
    max_active = n if mode != "with_replacement" else n + 3
    n_active = draw(st.integers(1, max_active))
    rate = draw(
        st.one_of(
            st.none(),
            st.integers(1, 20),
            st.floats(1.0, 20.0) if dist != "constant" else st.floats(0.1, 20.0),
        )
    )
    weights = draw(st.one_of(st.none(), st.lists(st.integers(0, 4), min_size=n, max_size=n)))
    if weights is not None and not any(weights):
        weights[0] = 1
    prune = draw(st.booleans())
    return stochastic_mux(lens, n_active, rate, weights, mode, dist, prune, draw(seeds))


@SETTINGS
@given(stochastic_muxes(), st.integers(1, 2000), st.data())
def test_stochastic_mux_resumes_in_pieces(mux, total, pick):
    check_pieces(mux, total, pick.draw(positions_in(total)))


@SETTINGS
@given(
    lengths,
    st.one_of(st.none(), st.lists(st.integers(1, 4), min_size=8, max_size=8)),
    seeds,
    st.integers(1, 1500),
    st.data(),
)
def test_shuffled_mux_resumes_in_pieces(lens, weights, seed, total, pick):
    mux = ShuffledMux(
        streams_of(lens),
        weights=None if weights is None else weights[: len(lens)],
        random_state=seed,
    )
    check_pieces(mux, total, pick.draw(positions_in(total)))


@SETTINGS
@given(
    st.lists(st.integers(0, 12), min_size=1, max_size=8),
    st.sampled_from(["exhaustive", "cycle", "permuted_cycle"]),
    seeds,
    st.integers(1, 400),
    st.data(),
)
def test_round_robin_mux_resumes_in_pieces(lens, mode, seed, total, pick):
    mux = RoundRobinMux(streams_of(lens), mode=mode, random_state=seed)
    check_pieces(mux, total, pick.draw(positions_in(total)))


@SETTINGS
@given(
    st.lists(st.integers(0, 12), min_size=1, max_size=8),
    st.sampled_from(["exhaustive", "cycle"]),
    st.booleans(),
    seeds,
    st.integers(1, 300),
    st.data(),
)
def test_chain_mux_resumes_in_pieces(lens, mode, lazily, seed, total, pick):
    streams = streams_of(lens)

    def produce():
        yield from streams

    mux = ChainMux(produce if lazily else streams, mode=mode, random_state=seed)
    check_pieces(mux, total, pick.draw(positions_in(total)))


@SETTINGS
@given(stochastic_muxes(), st.integers(1, 400), st.data())
def test_cycle_resumes_in_pieces(mux, total, pick):
    check_pieces(mux, total, pick.draw(positions_in(total)), cycle=True)


@st.composite
def trees(draw, depth=2):
    """A small random tree of muxes over finite and endless ACTIVATION_RNG streamers."""
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        lens = draw(st.lists(st.one_of(st.none(), st.integers(0, 8)), min_size=1, max_size=4))
        return streams_of(lens)
    children = draw(st.lists(trees(depth=depth - 1), min_size=1, max_size=3))
    kind = draw(st.sampled_from(["stochastic", "shuffled", "round robin", "chain"]))
    muxes = []
    for streams in children:
        if kind == "stochastic":
            muxes.append(StochasticMux(streams, draw(st.integers(1, 3)), draw(st.integers(1, 6))))
        elif kind == "shuffled":
            muxes.append(ShuffledMux(streams))
        elif kind == "round robin":
            muxes.append(RoundRobinMux(streams, mode="permuted_cycle"))
        else:
            muxes.append(ChainMux(streams, mode="cycle"))
    return muxes


@SETTINGS
@given(trees(), seeds, st.integers(1, 600), st.data())
def test_trees_of_muxes_resume_in_pieces(children, seed, total, pick):
    top = StochasticMux(children, 2, 5, random_state=seed)
    check_pieces(top, total, pick.draw(positions_in(total)))


@SETTINGS
@given(
    st.lists(st.integers(0, 12), min_size=1, max_size=5),
    st.integers(1, 5),
    st.booleans(),
    st.integers(1, 6),
    st.floats(0.05, 1.0),
    seeds,
    st.integers(1, 150),
    st.data(),
)
def test_maps_resume_in_pieces(lens, size, partial, n_cache, prob, seed, total, pick):
    mux = StochasticMux(
        [Streamer(random_data, k, n) for k, n in enumerate(lens)], 2, 3, random_state=seed
    )
    batches = Streamer(pescador.buffer_stream, mux, size, partial=partial)
    check_pieces(batches, total, pick.draw(positions_in(total)))
    cached = Streamer(pescador.cache, mux, n_cache, prob, random_state=seed)
    check_pieces(cached, total, pick.draw(positions_in(total)))
    pairs = Streamer(pescador.keras_tuples, cached, "X", ["tag"])
    check_pieces(pairs, total, pick.draw(positions_in(total)))


@SETTINGS
@given(stochastic_muxes(), st.integers(1, 3000))
def test_state_stays_small(mux, total):
    """The state holds a constant amount per slot, whatever the number of items."""
    it = mux.iterate()
    for _ in itertools.islice(it, total):
        pass
    size = len(json.dumps(it.state_dict()))
    assert size < 1500 + 400 * mux.n_active


# --------------------------------------------------------------------------- slow sweeps
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("mode", MODES)
def test_every_position_of_every_stochastic_configuration(mode, dist, seed):
    lens = (5, 0, 9, None, 20, 1, 7)
    if mode == "exhaustive":
        lens = tuple(40 if n is None else n for n in lens)
    for weights in (None, (1, 2, 0, 3, 1, 0.5, 2)):
        for prune in (True, False):
            for rate in (None, 1, 2.5, 16):
                for n_active in (1, 3, 7):
                    mux = stochastic_mux(lens, n_active, rate, weights, mode, dist, prune, seed)
                    items = assert_resumable(mux, 150, positions=range(1, 151))
                    assert items == list(mux.iterate(max_iter=150))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_position_of_the_other_muxes_and_cycles(seed):
    lens = (5, 0, 9, 3, 20, 1, 7)
    streams = streams_of(lens)
    with_endless = streams_of((5, None, 9, None))
    for mux in [
        ShuffledMux(with_endless, random_state=seed),
        ShuffledMux(with_endless, weights=[1, 3, 0, 2], random_state=seed),
        *(
            RoundRobinMux(streams, mode=m, random_state=seed)
            for m in ("exhaustive", "cycle", "permuted_cycle")
        ),
        ChainMux(streams, random_state=seed),
        ChainMux(streams, mode="cycle", random_state=seed),
    ]:
        items = assert_resumable(mux, 300, positions=range(1, 301))
        assert items == list(mux.iterate(max_iter=300))
    for stream in [
        StochasticMux(streams, 2, 3, random_state=seed),
        StochasticMux(streams, 2, 3, mode="exhaustive", random_state=seed),
    ]:
        items = assert_resumable(stream, 300, positions=range(1, 301), cycle=True)
        assert items == list(stream.cycle(max_iter=300))
    # Unseeded (a Streamer has no seed of its own): resumes its own iteration, pass after pass.
    assert_resumable(Streamer(draws, "a", 7), 300, positions=range(1, 301), cycle=True)


@pytest.mark.slow
def test_random_positions_over_very_long_runs():
    """50 000 items, 30 random checkpoints each, for every mode."""
    positions = checkpoint_positions(31, 50_000)[1:]
    for mode in ("with_replacement", "single_active"):
        mux = StochasticMux(streams_of([None] * 50), 8, 16, mode=mode, random_state=3)
        items = assert_resumable(mux, 50_000, positions=positions)
        assert items == list(mux.iterate(max_iter=50_000))
    mux = StochasticMux(streams_of([60] * 500), 8, 16, mode="exhaustive", random_state=3)
    assert assert_resumable(mux, 50_000, positions=positions, cycle=True)
