"""StochasticMux starts where a long run would be: item shares are the long-run shares from
the first item (docs/design.md, "The stationary start").

Two kinds of checks, each with the probability that a *correct* library fails it:

* **The start's law.** For small configurations the slot process is a finite Markov chain
  (state: per slot the streamer and the budget left; one step per item), which
  :func:`exact_chain` writes down from the documented rules alone and solves for its stationary
  law by linear algebra. The slot table an iteration starts from, sampled over many seeds, is
  compared with that law by a chi-square test at ``ALPHA`` (expected counts of 100 or more per
  cell). Exact for the budget laws that do not depend on the other slots (``constant``,
  ``poisson``, ``binomial`` with equal weights). Weighted ``binomial`` budgets depend on the
  other slots' weights: there the start is the documented approximation, checked against its
  own law, and its distance to the exact one is computed (no randomness).
* **Early shares.** Over ``N`` seeds, the share of every streamer and group of streamers in the
  first ``rate`` and the first ``rate * n_active`` items, averaged, is the target ``w_i /
  sum(w)``. Each run's share is in [0, 1] and the runs are independent, so the empirical
  Bernstein bound (Maurer & Pontil 2009, theorem 4) holds: ``P(mean - E >= sqrt(2 V log(2 /
  d) / N) + 7 log(2 / d) / (3 (N - 1))) <= d`` with ``V`` the sample variance; and so does
  Hoeffding's (1963, theorem 1) ``P(mean >= a) <= exp(-N KL(a || E))`` for ``a > E`` (and
  below), sharper for small shares. A category is rejected if either bound rejects on either
  side, each at ``ALPHA / (4 K)`` (``K`` categories): a test fails a correct library with
  probability at most ``ALPHA``. Weighted ``binomial`` configurations add a margin
  ``BINOMIAL_MARGIN`` for the approximation, 5 times the largest deviation of expected shares
  computed exactly on small chains (``test_weighted_binomial_start_is_close``).

The ``slow`` sweeps run every profile, dist and mode over more seeds.
"""

from __future__ import annotations

import collections
import itertools
import math

import numpy as np
import pytest
from scipy import sparse, stats

from conftest import endless
from pescador import StochasticMux, Streamer
from pescador._seeds import Seed
from pescador.mux._budgets import BINOMIAL_MAX_P, residual_budgets

ALPHA = 1e-7

#: Allowance for the weighted binomial approximation in the share tests (see the docstring).
BINOMIAL_MARGIN = 0.005

# --------------------------------------------------------------------------- the exact chain


def budget_pmf(dist, rate, w_new, w_others):
    """``P(R = r)`` for ``r = 0, 1, ...`` of a new activation's budget (StochasticMux's ``dist``):
    ``ceil(rate)``; ``1 + Poisson(rate - 1)`` (cut where the tail is below 1e-14); ``1 +
    Binomial(N, q)`` with ``q`` the others' share and ``N`` the random rounding of ``(rate - 1) /
    q`` (Poisson when the new slot's share ``p`` is above ``BINOMIAL_MAX_P`` or it is alone)."""
    if dist == "constant":
        pmf = np.zeros(math.ceil(rate) + 1)
        pmf[-1] = 1.0
        return pmf
    p = w_new / (w_new + w_others)
    if dist == "binomial" and w_others > 0 and p <= BINOMIAL_MAX_P:
        q = 1.0 - p
        n_real = (rate - 1.0) / q
        n = math.floor(n_real)
        frac = n_real - n
        pmf = np.zeros(n + 3)
        pmf[1 : n + 2] += (1 - frac) * stats.binom.pmf(np.arange(n + 1), n, q)
        pmf[1 : n + 3] += frac * stats.binom.pmf(np.arange(n + 2), n + 1, q)
        return pmf
    lam = rate - 1.0
    top = int(stats.poisson.isf(1e-14, lam)) + 1 if lam else 0
    pmf = np.zeros(top + 2)
    pmf[1:] = stats.poisson.pmf(np.arange(top + 1), lam)
    return pmf / pmf.sum()


