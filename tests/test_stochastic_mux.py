"""StochasticMux: its modes, pruning, weights, budgets, its activated copy, and the
:mod:`pescador.testing` conformance checks in every mode.

Statistical claims (shares, budget means) live in ``test_mux_stats.py``; hypothesis properties
in ``test_mux_properties.py``. Every test here is deterministic: either it checks something
that holds for every random outcome, or its failure probability under a correct library is
stated and negligible (< 1e-15).

Streamers are instrumented with a :class:`conftest.Tracker` passed as a generator-function
argument. Activation calls the generator function with the *same* argument objects (never
copies), so the tracker sees every activation: its start (first item requested), the number of
concurrently running activations of each streamer (``try``/``finally``) and how many items each
one produced.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

from conftest import (
    DISTS,
    MODES,
    WEIGHTS,
    Tracker,
    assert_conforms,
    endless,
    finite_streams,
    letters,
    random_streams,
    tracked,
    tracked_streams,
)
from pescador import ChainMux, ShuffledMux, StochasticMux, Streamer
from pescador.testing import assert_proportions, checkpoint_positions

# --------------------------------------------------------------------------- modes


@pytest.mark.parametrize("n_active", [1, 2, 4])
@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("seed", range(3))
def test_exhaustive_finite_sources_each_activated_once(n_active, dist, seed):
    tracker = Tracker()
    streams = tracked_streams(4, tracker, n=3)
    mux = StochasticMux(streams, n_active, None, mode="exhaustive", dist=dist, random_state=seed)
    items = list(mux)
    assert sorted(tracker.starts) == [0, 1, 2, 3]
    assert collections.Counter(items) == {0: 3, 1: 3, 2: 3, 3: 3}
    assert sum(tracker.running.values()) == 0  # every activation finished


@pytest.mark.parametrize("n_active", [1, 3])
@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("seed", range(3))
def test_exhaustive_with_rate_on_endless_sources_ends(n_active, dist, seed):
    tracker = Tracker()
    mux = StochasticMux(
        tracked_streams(5, tracker), n_active, 3, mode="exhaustive", dist=dist, random_state=seed
    )
    items = list(mux)  # endless sources: only the rate can end each activation
    assert sorted(tracker.starts) == [0, 1, 2, 3, 4]
    # each activation delivered its whole budget (>= 1) and nothing else was pulled
    assert sorted(i for i, _ in tracker.produced) == [0, 1, 2, 3, 4]
    assert all(k >= 1 for _, k in tracker.produced)
    assert len(items) == sum(k for _, k in tracker.produced)
    if dist == "constant":
        assert items.count(0) == 3 and len(items) == 15


def test_exhaustive_rate_truncates_each_streamer_once():
    """As documented: rate=2, constant, three 4-letter streams -> 6 items, two from each."""
    mux = StochasticMux(
        [Streamer("aaaa"), Streamer("bbbb"), Streamer("cccc")],
        2,
        2,
        mode="exhaustive",
        dist="constant",
        random_state=7,
    )
    for _ in range(2):
        out = list(mux)
        assert sorted(out) == list("aabbcc")


@pytest.mark.parametrize("n_active", [1, 2, 3])
@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("rate", [1, 2.5, None])
def test_single_active_never_runs_two_copies(n_active, dist, rate):
    tracker = Tracker()
    n = 4 if rate is None else None  # finite sources when there is no rate
    mux = StochasticMux(
        tracked_streams(4, tracker, n=n),
        n_active,
        rate,
        mode="single_active",
        dist=dist,
        random_state=11,
    )
    assert len(list(mux.iterate(max_iter=600))) == 600
    # >= 150 refills, each missing a given streamer with probability <= 3/4: P(fail) < 1e-18
    assert set(tracker.max_running) == {0, 1, 2, 3}
    assert max(tracker.max_running.values()) == 1
    assert len(tracker.starts) > 4  # streamers were re-activated


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n_active", [1, 2])
def test_rate_none_first_active_set_is_permanent(mode, n_active):
    for seed in range(4):
        tracker = Tracker()
        mux = StochasticMux(
            tracked_streams(4, tracker), n_active, None, mode=mode, random_state=seed
        )
        items = list(mux.iterate(max_iter=500))
        assert len(items) == 500
        assert len(tracker.starts) == n_active
        assert set(items) <= set(tracker.starts)
        if mode != "with_replacement":
            assert len(set(tracker.starts)) == n_active


@pytest.mark.parametrize("mode", ["with_replacement", "single_active"])
def test_rate_none_finite_sources_are_replaced(mode):
    mux = StochasticMux(
        [Streamer("ab"), Streamer("cd"), Streamer("ef")], 2, None, mode=mode, random_state=2
    )
    assert len(list(mux.iterate(max_iter=300))) == 300


@pytest.mark.parametrize("mode", ["with_replacement", "single_active"])
@pytest.mark.parametrize("dist", DISTS)
def test_infinite_modes_yield_exactly_max_iter(mode, dist):
    mux = StochasticMux(
        [Streamer("abc"), Streamer("d"), Streamer([])], 2, 2, mode=mode, dist=dist, random_state=5
    )
    for n in (0, 1, 7, 250):
        assert len(list(mux.iterate(max_iter=n))) == n
    assert len(list(mux(max_iter=33))) == 33
    assert len(list(mux.cycle(max_iter=33))) == 33


@pytest.mark.parametrize("prune", [True, 1, "yes", 2.5, [0]])
@pytest.mark.parametrize("mode", ["with_replacement", "single_active"])
def test_any_truthy_prune_drops_empty_streamer(prune, mode):
    """A pruned streamer is activated once and never again (also in single_active)."""
    for seed in range(3):
        tracker = Tracker()
        streams = [Streamer(tracked, 0, tracker, 0), Streamer(tracked, 1, tracker)]
        mux = StochasticMux(
            streams,
            1,
            2,
            mode=mode,
            prune_empty_streams=prune,
            dist="constant",
            random_state=seed,
        )
        items = list(mux.iterate(max_iter=300))
        assert items == [1] * 300
        # 150 refills, each a chance to draw streamer 0 (151 activations if the stationary
        # start left one item in the first)
        assert tracker.count(1) in (150, 151)
        assert tracker.count(0) <= 1


@pytest.mark.parametrize("prune", [False, 0, None, ""])
@pytest.mark.parametrize("mode", ["with_replacement", "single_active"])
def test_falsy_prune_keeps_empty_streamer(prune, mode):
    """Without pruning the empty streamer keeps being drawn (P(never) <= 2**-100)."""
    tracker = Tracker()
    streams = [Streamer(tracked, 0, tracker, 0), Streamer(tracked, 1, tracker)]
    mux = StochasticMux(
        streams, 1, 2, mode=mode, prune_empty_streams=prune, dist="constant", random_state=0
    )
    items = list(mux.iterate(max_iter=400))
    assert items == [1] * 400
    # each of the >= 200 refills picks streamer 0 with probability 1/2
    assert tracker.count(0) >= 2


def test_exhaustive_prune_irrelevant():
    for prune in (True, False):
        tracker = Tracker()
        streams = [Streamer(tracked, 0, tracker, 0), Streamer(tracked, 1, tracker, 5)]
        mux = StochasticMux(
            streams, 1, None, mode="exhaustive", prune_empty_streams=prune, random_state=1
        )
        assert list(mux) == [1] * 5
        assert sorted(tracker.starts) == [0, 1]


# --------------------------------------------------------------------------- weights


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("rate", [None, 2])
@pytest.mark.parametrize("n_active", [1, 2])
def test_zero_weight_streamer_never_activated(mode, rate, n_active):
    for seed in range(3):
        tracker = Tracker()
        n = 3 if rate is None else None
        mux = StochasticMux(
            tracked_streams(4, tracker, n=n),
            n_active,
            rate,
            weights=[1.0, 0.0, 2.0, 0.0],
            mode=mode,
            random_state=seed,
        )
        items = list(mux.iterate(max_iter=300))
        assert set(tracker.starts) <= {0, 2}
        assert set(items) <= {0, 2}
        if mode == "exhaustive":
            assert sorted(tracker.starts) == [0, 2]
        else:
            assert len(items) == 300


@pytest.mark.parametrize("seed", range(20))
def test_zero_weight_never_stalls_the_mux(seed):
    """3.0 activated the weight-0 streamer half the time and then yielded nothing (#161)."""
    mux = StochasticMux(
        [Streamer("abc"), Streamer("xyz")], 1, None, weights=[1, 0], random_state=seed
    )
    assert list(mux.iterate(max_iter=3)) == list("abc")
    shuffled = ShuffledMux([Streamer("abc"), Streamer("xyz")], weights=[0, 1], random_state=seed)
    assert set(shuffled.iterate(max_iter=30)) == set("xyz")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dist", DISTS)
def test_integer_weights_same_as_float_weights(mode, dist):
    def run(weights):
        streams = [Streamer(letters, c, 6) for c in "abcd"]
        mux = StochasticMux(streams, 2, 3, weights=weights, mode=mode, dist=dist, random_state=4)
        return list(mux.iterate(max_iter=60))

    expected = run([1.0, 2.0, 3.0, 4.0])
    assert run([1, 2, 3, 4]) == expected
    assert run(np.array([1, 2, 3, 4], dtype=np.int32)) == expected
    assert run((1, 2, 3, 4)) == expected


def test_exhaustive_zero_weight_gives_first_stream_exactly():
    """As in pescador 3.0: exhaustive, weights [1.0, 0.0], n_active=2, rate=256."""
    first, second = "a" * 100, "b" * 100
    for seed in range(5):
        mux = StochasticMux(
            [Streamer(first), Streamer(second)],
            2,
            256,
            weights=[1.0, 0.0],
            mode="exhaustive",
            random_state=seed,
        )
        assert "".join(mux) == first


def test_exhaustive_half_weight_interleaves():
    """As in pescador 3.0: with [1.0, 0.5] the output is not just the first stream then the second.

    Both streams are active from the start; the first 100 items all come from stream 0 with
    probability (2/3)**100 < 3e-18.
    """
    first, second = "a" * 100, "b" * 100
    mux = StochasticMux(
        [Streamer(first), Streamer(second)],
        2,
        256,
        weights=[1.0, 0.5],
        mode="exhaustive",
        random_state=0,
    )
    out = "".join(mux)
    assert sorted(out) == sorted(first + second)
    assert out != first + second


def test_exhaustive_tiny_weight_comes_last():
    """As in pescador 3.0: [1e10, 1e-10] -> the first stream, then the second (tiny one kept).

    Each of the first 100 draws picks the tiny slot with probability 1e-20.
    """
    first, second = "a" * 100, "b" * 100
    for seed in range(5):
        mux = StochasticMux(
            [Streamer(first), Streamer(second)],
            2,
            256,
            weights=[1e10, 1e-10],
            mode="exhaustive",
            random_state=seed,
        )
        assert "".join(mux) == first + second


# --------------------------------------------------------------------------- no waste
# Every item a source computes is delivered: an activation ended by its budget is not pulled
# once more to find out.


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dist", DISTS)
def test_rate_limited_activation_computes_exactly_its_items(mode, dist):
    tracker = Tracker()
    mux = StochasticMux(tracked_streams(6, tracker), 3, 2.5, mode=mode, dist=dist, random_state=8)
    it = mux.iterate(max_iter=500)
    items = list(it)
    it.close()
    # every item computed by a source was delivered: no extra pulls anywhere
    assert len(items) == sum(k for _, k in tracker.produced)
    assert all(k >= 1 for _, k in tracker.produced)
    if dist == "constant":
        # every activation ended by its budget computed exactly ceil(2.5) = 3 items; only
        # the (at most 3) activations of the stationary start, with a budget partly used up,
        # and the (at most 3) closed by the end of the iteration may be shorter
        assert sum(k != 3 for _, k in tracker.produced) <= 6


# --------------------------------------------------------------------------- the activated copy


def test_stochastic_context_manager_attributes():
    mux = StochasticMux(
        [Streamer(endless, i) for i in range(4)], 2, 5, weights=[1, 2, 3, 4], random_state=0
    )
    with mux as active:
        assert mux.active == 1
        assert active.is_activated_copy
        assert len(active.streams_) == 2
        idxs = np.asarray(active.stream_idxs_)
        assert idxs.shape == (2,) and set(idxs) <= {0, 1, 2, 3}
        weights = np.asarray(active.stream_weights_, dtype=float)
        # each slot's weight is its streamer's weight, up to normalisation
        np.testing.assert_allclose(weights / weights.sum(), (idxs + 1) / (idxs + 1).sum())
        np.testing.assert_array_equal(active.stream_counts_, [0, 0])
        out = list(active.iterate(max_iter=3))
        assert len(out) == 3 and set(out) <= {0, 1, 2, 3}
        assert 0 <= sum(active.stream_counts_) <= 3
    assert mux.active == 0


def test_originals_active_counts_unchanged_inside_mux():
    """As in pescador 3.0: only the mux's own ``active`` changes."""
    streams = [Streamer(endless, i) for i in range(3)]
    mux = StochasticMux(streams, 2, 3, random_state=0)
    it = mux.iterate()
    for _ in range(20):
        next(it)
        assert mux.active == 1
        assert [s.active for s in streams] == [0, 0, 0]
    it.close()
    assert mux.active == 0


# --------------------------------------------------------------------------- conformance
# The pescador.testing checks, through assert_conforms (conftest.py): restartable, resumable
# at every position (JSON states), and the proportions of items.


@pytest.mark.parametrize("rate", [None, 3, 2.5])
@pytest.mark.parametrize("prune", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("mode", MODES)
def test_stochastic_mux_resumes_at_every_position(mode, dist, weighted, prune, rate):
    mux = StochasticMux(
        finite_streams(),
        3,
        rate,
        weights=WEIGHTS if weighted else None,
        mode=mode,
        dist=dist,
        prune_empty_streams=prune,
        random_state=5,
    )
    assert_conforms(mux, 60)


@pytest.mark.parametrize(
    ("mode", "n_active"),
    [(mode, n) for mode in MODES for n in (1, 7)] + [("with_replacement", 12)],
)
def test_stochastic_mux_resumes_with_any_working_set(mode, n_active):
    for rate, dist in [(None, "binomial"), (1, "poisson"), (4, "binomial"), (0.5, "constant")]:
        mux = StochasticMux(finite_streams(), n_active, rate, mode=mode, dist=dist, random_state=1)
        assert_conforms(mux, 50)


@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("mode", ["with_replacement", "single_active"])
def test_stochastic_mux_of_random_generators_over_a_long_run(mode, dist):
    """ACTIVATION_RNG streams (so each activation's seed must be restored), 2000 items,
    checkpoints at 0, 2000 and 23 random positions."""
    for weights in (None, [1, 2, 3, 4, 5, 6, 7]):
        mux = StochasticMux(
            random_streams(), 3, 4, weights=weights, mode=mode, dist=dist, random_state=5
        )
        assert_conforms(mux, 2000, positions=checkpoint_positions(25, 2000)[1:])


def test_unseeded_mux_resumes_its_own_iteration():
    """An unseeded mux takes fresh entropy per iteration; its state records it."""
    for mode in ("with_replacement", "single_active"):
        mux = StochasticMux(random_streams(), 3, 4, mode=mode)
        assert_conforms(mux, 300, positions=range(1, 301, 7), seeded=False)


def test_stochastic_mux_with_many_streamers_switches_to_a_sum_tree_and_resumes():
    """Weighted pools switch representation as streamers are pruned; the state says which."""
    weights = np.random.default_rng(0).uniform(0.1, 1.0, 300)
    streams = [Streamer(letters, f"s{i}-", i % 3) for i in range(300)]  # a third are empty
    mux = StochasticMux(streams, 8, 2, weights=weights, random_state=3)
    assert_conforms(mux, 400, positions=range(1, 401, 3))


@pytest.mark.parametrize(("mode", "n_active"), [("with_replacement", 2), ("single_active", 1)])
def test_stochastic_mux_item_shares_follow_the_weights(mode, n_active):
    """In the long run streamer ``i`` gives ``w_i / sum(w)`` of the items (in single_active
    mode with one slot: with more, a running streamer cannot be drawn for another slot). Items
    come in runs of about ``rate``, so ``correlation = 2 * rate``, the rule of thumb of
    assert_proportions; the deviation allowed is then 0.056, about 20 times the standard
    deviation of the shares."""
    streams = [Streamer(endless, t) for t in "abc"]
    mux = StochasticMux(streams, n_active, 8, weights=[1, 2, 1], mode=mode, random_state=4)
    expected = {"a": 0.25, "b": 0.5, "c": 0.25}
    assert_proportions(mux, None, expected, n=40_000, correlation=16)


def test_exhaustive_stochastic_mux_item_shares_are_equal_whatever_the_weights():
    """Each pass activates every streamer once, with a budget of mean ``rate`` whatever its
    weight (the weights order the activations), so over many passes every streamer gives the
    same share. The mux is unseeded inside a seeded ChainMux that cycles it, so each pass has a
    seed of its own (a seeded mux would replay one pass)."""
    streams = [Streamer(endless, t) for t in "abc"]
    mux = StochasticMux(streams, 2, 8, weights=[1, 2, 1], mode="exhaustive", dist="poisson")
    passes = ChainMux([mux], mode="cycle", random_state=4)
    assert_proportions(passes, None, {"a": 1, "b": 1, "c": 1}, n=40_000, correlation=16)
