"""The arguments of the four muxes: a bad one fails at construction with a PescadorError naming
the parameter and its value (not later, with a numpy error), and the caller's objects (weights,
RNGs) are never modified.
"""

from __future__ import annotations

import numpy as np
import pytest

import pescador
from conftest import DISTS, Tracker, tracked_streams
from pescador import ChainMux, PescadorError, RoundRobinMux, ShuffledMux, StochasticMux, Streamer

# --------------------------------------------------------------------------- helpers


def make_mux(kind, streams, random_state=None, **kw):
    if kind == "stochastic":
        kw.setdefault("n_active", 2)
        kw.setdefault("rate", 3)
        return StochasticMux(streams, random_state=random_state, **kw)
    if kind == "shuffled":
        return ShuffledMux(streams, random_state=random_state, **kw)
    if kind == "roundrobin":
        return RoundRobinMux(streams, random_state=random_state, **kw)
    return ChainMux(streams, random_state=random_state, **kw)


KINDS = ("stochastic", "shuffled", "roundrobin", "chain")


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("cls", [StochasticMux, ShuffledMux, RoundRobinMux])
def test_empty_collection_rejected(cls):
    args = (1, 2) if cls is StochasticMux else ()
    with pytest.raises(PescadorError, match="empty collection"):
        cls([], *args)


@pytest.mark.parametrize("mode", ["exhaustive", "cycle"])
def test_empty_chain_yields_nothing(mode):
    assert list(ChainMux([], mode=mode)) == []
    assert list(ChainMux([], mode=mode).iterate(max_iter=5)) == []


@pytest.mark.parametrize(
    "make",
    [
        lambda mode: StochasticMux([Streamer("a")], 1, 2, mode=mode),
        lambda mode: RoundRobinMux([Streamer("a")], mode=mode),
        lambda mode: ChainMux([Streamer("a")], mode=mode),
    ],
    ids=["stochastic", "roundrobin", "chain"],
)
@pytest.mark.parametrize("mode", ["foo", None, "", "Exhaustive", 1])
def test_bad_mode_rejected_naming_parameter(make, mode):
    with pytest.raises(PescadorError, match="mode") as info:
        make(mode)
    assert repr(mode) in str(info.value)


def test_mode_names_are_per_mux():
    with pytest.raises(PescadorError, match="mode"):
        StochasticMux([Streamer("a")], 1, 2, mode="cycle")
    with pytest.raises(PescadorError, match="mode"):
        RoundRobinMux([Streamer("a")], mode="with_replacement")
    with pytest.raises(PescadorError, match="mode"):
        ChainMux([Streamer("a")], mode="permuted_cycle")
    # and the valid ones, positionally as in 3.0
    RoundRobinMux([Streamer("a")], "permuted_cycle")
    ChainMux([Streamer("a")], "cycle")


@pytest.mark.parametrize("rate", [2, None])
@pytest.mark.parametrize("dist", ["foo", None, "Binomial", "uniform"])
def test_bad_dist_rejected(dist, rate):
    """dist is validated even when rate=None makes it unused: a typo fails at once."""
    with pytest.raises(PescadorError, match="dist") as info:
        StochasticMux([Streamer("a")], 1, rate, dist=dist)
    assert repr(dist) in str(info.value)


@pytest.mark.parametrize("n_active", [0, -1, 1.5, None, "2", True, [2]])
def test_bad_n_active_rejected(n_active):
    with pytest.raises(PescadorError, match="n_active") as info:
        StochasticMux([Streamer("a"), Streamer("b")], n_active, 2)
    assert repr(n_active) in str(info.value)


@pytest.mark.parametrize("n_active", [0, np.int64(0)])
def test_n_active_zero_says_how_to_migrate(n_active):
    """pescador 3.0 accepted 0 and produced nothing (docs/compat.md): the error says what to do."""
    with pytest.raises(PescadorError, match=r"max\(1, n_active\)"):
        StochasticMux([Streamer("a"), Streamer("b")], n_active, 2)


@pytest.mark.parametrize("n_active", [1, 2, np.int64(2), np.int32(1)])
def test_good_n_active_accepted(n_active):
    mux = StochasticMux([Streamer("ab"), Streamer("cd")], n_active, 2, random_state=0)
    assert len(list(mux.iterate(max_iter=10))) == 10


@pytest.mark.parametrize("mode", ["single_active", "exhaustive"])
def test_n_active_above_n_streams_rejected_without_replacement(mode):
    with pytest.raises(PescadorError, match="n_active"):
        StochasticMux([Streamer("a"), Streamer("b")], 3, 2, mode=mode)


def test_n_active_above_n_streams_allowed_with_replacement():
    """Five slots over two streamers run several copies of a streamer at once.

    With ``rate=None`` and endless sources the five first activations run forever; once every
    slot has been pulled (all but ``5 * (4/5)**400 < 1e-38`` of the time) five activations of
    two streamers are running, so one streamer runs at least three copies.
    """
    tracker = Tracker()
    mux = StochasticMux(tracked_streams(2, tracker), 5, None, random_state=3)
    assert len(list(mux.iterate(max_iter=400))) == 400
    assert len(tracker.starts) == 5
    assert max(tracker.max_running.values()) >= 3

    # with a rate, activations are replaced: both streamers serve (P(not) = 2**-99)
    mux = StochasticMux(tracked_streams(2, Tracker()), 5, 4, dist="constant", random_state=3)
    items = list(mux.iterate(max_iter=400))
    assert len(items) == 400 and set(items) == {0, 1}