def exact_chain(weights, n_active, rate, dist, mode):
    """The slot process as a Markov chain with one step per item, from the documented rules: the
    item's slot is drawn in proportion to its weight; a slot whose budget is used up is refilled
    with a streamer drawn in proportion to its weight among the candidates (``single_active``:
    those not running in another slot) and a budget from ``budget_pmf`` given the other slots.

    Returns the states (per slot ``(streamer, budget left)``) and the transition matrix.
    """
    w = [float(x) for x in weights]
    positive = [i for i, x in enumerate(w) if x > 0]
    laws = {}

    def law(j, w_others):
        key = (j, round(w_others, 12))
        if key not in laws:
            laws[key] = budget_pmf(dist, rate, w[j], w_others)
        return laws[key]

    if mode == "single_active":
        starts = itertools.permutations(positive, n_active)
    else:
        starts = itertools.product(positive, repeat=n_active)
    index = {}
    states = []
    for ids in starts:
        state = tuple((i, 1) for i in ids)
        index[state] = len(states)
        states.append(state)
    rows, cols, vals = [], [], []
    at = 0
    while at < len(states):
        state = states[at]
        total = sum(w[i] for i, _ in state)
        for k, (i, left) in enumerate(state):
            pick = w[i] / total
            if left > 1:
                nxt = list(state)
                nxt[k] = (i, left - 1)
                targets = [(tuple(nxt), pick)]
            else:
                others = [state[m][0] for m in range(len(state)) if m != k]
                pool = [j for j in positive if mode != "single_active" or j not in others]
                pool_weight = sum(w[j] for j in pool)
                targets = []
                for j in pool:
                    pmf = law(j, total - w[i])
                    for budget in np.flatnonzero(pmf).tolist():
                        nxt = list(state)
                        nxt[k] = (j, budget)
                        targets.append((tuple(nxt), pick * w[j] / pool_weight * pmf[budget]))
            for nxt, prob in targets:
                if nxt not in index:
                    index[nxt] = len(states)
                    states.append(nxt)
                rows.append(at)
                cols.append(index[nxt])
                vals.append(prob)
        at += 1
    size = len(states)
    return states, sparse.csr_matrix((vals, (rows, cols)), shape=(size, size)), law


def stationary_law(matrix):
    """The stationary law of the chain (power iteration on the lazy chain: aperiodic)."""
    pi = np.full(matrix.shape[0], 1.0 / matrix.shape[0])
    step = matrix.T.tocsr()
    for _ in range(200_000):
        nxt = 0.5 * (pi + step @ pi)
        if np.abs(nxt - pi).sum() < 1e-14:
            return nxt
        pi = nxt
    raise AssertionError("power iteration did not converge")


def product_form(states, law, weights, mode):
    """The law the stationary start samples: ``W(x) prod_k P(R_k >= r_k)`` with each slot's
    budget law in the context of the others (exact when the laws do not depend on it)."""
    w = [float(x) for x in weights]
    out = np.zeros(len(states))
    for x, state in enumerate(states):
        if mode == "single_active" and len({i for i, _ in state}) < len(state):
            continue
        total = sum(w[i] for i, _ in state)
        value = total
        for i, left in state:
            pmf = law(i, total - w[i])
            value *= pmf[left:].sum()
        out[x] = value
    return out / out.sum()


def unordered(states, probs):
    """The law of the slot table up to the order of the slots."""
    out = collections.Counter()
    for state, prob in zip(states, probs, strict=True):
        out[tuple(sorted(state))] += prob
    return out


def start_tables(weights, n_active, rate, dist, mode, seeds):
    """The slot tables (sorted ``(streamer, budget left)`` per live slot) that iterations with
    these seeds start from."""
    mux = StochasticMux(
        [Streamer(endless, i) for i in range(len(weights))],
        n_active,
        rate,
        weights=weights,
        mode=mode,
        dist=dist,
    )
    out = collections.Counter()
    for seed in seeds:
        policy = mux._policy(Seed(seed), None)
        table = policy.table
        n = policy.slots.n_live
        out[tuple(sorted(zip(table.streamer_ids[:n], table.left[:n], strict=True)))] += 1
        policy.close()
    return out


