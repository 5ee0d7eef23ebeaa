"""The private candidate pools behind StochasticMux (pescador/_pools.py).

:class:`CandidatePool` draws a streamer in proportion to its weight among the current
candidates: by index for uniform weights, by bisection of a fixed cumulative table otherwise,
rejecting excluded streamers, and after ``MAX_REJECTIONS`` rejections in one draw it switches
to a :class:`SumTree` for good. :class:`ExhaustiveOrder` fixes a weighted random order at the
start. These tests use the pools directly, with uniforms from a seeded numpy generator.

Statistical tests are chi-square tests at ``ALPHA = 1e-7`` on i.i.d. draws (every draw uses
fresh uniforms and the pool does not change between draws), with at least 200 expected draws
per category, where the chi-square approximation of the multinomial is accurate. Rejection
sampling followed by an exact fallback is exact: with rejection probability ``r`` per try,
``P(i) = w_i / W_c (1 - r**16) + r**16 w_i / W_c = w_i / W_c``. Each test states its
failure probability for a correct implementation (at most 1e-6).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from pescador.mux._pools import CandidatePool, ExhaustiveOrder, SumTree, pack_flags, unpack_flags

ALPHA = 1e-7


def uniforms(seed, n=1_000_000):
    """A callable returning the next of ``n`` seeded uniforms in [0, 1)."""
    return iter(np.random.default_rng(seed).random(n).tolist()).__next__


def constant(u):
    return lambda: u


def draw_counts(pool, n_draws, seed, n):
    uniform = uniforms(seed, 17 * n_draws + 100)
    return np.bincount([pool.draw(uniform) for _ in range(n_draws)], minlength=n)


def assert_follows(counts, weights, alpha=ALPHA):
    """Chi-square: ``counts`` over the positive ``weights`` follow them; zeros never drawn."""
    weights = np.asarray(weights, dtype=float)
    counts = np.asarray(counts)
    assert np.all(counts[weights == 0] == 0), counts
    positive = weights > 0
    expected = weights[positive] / weights[positive].sum() * counts.sum()
    assert expected.min() >= 200
    if positive.sum() > 1:
        assert stats.chisquare(counts[positive], expected).pvalue >= alpha, counts


def pool_weights(pool, n):
    """The weights of the pool's current candidates (0 for the others)."""
    return [pool.weights[i] if i in pool else 0.0 for i in range(n)]


# --------------------------------------------------------------------------- CandidatePool


@pytest.mark.parametrize(
    "weights",
    [None, [1.0] * 5, [1, 2, 3, 4], [0.5, 0.0, 2.0, 0.0, 7.5], [3, 3, 0, 3]],
    ids=["none", "ones", "ramp", "zeros", "equal-with-zero"],
)
def test_draws_follow_weights(weights):
    """P(false fail) <= 1e-7 (one chi-square test)."""
    n = 5 if weights is None else len(weights)
    pool = CandidatePool(weights, n)
    w = [1.0] * n if weights is None else weights
    assert len(pool) == sum(1 for x in w if x > 0)
    assert all((i in pool) == (w[i] > 0) for i in range(n))
    assert_follows(draw_counts(pool, 30_000, seed=1, n=n), w)
    assert pool.tree is None  # nothing excluded: never a rejection, never a switch


def test_exclude_and_include_membership():
    pool = CandidatePool([1, 2, 0, 4], 4)
    assert len(pool) == 3 and 2 not in pool
    pool.exclude(1)
    assert len(pool) == 2 and 1 not in pool
    pool.exclude(1)  # idempotent
    assert len(pool) == 2
    pool.include(1)
    assert len(pool) == 3 and 1 in pool
    pool.include(1)  # idempotent
    assert len(pool) == 3
    pool.include(2)  # a zero-weight streamer can never become a candidate
    assert len(pool) == 3 and 2 not in pool
    for i in (0, 1, 3):
        pool.exclude(i)
    assert len(pool) == 0