@pytest.mark.parametrize("dist", ["binomial", "poisson"])
@pytest.mark.parametrize("rate", [0.5, 0, -1, 0.999, float("nan"), float("inf"), "4", True])
def test_bad_rate_rejected(dist, rate):
    with pytest.raises(PescadorError, match="rate"):
        StochasticMux([Streamer("a")], 1, rate, dist=dist)


@pytest.mark.parametrize("rate", [0, -1, -0.5, float("nan"), float("inf"), float("-inf"), "4"])
def test_bad_constant_rate_rejected(rate):
    with pytest.raises(PescadorError, match="rate"):
        StochasticMux([Streamer("a")], 1, rate, dist="constant")


@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("rate", [None, 1, 1.0, 2.5, np.float32(3), np.int64(4)])
def test_good_rates_accepted(dist, rate):
    mux = StochasticMux([Streamer("abc"), Streamer("de")], 2, rate, dist=dist, random_state=0)
    assert len(list(mux.iterate(max_iter=20))) == 20


def test_constant_rate_below_one_gives_one_item_per_activation():
    tracker = Tracker()
    mux = StochasticMux(tracked_streams(3, tracker), 2, 0.5, dist="constant", random_state=0)
    assert len(list(mux.iterate(max_iter=50))) == 50
    # every activation but the two closed at the end gave exactly ceil(0.5) = 1 item
    assert all(k == 1 for _, k in tracker.produced)
    assert len(tracker.starts) == 50


@pytest.mark.parametrize("cls", [StochasticMux, ShuffledMux])
@pytest.mark.parametrize(
    "weights",
    [
        [1.0],
        [1.0, 2.0, 3.0],
        [[1.0, 2.0]],
        [0.0, 0.0],
        [np.nan, 1.0],
        [np.inf, 1.0],
        [-np.inf, 1.0],
        [1.0, -0.5],
        [-1.0, -1.0],
        ["a", "b"],
    ],
)
def test_bad_weights_rejected_at_construction(cls, weights):
    streams = [Streamer("ab"), Streamer("cd")]
    args = (1, 2) if cls is StochasticMux else ()
    with pytest.raises(PescadorError, match="weights"):
        cls(streams, *args, weights=weights)


def test_weights_checked_even_when_n_active_is_bad():
    with pytest.raises(PescadorError):
        StochasticMux([Streamer("a")], None, 2, weights=[1.0, 2.0])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("random_state", ["foo", 1.5, -1, object(), [1, 2]])
def test_bad_random_state_rejected(kind, random_state):
    with pytest.raises(PescadorError, match="random_state"):
        make_mux(kind, [Streamer("a")], random_state=random_state)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bad", [5, None, 1.5])
def test_bad_streamer_element_rejected(kind, bad):
    with pytest.raises(PescadorError):
        make_mux(kind, [Streamer("a"), bad])


@pytest.mark.parametrize("kind", KINDS)
def test_plain_iterables_are_wrapped(kind):
    mux = make_mux(kind, ["ab", ["c"], ("d", "e")], random_state=0)
    assert all(isinstance(s, Streamer) for s in mux.streamers)
    assert mux.n_streams == 3


def test_base_mux_is_abstract():
    base = pescador.BaseMux([Streamer("a")])
    assert base.n_streams == 1
    with pytest.raises(PescadorError):
        list(base)


# --------------------------------------------------------------------------- the caller's weights


@pytest.mark.parametrize("cls", [StochasticMux, ShuffledMux])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_callers_weights_never_modified(cls, dtype):
    weights = np.array([1, 2, 5], dtype=dtype)
    original = weights.copy()
    args = (2, 3) if cls is StochasticMux else ()
    mux = cls([Streamer("ab"), Streamer("cd"), Streamer("ef")], *args, weights=weights)
    list(mux.iterate(max_iter=50))
    assert weights.dtype == dtype
    np.testing.assert_array_equal(weights, original)
    assert mux.weights is not weights
    weights[0] = 1000  # and later changes by the caller do not reach the mux
    assert mux.weights[0] != 1000


def test_weights_list_unmodified():
    weights = [3, 1]
    StochasticMux([Streamer("a"), Streamer("b")], 1, 2, weights=weights)
    assert weights == [3, 1]


# --------------------------------------------------------------------------- mux.weights (3.0)


@pytest.mark.parametrize("cls", [StochasticMux, ShuffledMux])
def test_weights_attribute_is_normalised_as_in_3_0(cls):
    args = (2, 3) if cls is StochasticMux else ()
    streams = [Streamer("ab"), Streamer("cd"), Streamer("ef"), Streamer("gh")]
    mux = cls(streams, *args, weights=[1, 2, 0, 5])
    assert mux.weights.dtype == np.float64
    np.testing.assert_allclose(mux.weights, [1 / 8, 2 / 8, 0, 5 / 8])
    uniform = cls(streams, *args)
    np.testing.assert_allclose(uniform.weights, [0.25] * 4)
    assert uniform.weights.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        mux.weights[0] = 3.0  # read-only: assign a new vector instead
    mux.weights = [0, 0, 1, 1]
    np.testing.assert_allclose(mux.weights, [0, 0, 0.5, 0.5])
    assert set("".join(mux.iterate(max_iter=20))) <= set("efgh")
    with pytest.raises(PescadorError, match="weights"):
        mux.weights = [1, -1, 0, 0]