def chisquare_against(observed, law, alpha):
    """Chi-square of observed counts against ``law``, over a partition of the tables fixed by
    the law alone: tables in decreasing probability, grouped into cells of 100 or more expected
    (the last cell takes the rest)."""
    n = sum(observed.values())
    support = {c for c, p in law.items() if p > 0}
    assert set(observed) <= support, "a table the law excludes"
    cells: list[list] = [[]]
    expected = [0.0]
    for table in sorted(support, key=lambda c: (-law[c], c)):
        if expected[-1] >= 100:
            cells.append([])
            expected.append(0.0)
        cells[-1].append(table)
        expected[-1] += law[table] * n
    if expected[-1] < 100 and len(cells) > 1:
        last_cell, last_expected = cells.pop(), expected.pop()
        cells[-1] += last_cell
        expected[-1] += last_expected
    assert len(cells) >= 2
    obs = [sum(observed[c] for c in cell) for cell in cells]
    return stats.chisquare(obs, np.asarray(expected) * (n / sum(expected))).pvalue >= alpha


# --------------------------------------------------------------------------- the start's law

EXACT_CASES = [
    ((1, 4, 0.5), 2, 3, "constant", "with_replacement"),
    ((1, 2, 6, 3), 2, 2, "poisson", "single_active"),
    ((1, 1), 2, 2.5, "binomial", "with_replacement"),  # equal weights: context-free
    ((5, 1, 0, 1), 2, 2.5, "constant", "single_active"),
]


@pytest.mark.parametrize(("weights", "n_active", "rate", "dist", "mode"), EXACT_CASES)
def test_start_is_the_exact_stationary_law(weights, n_active, rate, dist, mode):
    """The slot table at the start has the stationary law of the slot process, computed by
    linear algebra: P(false fail) <= 1e-7 (chi-square over 4000 independent seeds)."""
    states, matrix, law = exact_chain(weights, n_active, rate, dist, mode)
    exact = stationary_law(matrix)
    # The product form the start samples is that law (up to the Poisson tail cut at 1e-14).
    assert np.abs(product_form(states, law, weights, mode) - exact).sum() < 1e-9
    observed = start_tables(weights, n_active, rate, dist, mode, range(4000))
    assert chisquare_against(observed, unordered(states, exact), ALPHA), observed


@pytest.mark.parametrize(
    ("weights", "n_active", "mode"),
    [
        ((30, 1, 1, 1), 2, "with_replacement"),
        pytest.param((1, 0.5, 0.25, 0.125), 2, "single_active", marks=pytest.mark.slow),
        pytest.param((1, 1, 0.05, 0.05), 2, "with_replacement", marks=pytest.mark.slow),
    ],
)
def test_weighted_binomial_start_is_close(weights, n_active, mode):
    """Weighted binomial budgets depend on the other slots' weights, and the slots' budgets
    left are not independent in the long run: the start samples each slot's law in the context
    of the others (checked against that law: P(false fail) <= 1e-7, chi-square). Its distance
    to the exact law is computed (no randomness): the total variation is under 0.03 and every
    expected share over the first ``rate * n_active`` items is within 1e-3 of the long-run
    share (the first item's exactly in ``with_replacement``)."""
    rate = 6
    states, matrix, law = exact_chain(weights, n_active, rate, "binomial", mode)
    exact = stationary_law(matrix)
    start = product_form(states, law, weights, mode)
    assert 0.5 * np.abs(start - exact).sum() < 0.03
    shares = np.zeros((len(states), len(weights)))
    for x, state in enumerate(states):
        total = sum(weights[i] for i, _ in state)
        for i, _ in state:
            shares[x, i] += weights[i] / total
    long_run = exact @ shares
    law_now = start.copy()
    step = matrix.T.tocsr()
    worst = 0.0
    for n in range(rate * n_active):
        worst = max(worst, float(np.abs(law_now @ shares - long_run).max()))
        if n == 0 and mode == "with_replacement":
            target = np.asarray(weights) / sum(weights)
            assert np.abs(law_now @ shares - target).max() < 1e-12
        law_now = step @ law_now
    assert worst < 1e-3
    observed = start_tables(weights, n_active, rate, "binomial", mode, range(4000))
    assert chisquare_against(observed, unordered(states, start), ALPHA), observed