@pytest.mark.parametrize("weights", [None, [1, 2, 3, 4, 5, 6]])
def test_excluded_never_drawn_and_rest_follow_weights(weights):
    """P(false fail) <= 2e-7 (two chi-square tests)."""
    n = 6
    pool = CandidatePool(weights, n)
    pool.exclude(1)
    pool.exclude(4)
    assert_follows(draw_counts(pool, 30_000, seed=2, n=n), pool_weights(pool, n))
    pool.include(4)
    assert_follows(draw_counts(pool, 30_000, seed=3, n=n), pool_weights(pool, n))


def test_fallback_switch_after_max_rejections():
    """A draw that is rejected MAX_REJECTIONS times switches to the sum tree, for good."""
    pool = CandidatePool([100.0, 1.0, 2.0, 3.0], 4)
    pool.exclude(0)
    assert pool.tree is None
    # u = 0 always lands on streamer 0 in the table: every try is rejected
    assert pool.draw(constant(0.0)) == 1  # the tree's first candidate
    assert pool.tree is not None
    tree = pool.tree
    pool.draw(uniforms(4))
    assert pool.tree is tree  # stays switched


def test_fallback_needs_exactly_max_rejections():
    """Fewer rejections than MAX_REJECTIONS in one draw keep the table."""
    pool = CandidatePool([100.0, 1.0, 2.0, 3.0], 4)
    pool.exclude(0)
    # every try but the last lands on the excluded streamer
    values = iter([0.0] * (CandidatePool.MAX_REJECTIONS - 1) + [0.999])
    assert pool.draw(values.__next__) == 3
    assert pool.tree is None


def test_after_fallback_draws_follow_weights_and_track_membership():
    """P(false fail) <= 3e-7 (three chi-square tests)."""
    n = 5
    pool = CandidatePool([50.0, 1.0, 2.0, 3.0, 4.0], n)
    pool.exclude(0)
    pool.use_tree()
    assert pool.tree is not None
    assert_follows(draw_counts(pool, 30_000, seed=5, n=n), [0, 1, 2, 3, 4])
    pool.exclude(3)
    assert len(pool) == 3
    assert_follows(draw_counts(pool, 30_000, seed=6, n=n), [0, 1, 2, 0, 4])
    pool.include(0)
    pool.include(3)
    assert len(pool) == 5
    assert_follows(draw_counts(pool, 60_000, seed=7, n=n), [50, 1, 2, 3, 4])


def test_rejection_path_switches_and_stays_exact():
    """Heavy streamer checked out: draws switch to the tree and still follow the weights.

    Each try is rejected with probability 100/106, so 16 in a row happen with probability
    0.39 per draw: the switch happens (P(no switch in 200 draws) < 1e-40). Then one chi-square
    test: P(false fail) <= 1e-7.
    """
    n = 4
    pool = CandidatePool([100.0, 1.0, 2.0, 3.0], n)
    pool.exclude(0)
    counts = draw_counts(pool, 200, seed=8, n=n)
    assert counts[0] == 0
    assert pool.tree is not None
    assert_follows(draw_counts(pool, 30_000, seed=9, n=n), [0, 1, 2, 3])


def test_rejection_draws_before_switch_follow_weights():
    """Light exclusions: the table with rejection is exact. P(false fail) <= 1e-7.

    Streamer 0 (weight 1 of 16) is excluded; 16 rejections in a row have probability
    16**-16, so the table is used throughout.
    """
    n = 4
    pool = CandidatePool([1.0, 3.0, 5.0, 7.0], n)
    pool.exclude(0)
    assert_follows(draw_counts(pool, 30_000, seed=10, n=n), [0, 3, 5, 7])
    assert pool.tree is None


@pytest.mark.parametrize("switch", [False, True])
def test_tiny_weight_next_to_huge_is_never_lost(switch):
    pool = CandidatePool([1e10, 1e-10], 2)
    if switch:
        pool.use_tree()
    draw = uniforms(11)
    # P(drawing the tiny one while the huge one is in) = 1e-20 per draw
    assert all(pool.draw(draw) == 0 for _ in range(1000))
    for _ in range(3):
        pool.exclude(0)
        assert len(pool) == 1 and 1 in pool
        assert all(pool.draw(draw) == 1 for _ in range(1000))
        assert pool.draw(constant(0.0)) == 1
        assert pool.draw(constant(1 - 2**-53)) == 1
        pool.include(0)


