"""Nothing hangs: every mux, in every mode, over streamers that yield nothing (or only
zero-weight ones with data) ends, when iterated and when cycled, instead of spinning forever.
"""

from __future__ import annotations

import pytest

from conftest import DISTS, MODES, letters, nothing
from pescador import ChainMux, RoundRobinMux, ShuffledMux, StochasticMux, Streamer

# --------------------------------------------------------------------------- sources


def empty_streams():
    return [
        Streamer([]),
        Streamer(nothing),
        Streamer(""),
        Streamer(letters, "x", 0),
        ChainMux([Streamer([])]),
    ]


def empty_source():
    yield Streamer([])
    yield Streamer(nothing)


def no_source():
    return
    yield  # pragma: no cover


# --------------------------------------------------------------------------- ends


@pytest.mark.timeout(20)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("prune", [True, False, 1, 0])
@pytest.mark.parametrize("rate", [None, 1, 3.5])
@pytest.mark.parametrize("dist", DISTS)
def test_stochastic_all_empty_ends(mode, prune, rate, dist):
    for n_active in (1, 3, 7):
        if mode != "with_replacement" and n_active > 5:
            continue
        mux = StochasticMux(
            empty_streams(),
            n_active,
            rate,
            mode=mode,
            prune_empty_streams=prune,
            dist=dist,
            random_state=n_active,
        )
        assert list(mux) == []
        assert list(mux.cycle()) == []
        assert list(mux(max_iter=10, cycle=True)) == []


@pytest.mark.timeout(10)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("prune", [True, False])
def test_stochastic_empty_plus_zero_weight_ends(mode, prune):
    """The only streamer with data has weight 0: nothing can be produced, so it ends."""
    mux = StochasticMux(
        [Streamer([]), Streamer("abc"), Streamer(nothing)],
        2,
        2,
        weights=[1, 0, 1],
        mode=mode,
        prune_empty_streams=prune,
        random_state=0,
    )
    assert list(mux) == []


@pytest.mark.timeout(10)
@pytest.mark.parametrize("weights", [None, [1, 2, 3, 4, 5], [0, 0, 1, 0, 0]])
def test_shuffled_all_empty_ends(weights):
    assert list(ShuffledMux(empty_streams(), weights=weights, random_state=0)) == []
    assert list(ShuffledMux(empty_streams(), weights=weights).cycle()) == []


@pytest.mark.timeout(10)
@pytest.mark.parametrize("mode", ["exhaustive", "cycle", "permuted_cycle"])
def test_roundrobin_all_empty_ends(mode):
    assert list(RoundRobinMux(empty_streams(), mode=mode, random_state=0)) == []
    assert list(RoundRobinMux(empty_streams(), mode=mode).cycle(max_iter=5)) == []


@pytest.mark.timeout(10)
@pytest.mark.parametrize("mode", ["exhaustive", "cycle"])
@pytest.mark.parametrize(
    "streamers", [empty_streams, lambda: [], lambda: empty_source, lambda: no_source]
)
def test_chain_all_empty_ends(mode, streamers):
    assert list(ChainMux(streamers(), mode=mode)) == []
    assert list(ChainMux(streamers(), mode=mode).cycle()) == []


@pytest.mark.timeout(10)
def test_nested_all_empty_ends():
    leaves = [
        StochasticMux(empty_streams(), 2, None, prune_empty_streams=False),
        ShuffledMux(empty_streams()),
        RoundRobinMux(empty_streams(), mode="cycle"),
        ChainMux(empty_streams(), mode="cycle"),
    ]
    for top in (
        StochasticMux(leaves, 2, 3, prune_empty_streams=False, mode="single_active"),
        StochasticMux(leaves, 6, 3, prune_empty_streams=0),
        ShuffledMux(leaves),
        RoundRobinMux(leaves, mode="permuted_cycle"),
        ChainMux(leaves, mode="cycle"),
    ):
        assert list(top.iterate()) == []
        assert list(top.cycle()) == []


@pytest.mark.timeout(10)
@pytest.mark.parametrize("mode", ["with_replacement", "single_active"])
def test_unpruned_mix_of_empty_and_data_keeps_going(mode):
    mux = StochasticMux(
        [*empty_streams(), Streamer("x")],
        2,
        2,
        mode=mode,
        prune_empty_streams=False,
        random_state=3,
    )
    assert list(mux.iterate(max_iter=200)) == ["x"] * 200