@pytest.mark.parametrize(
    ("dist", "w_new", "w_others", "rate"),
    [
        ("binomial", 1.0, 7.0, 9.5),
        ("binomial", 3.0, 1.0, 4.25),  # a large share
        ("binomial", 1.0, 0.0, 5.0),  # alone: the Poisson fallback
        ("poisson", 1.0, 3.0, 6.5),
        ("constant", 1.0, 3.0, 4.5),
    ],
)
def test_residual_budget_law(dist, w_new, w_others, rate):
    """The budget left in a slot in the long run: ``P(R >= r) / E[R]``, ``R`` the slot's budget
    law. P(false fail) <= 1e-7 (chi-square, 200 000 draws, cells of 300 or more)."""
    n = 200_000
    rng = np.random.default_rng(11)
    left = residual_budgets(dist, rate, np.full(n, w_new), np.full(n, w_others), rng)
    pmf = budget_pmf(dist, rate, w_new, w_others)
    tail = pmf[::-1].cumsum()[::-1]  # P(R >= r)
    law = tail[1:] / tail[1:].sum()  # r = 1, 2, ...
    assert np.isclose(tail[1:].sum(), math.ceil(rate) if dist == "constant" else rate)
    observed = np.bincount(left, minlength=len(law) + 1)[1:]
    assert len(observed) == len(law), "a budget left beyond the law's support"
    expected = law * n
    keep = expected >= 300
    obs = np.append(observed[keep], observed[~keep].sum())
    exp = np.append(expected[keep], expected[~keep].sum())
    if exp[-1] < 300:
        obs, exp = obs[:-1], exp[:-1]
        obs[-1] += observed[~keep].sum()
        exp[-1] += expected[~keep].sum()
    assert stats.chisquare(obs, exp).pvalue >= ALPHA


# --------------------------------------------------------------------------- early shares

PROFILES = {
    # two classes of very different weight
    "two-classes": ((1, 1, 1, 0.02, 0.02, 0.02), {"low": [3, 4, 5]}),
    "geometric": (tuple(2.0**-i for i in range(6)), {"tail": [3, 4, 5]}),
    "dominant": ((30, 1, 1, 1, 1, 1), {"others": [1, 2, 3, 4, 5]}),
}
N_ACTIVE, RATE = 3, 6


def bernstein(values: np.ndarray, delta: float) -> float:
    """Half-width ``h`` with ``P(mean - E >= h) <= delta`` for i.i.d. values in [0, 1]
    (empirical Bernstein: Maurer & Pontil 2009, theorem 4)."""
    n = len(values)
    log_term = math.log(2 / delta)
    return math.sqrt(2 * values.var(ddof=1) * log_term / n) + 7 * log_term / (3 * (n - 1))


def kl_tail(mean: float, target: float, n: int) -> float:
    """Bound on ``P(the mean of n i.i.d. values in [0, 1] of expectation target is at least
    mean)`` (at most, for ``mean < target``): ``exp(-n KL(mean || target))`` (Hoeffding 1963,
    theorem 1; a [0, 1] variable is dominated by the Bernoulli of the same mean). Sharp for
    small shares, where the empirical Bernstein bound's second term dominates."""

    def term(a: float, b: float) -> float:
        return 0.0 if a == 0 else a * math.log(a / b)

    kl = term(mean, target) + term(1 - mean, 1 - target)
    return math.exp(-n * kl)


def rejects(values: np.ndarray, target: float, delta: float, margin: float = 0.0) -> bool:
    """Whether the mean of ``values`` is too far from ``target`` (give or take ``margin``).

    Rejects if either bound does, each on either side at ``delta / 4``: a correct library is
    rejected with probability at most ``delta``.
    """
    mean = float(values.mean())
    if abs(mean - target) - margin > bernstein(values, delta / 4):
        return True
    low, high = max(target - margin, 0.0), min(target + margin, 1.0)
    if mean > high:
        return kl_tail(mean, high, len(values)) < delta / 4
    if mean < low:
        return kl_tail(mean, low, len(values)) < delta / 4
    return False


def early_shares(weights, dist, mode, seeds, stationary=True):
    """Per seed: each streamer's share of the first ``RATE`` and of the first
    ``RATE * N_ACTIVE`` items."""
    n = len(weights)
    streams = [Streamer(endless, i) for i in range(n)]
    m, r = RATE * N_ACTIVE, RATE
    first_rate = np.zeros((len(seeds), n))
    first_turn = np.zeros((len(seeds), n))
    for row, seed in enumerate(seeds):
        mux = StochasticMux(
            streams, N_ACTIVE, RATE, weights=weights, mode=mode, dist=dist, random_state=seed
        )
        mux._stationary_start = stationary
        items = np.fromiter(mux.iterate(max_iter=m), dtype=np.int64, count=m)
        first_turn[row] = np.bincount(items, minlength=n) / m
        first_rate[row] = np.bincount(items[:r], minlength=n) / r
    return first_rate, first_turn