def test_many_tiny_weights_next_to_huge():
    n = 9
    pool = CandidatePool([1e12] + [1e-9 * (i + 1) for i in range(n - 1)], n)
    pool.exclude(0)
    counts = draw_counts(pool, 40_000, seed=12, n=n)
    assert counts[0] == 0
    assert_follows(counts, [0] + [i + 1 for i in range(n - 1)])


# --------------------------------------------------------------------------- SumTree


def test_sum_tree_exact_after_removing_huge_weight():
    tree = SumTree([1e10, 1e-10, 0.0], [True, True, True])
    assert tree.tree[1] == 1e10 + 1e-10
    tree.set(0, 0.0)
    assert tree.tree[1] == 1e-10  # recomputed from the children: no drift
    assert tree.draw(constant(0.0)) == 1
    assert tree.draw(constant(1 - 2**-53)) == 1
    tree.set(1, 0.0)
    with pytest.raises(LookupError):
        tree.draw(constant(0.5))


def test_sum_tree_draws_follow_weights():
    """P(false fail) <= 1e-7 (one chi-square test)."""
    weights = [0.0, 1.0, 2.0, 0.0, 4.0, 8.0, 0.5]
    tree = SumTree(weights, [True, True, True, True, True, True, False])
    uniform = uniforms(13)
    counts = np.bincount([tree.draw(uniform) for _ in range(40_000)], minlength=len(weights))
    assert_follows(counts, [0.0, 1.0, 2.0, 0.0, 4.0, 8.0, 0.0])


def test_sum_tree_edges_land_on_candidates():
    weights = [1.0, 0.0, 3.0, 0.0]
    tree = SumTree(weights, [True] * 4)
    for u in (0.0, 0.25 - 2**-54, 0.25, 0.5, 1 - 2**-53):
        assert tree.draw(constant(u)) in (0, 2)
    assert tree.draw(constant(0.0)) == 0
    assert tree.draw(constant(1 - 2**-53)) == 2


# --------------------------------------------------------------------------- ExhaustiveOrder


def test_exhaustive_order_each_positive_streamer_once():
    weights = [1.0, 0.0, 2.0, 1e-10, 1e10, 0.0]
    order = ExhaustiveOrder(weights, len(weights), np.random.default_rng(0))
    assert len(order) == 4
    drawn = [order.draw(constant(0.5)) for _ in range(4)]
    assert sorted(drawn) == [0, 2, 3, 4]  # the tiny weight is kept
    assert len(order) == 0


def test_exhaustive_order_uniform_by_default():
    order = ExhaustiveOrder(None, 5, np.random.default_rng(1))
    assert sorted(order.draw(constant(0.0)) for _ in range(5)) == [0, 1, 2, 3, 4]


def test_exhaustive_order_is_sequential_weighted_sampling():
    """P(order) = prod w_k / remaining weight. P(false fail) <= 1e-7 (chi-square, 24 orders).

    12 000 independent orders; the rarest order has probability 1/10 * 2/9 * 3/7 = 0.0095,
    so at least 114 are expected.
    """
    weights = [1.0, 2.0, 3.0, 4.0]
    rng = np.random.default_rng(14)
    counts = {}
    for _ in range(12_000):
        order = ExhaustiveOrder(weights, 4, rng)
        key = tuple(order.draw(constant(0.0)) for _ in range(4))
        counts[key] = counts.get(key, 0) + 1
    perms = list(itertools.permutations(range(4)))
    assert set(counts) <= set(perms)
    probs = []
    for perm in perms:
        left, prob = sum(weights), 1.0
        for i in perm:
            prob *= weights[i] / left
            left -= weights[i]
        probs.append(prob)
    observed = [counts.get(p, 0) for p in perms]
    expected = np.asarray(probs) * 12_000
    assert expected.min() >= 100
    assert stats.chisquare(observed, expected).pvalue >= ALPHA


# --------------------------------------------------------------------------- flags


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), max_size=300))
def test_flags_round_trip(flags):
    text = pack_flags(flags)
    assert isinstance(text, str)
    assert unpack_flags(text, len(flags)) == flags