def share_checks(profile, dist, mode, seeds, stationary=True):
    """Per category (each streamer, each group; in each window): the mean share, the target,
    and whether it is rejected, at levels such that a correct library has a rejection with
    probability at most ``ALPHA`` overall."""
    weights, groups = PROFILES[profile]
    target = np.asarray(weights) / np.sum(weights)
    windows = early_shares(weights, dist, mode, seeds, stationary)
    categories = [[i] for i in range(len(weights))] + list(groups.values())
    delta = ALPHA / (len(categories) * len(windows))
    margin = BINOMIAL_MARGIN if dist == "binomial" and len(set(weights)) > 1 else 0.0
    out = []
    for name, shares in zip(("first rate", "first rate * n_active"), windows, strict=True):
        for members in categories:
            values = shares[:, members].sum(axis=1)
            goal = float(target[members].sum())
            out.append((name, members, values.mean(), goal, rejects(values, goal, delta, margin)))
    return out


FAST_CASES = [
    ("two-classes", "constant", "with_replacement"),
    ("geometric", "binomial", "single_active"),
    ("dominant", "poisson", "with_replacement"),
]


@pytest.mark.parametrize(("profile", "dist", "mode"), FAST_CASES)
def test_early_shares_are_the_long_run_shares(profile, dist, mode):
    """From the first item, the expected share of every streamer and group is its long-run
    share (``w_i / sum(w)``): P(false fail) <= 1e-7 (empirical Bernstein and Hoeffding's
    bound, 2000 seeds)."""
    for check in share_checks(profile, dist, mode, range(2000)):
        assert not check[-1], check


@pytest.mark.slow
def test_a_fresh_fill_fails_the_early_share_check():
    """The check has the power to see the problem the stationary start solves: filled afresh
    (streamers drawn by weight, whole budgets), the dominant streamer takes far more than its
    share until the slots turn over. (Deterministic: fixed seeds.)"""
    for profile in ("dominant", "two-classes"):
        checks = share_checks(profile, "constant", "with_replacement", range(2500), False)
        assert any(check[-1] for check in checks if check[0] == "first rate * n_active")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["with_replacement", "single_active"])
@pytest.mark.parametrize("dist", ["constant", "binomial", "poisson"])
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_early_shares_sweep(profile, dist, mode):
    """Every profile, dist and mode, 20 000 seeds: P(false fail) <= 1e-7 each."""
    for check in share_checks(profile, dist, mode, range(10_000, 30_000)):
        assert not check[-1], check


# --------------------------------------------------------------------------- what has no start


def test_no_stationary_start_without_a_rate_or_in_exhaustive_mode():
    """Without a rate an activation runs to its streamer's end, which only the streamer knows;
    exhaustive mode activates each streamer once: both fill afresh, by weight."""
    streams = [Streamer(endless, i) for i in range(4)]
    unlimited = StochasticMux(streams, 2, None, weights=[1, 2, 3, 4])._policy(Seed(1), None)
    assert unlimited.table.left[:2] == [unlimited.budgets.fixed] * 2
    exhaustive = StochasticMux(streams, 2, 5, mode="exhaustive", dist="constant")
    assert exhaustive._policy(Seed(1), None).table.left[:2] == [5, 5]


# --------------------------------------------------------------------------- state


@pytest.mark.parametrize("mode", ["with_replacement", "single_active"])
@pytest.mark.parametrize("dist", ["constant", "binomial", "poisson"])
def test_the_start_is_reproducible_and_resumes_exactly(mode, dist):
    streams = [Streamer(endless, i) for i in range(6)]
    mux = StochasticMux(
        streams, 3, 4.5, weights=[1, 2, 3, 0.5, 0.1, 4], mode=mode, dist=dist, random_state=3
    )
    items = list(mux.iterate(max_iter=200))
    assert items == list(mux.iterate(max_iter=200))
    fresh = mux.iterate()
    state = fresh.state_dict()  # nothing delivered yet
    assert list(mux.iterate(max_iter=200, state=state)) == items
    started = mux.iterate()
    next(started)  # the slot table exists now
    state = started.state_dict()
    assert list(mux.iterate(max_iter=200, state=state)) == items[1:]
    later = mux.iterate()
    for _ in range(77):
        next(later)
    assert list(mux.iterate(max_iter=200, state=later.state_dict())) == items[77:]
