"""Statistical behaviour of the muxes, tested honestly (design.md "Tests"; docs/compat.md).

What is checked: streamers are activated in proportion to their weights; budgets have mean
exactly ``rate``; item shares follow the weights, for StochasticMux and ShuffledMux alike.

Every test states the probability that a *correct* library fails it, and that probability is
derived from a bound, not from a lucky seed:

* **Chi-square** tests use ``scipy.stats.chisquare`` at significance ``ALPHA`` (1e-7) on i.i.d.
  categorical samples with every expected count in the hundreds or more, where the chi-square
  approximation of the multinomial is accurate.
* **Freedman's inequality** (the martingale form of Bernstein's) bounds sums of dependent
  draws: for a martingale ``M`` with increments ``|d_j| <= b`` and conditional variances
  ``E[d_j**2 | past] <= v``, ``P(max_{m <= n} |M_m| >= t) <= 2 exp(-t**2 / (2 (n v + b t / 3)))``.
  :func:`freedman` solves this for ``t`` at a given failure probability. Independent draws are
  the special case of Bernstein's inequality; ``b`` and ``v`` are computed exactly from the
  budget distributions (see :func:`budget_law`).
* **Exact** distributions where there is one (the Poisson budget sum).

Seeds are fixed, so CI is deterministic; the ``slow``-marked sweeps rerun each check over
many seeds with the failure probability split between them (union bound), so each slow test
as a whole also fails a correct library with probability at most 1e-6.

Instrumentation: every streamer is an endless generator function that records, in an object
passed as its argument (activation passes the same object, never a copy), the order in which its
activations start and how many items each computed (counted *before* each item is handed
over, so the count is exactly the activation's budget once it has ended: no item is computed and
thrown away).

Which ordering the bounds use. Activations are *opened* (streamer and budget drawn) when a slot
is filled and *started* at their first item. In ``with_replacement`` mode the streamers of the
opened activations are i.i.d. draws with probability ``w_i / sum(w)`` and each budget has mean
``rate`` whatever the streamer, so ``1[I_j = i] R_j - pi_i rate`` and ``R_j - rate``
are martingale differences in opening order. The first ``K`` started activations are the first
``O`` opened ones minus those still waiting in a slot, and ``K <= O <= K + n_active``; the
maximal form of the inequality covers the random ``O``, and the ``n_active`` activations still
running are accounted for explicitly. A budget is never revealed before its activation starts,
so the budgets of started activations, in starting order, are also martingale differences.
"""

from __future__ import annotations

import collections
import itertools
import math

import numpy as np
import pytest
from scipy import stats

from conftest import endless
from pescador import ShuffledMux, StochasticMux, Streamer

#: Significance of each chi-square test and failure probability of each bound.
ALPHA = 1e-7

# --------------------------------------------------------------------------- bounds


def freedman(n: int, var: float, b: float, delta: float) -> float:
    """Half-width ``t`` with ``P(max_{m<=n} |M_m| >= t) <= delta`` (Freedman, two-sided).

    ``M`` is a martingale whose increments satisfy ``|d| <= b`` and ``E[d**2 | past] <= var``.
    Solves ``2 exp(-t**2 / (2 (n var + b t / 3))) = delta``.
    """
    log_term = math.log(2 / delta)
    a = b * log_term / 3
    return a + math.sqrt(a * a + 2 * log_term * n * var)


def budget_law(rate: float, p: float) -> tuple[float, int]:
    """Variance and maximum of a binomial-dist budget when the new slot's share is ``p``.

    The binomial budget is ``R = 1 + Binomial(n', q)`` with ``q = 1 - p`` and ``n'`` the
    randomised rounding of ``(rate - 1) / q`` (so ``E[R] = rate``);
    ``Var R = E[n'] q p + Var(n') q**2``.
    """
    q = 1.0 - p
    n_real = (rate - 1.0) / q
    frac = n_real - math.floor(n_real)
    return n_real * q * p + frac * (1 - frac) * q * q, 1 + math.ceil(n_real)


def binomial_contexts(weights, n_active, rate, replace=True):
    """For each streamer: the largest budget variance and maximum over all slot contexts.

    The context of a new activation is the weights of the other ``n_active - 1`` slots; with
    replacement any multiset of streamers can be there.
    """
    n = len(weights)
    out = {}
    for i in range(n):
        pool = range(n) if replace else [j for j in range(n) if j != i]
        combos = (
            itertools.combinations_with_replacement(pool, n_active - 1)
            if replace
            else itertools.combinations(pool, n_active - 1)
        )
        worst_var, worst_max = 0.0, 1
        for others in combos:
            w_others = sum(weights[j] for j in others)
            p = weights[i] / (w_others + weights[i])
            assert p <= 0.9999, "these tests avoid the Poisson fallback"
            var, r_max = budget_law(rate, p)
            worst_var, worst_max = max(worst_var, var), max(worst_max, r_max)
        out[i] = (worst_var, worst_max)
    return out


# --------------------------------------------------------------------------- instrumentation


class Recorder:
    """Activation records shared by reference with every activation (activation never copies)."""

    def __init__(self, first: int = 0) -> None:
        self.runs: list[list[int]] = []  # [streamer, items computed], in starting order
        self.first = first  # how many of the first activations to watch
        self.first_done = 0  # how many of those have ended


def probe(i, rec):
    rank = len(rec.runs)
    run = [i, 0]
    rec.runs.append(run)
    try:
        while True:
            run[1] += 1
            yield i
    finally:
        if rank < rec.first:
            rec.first_done += 1


def probes(n, rec):
    return [Streamer(probe, i, rec) for i in range(n)]


def refills_only(mux):
    """``mux``, iterated from a fresh fill (every slot a new activation, budget drawn afresh)
    instead of the stationary start: the tests of the refills' laws see refills only. The
    stationary start is tested in ``test_stationary_start``."""
    mux._stationary_start = False
    return mux


def first_budgets(mux_factory, n_streams, k, cap):
    """Budgets of the first ``k`` started activations, run until all of them have ended."""
    rec = Recorder(first=k)
    mux = mux_factory(probes(n_streams, rec))
    it = mux.iterate(max_iter=cap)
    for _ in it:
        if rec.first_done == k:
            break
    it.close()
    assert rec.first_done == k, "ran out of items before the first activations ended"
    return np.array([run[1] for run in rec.runs[:k]]), rec


def items_until_started(mux_factory, n_streams, k, cap):
    """Items delivered until the ``k``-th activation has started, and the records."""
    rec = Recorder()
    mux = mux_factory(probes(n_streams, rec))
    items = []
    it = mux.iterate(max_iter=cap)
    for item in it:
        items.append(item)
        if len(rec.runs) >= k:
            break
    it.close()
    assert len(rec.runs) >= k
    return np.bincount(items, minlength=n_streams), rec


def chisquare_ok(counts, probs, alpha):
    counts = np.asarray(counts, dtype=float)
    expected = np.asarray(probs, dtype=float) / np.sum(probs) * counts.sum()
    assert expected.min() >= 50, "too few samples for the chi-square approximation"
    return stats.chisquare(counts, expected).pvalue >= alpha


# --------------------------------------------------------------------------- checks


def check_budget_mean(dist, weights, n_active, rate, mode, seed, delta, k=20_000):
    """The mean budget of the first ``k`` activations is ``rate`` (``ceil(rate)``: constant).

    Failure probability of a correct library: at most ``delta``.
    Binomial: ``R_j - rate`` are martingale differences in starting order (module docstring),
    ``|R_j - rate| <= b`` and ``Var <= v`` from :func:`binomial_contexts`; Freedman.
    Poisson (and binomial with one slot, which falls back to it): ``R - 1`` are i.i.d.
    ``Poisson(rate - 1)``, so their sum is exactly ``Poisson(k (rate - 1))``: an exact test.
    """
    n = len(weights)
    budgets, _ = first_budgets(
        lambda s: refills_only(
            StochasticMux(
                s,
                n_active,
                rate,
                weights=weights,
                mode=mode,
                dist=dist,
                random_state=seed,
            )
        ),
        n,
        k,
        cap=int(k * rate * 50),
    )
    assert budgets.min() >= 1
    if dist == "constant":
        assert np.all(budgets == math.ceil(rate))
        return
    if dist == "poisson" or n_active == 1:
        total = int(budgets.sum()) - k
        lam = k * (rate - 1)
        assert stats.poisson.cdf(total, lam) >= delta / 2
        assert stats.poisson.sf(total - 1, lam) >= delta / 2
        return
    contexts = binomial_contexts(list(weights), n_active, rate, replace=mode == "with_replacement")
    var = max(v for v, _ in contexts.values())
    r_max = max(m for _, m in contexts.values())
    assert budgets.max() <= r_max
    t = freedman(k, var, max(r_max - rate, rate - 1), delta)
    assert abs(budgets.sum() - k * rate) <= t, (budgets.mean(), rate, t / k)


def check_activation_shares(dist, weights, n_active, rate, mode, seed, delta, k=20_000):
    """Streamers are activated in proportion to their weights.

    Failure probability: at most ``delta``. In opening order the streamers are i.i.d. draws
    with probabilities ``pi`` (``with_replacement``; also ``single_active`` with one slot, where
    the streamer that just ended is a candidate again). For each ``i``, ``1[I_j = i] - pi_i`` is a
    martingale difference bounded by 1 with variance ``pi_i (1 - pi_i)``; Freedman over the
    first ``k + n_active`` openings at ``delta / n`` each, plus ``n_active`` for the openings
    not yet started, bounds ``|count_i - k pi_i|``. The ``n_active`` activations of the
    stationary start are not such draws (see ``test_stationary_start``): each moves a count by at
    most 1 from its expectation, another ``n_active``.
    """
    n = len(weights)
    pi = np.asarray(weights, dtype=float) / np.sum(weights)
    _, rec = items_until_started(
        lambda s: StochasticMux(
            s, n_active, rate, weights=weights, mode=mode, dist=dist, random_state=seed
        ),
        n,
        k,
        cap=int(k * rate * 50),
    )
    counts = np.bincount([run[0] for run in rec.runs[:k]], minlength=n)
    for i in range(n):
        t = freedman(k + n_active, pi[i] * (1 - pi[i]), 1.0, delta / n) + 2 * n_active
        assert abs(counts[i] - k * pi[i]) <= t, (i, counts / k, pi, t / k)


def check_item_shares(dist, weights, n_active, rate, seed, delta, k=30_000):
    """The long-run share of items from streamer ``i`` is ``pi_i = w_i / sum(w)``.

    ``with_replacement`` mode, endless streamers, run until ``k`` activations have started.
    Failure probability: at most ``delta``.

    Derivation. In opening order let ``Y_i = sum_j 1[I_j = i] R_j`` and ``Z = sum_j R_j`` over
    the ``O`` opened activations (``k <= O <= k + A``, ``A = n_active``). Increments of
    ``Y_i - O pi_i rate`` have mean 0 (the streamer is an independent draw and every budget has
    mean ``rate``), are bounded by ``b_i = max(pi_i rate, Rmax_i - pi_i rate)`` and have
    conditional variance at most ``pi_i E[R_i**2]``; increments of ``Z - O rate`` are bounded by
    ``max(Rmax - rate, rate - 1)`` with variance at most ``max Var R``. Freedman at
    ``delta / (n + 1)`` each gives ``|Y_i - O pi_i rate| <= t_i`` and ``|Z - O rate| <= t_Z``.
    The delivered counts ``c_i`` and their total ``N`` fall short of ``Y_i`` and ``Z`` only by
    the unfinished parts of the ``A`` running activations (at most ``A Rmax``); the ``A``
    activations of the stationary start (budgets partly used, streamers not drawn by weight)
    move ``c_i - pi_i N`` by at most ``A Rmax`` more, so
    ``|c_i - pi_i N| <= t_i + pi_i t_Z + 2 A Rmax``.
    """
    n = len(weights)
    pi = np.asarray(weights, dtype=float) / np.sum(weights)
    counts, _ = items_until_started(
        lambda s: StochasticMux(s, n_active, rate, weights=weights, dist=dist, random_state=seed),
        n,
        k,
        cap=int(k * rate * 50),
    )
    total = counts.sum()
    if dist == "constant":
        r = math.ceil(rate)
        contexts = {i: (0.0, r) for i in range(n)}
        mean = r
    else:
        contexts = binomial_contexts(list(weights), n_active, rate)
        mean = rate
    r_max = max(m for _, m in contexts.values())
    var_max = max(v for v, _ in contexts.values())
    n_open = k + n_active
    t_z = freedman(n_open, var_max, max(r_max - mean, mean - 1), delta / (n + 1))
    for i in range(n):
        var_i, max_i = contexts[i]
        second_moment = var_i + mean * mean
        b_i = max(pi[i] * mean, max_i - pi[i] * mean)
        t_i = freedman(n_open, pi[i] * second_moment, b_i, delta / (n + 1))
        bound = t_i + pi[i] * t_z + 2 * n_active * r_max
        assert abs(counts[i] - pi[i] * total) <= bound, (i, counts / total, pi, bound / total)


def check_single_active_refills(weights, n_active, seed, alpha, per_group=1500):
    """single_active refills draw ``∝ weight`` among the streamers not active in other slots.

    Refills draw by weight from the pool of candidates: when a slot's activation ends its
    streamer goes back to the pool, so the candidates are every streamer except those running
    in the *other* slots. Refills are grouped by that set of others; within a group the draws
    are i.i.d. with the group's restricted proportions (optional skipping: the group is decided
    before the draw), so the first ``per_group`` draws of each group are multinomial. One
    chi-square test per group at ``alpha / groups``: failure probability at most ``alpha``.

    The others are read from ``stream_idxs_`` of the activated mux (compat.md) just before a
    refill: the ended activation's ``finally`` runs while the mux replaces it, right after its
    last item (compat.md), and the replacement is visible when that item is returned.
    """
    n = len(weights)
    ended = []

    def finite_probe(i):
        try:
            yield from endless(i)
        finally:
            ended.append(i)

    streams = [Streamer(finite_probe, i) for i in range(n)]
    mux = StochasticMux(
        streams,
        n_active,
        2,
        weights=weights,
        mode="single_active",
        dist="constant",
        random_state=seed,
    )
    draws = collections.defaultdict(list)
    groups = [frozenset(c) for c in itertools.combinations(range(n), n_active - 1)]
    with mux as active:
        it = active.iterate()
        before = set(np.asarray(active.stream_idxs_).tolist())
        for _ in range(per_group * len(groups) * 40):
            next(it)
            now = set(np.asarray(active.stream_idxs_).tolist())
            if ended:
                (gone,) = ended
                ended.clear()
                others = frozenset(before - {gone})
                (new,) = now - others
                draws[others].append(new)
                if all(len(draws[g]) >= per_group for g in groups):
                    break
            before = now
    assert all(len(draws[g]) >= per_group for g in groups)
    for others in groups:
        eligible = [i for i in range(n) if i not in others]
        counts = collections.Counter(draws[others][:per_group])
        assert set(counts) <= set(eligible)
        assert chisquare_ok(
            [counts[i] for i in eligible], [weights[i] for i in eligible], alpha / len(groups)
        ), (sorted(others), counts)


def check_exhaustive_orders(weights, n_seeds, first_seed, alpha):
    """exhaustive: the activation order is sequential weighted sampling without replacement.

    One iteration per seed with ``n_active=1``, ``rate=None`` and one-item streams gives one
    i.i.d. permutation; ``P(order) = prod_k w_{o_k} / (remaining weight)``. Chi-square over all
    permutations at ``alpha``: failure probability at most ``alpha``.
    """
    n = len(weights)
    streams = [Streamer([i]) for i in range(n)]
    counts = collections.Counter()
    for seed in range(first_seed, first_seed + n_seeds):
        mux = StochasticMux(
            streams, 1, None, weights=weights, mode="exhaustive", random_state=seed
        )
        counts[tuple(mux)] += 1
    perms = list(itertools.permutations(range(n)))
    assert set(counts) <= set(perms)
    probs = []
    for perm in perms:
        left, prob = float(sum(weights)), 1.0
        for i in perm:
            prob *= weights[i] / left
            left -= weights[i]
        probs.append(prob)
    assert chisquare_ok([counts[p] for p in perms], probs, alpha), counts


def check_shuffled_shares(weights, seed, alpha, n_items=200_000, finite=False):
    """ShuffledMux draws each item from streamer ``i`` with probability ``w_i / sum(w)``.

    Every streamer is endless (or restarts at once), so the draws are i.i.d.: chi-square at
    ``alpha`` over the positive-weight streamers, and weight-0 streamers never appear.
    """
    n = len(weights)
    if finite:
        streams = [Streamer([i] * (i + 2)) for i in range(n)]
    else:
        streams = [Streamer(endless, i) for i in range(n)]
    mux = ShuffledMux(streams, weights=weights, random_state=seed)
    counts = np.bincount(np.fromiter(mux.iterate(max_iter=n_items), dtype=np.int64), minlength=n)
    positive = [i for i in range(n) if weights[i] > 0]
    assert all(counts[i] == 0 for i in range(n) if weights[i] == 0)
    assert chisquare_ok(counts[positive], [weights[i] for i in positive], alpha), counts


# --------------------------------------------------------------------------- fast tests
# Each test below fails a correct library with probability at most 1e-6 (stated per test).

W4 = (1, 2, 3, 4)


@pytest.mark.parametrize(
    ("dist", "weights", "n_active", "mode"),
    [
        ("binomial", (1, 1, 1, 1), 3, "with_replacement"),
        ("binomial", W4, 3, "with_replacement"),
        ("binomial", W4, 2, "single_active"),
        ("binomial", W4, 1, "with_replacement"),  # one slot: the Poisson fallback
        ("poisson", W4, 3, "with_replacement"),
        ("poisson", (1, 1, 1), 2, "single_active"),
        ("constant", W4, 3, "with_replacement"),
        ("constant", W4, 2, "single_active"),
    ],
)
def test_budget_mean_is_rate(dist, weights, n_active, mode):
    """Mean per-activation budget = rate (4.5; ``ceil`` for constant): P(false fail) <= 1e-7.

    With rate 4.5 and three uniform slots, ``(rate - 1) / (1 - p) = 5.25`` is not an integer:
    pescador 3.0's truncation gives a mean of 4.33, which the bound (0.05 to 0.07) rejects.
    """
    check_budget_mean(dist, weights, n_active, 4.5, mode, seed=20240601, delta=ALPHA)


@pytest.mark.parametrize("rate", [2, 7.25])
def test_binomial_budget_mean_other_rates(rate):
    """P(false fail) <= 1e-7 (Freedman, see check_budget_mean)."""
    check_budget_mean("binomial", (1, 1, 1, 1, 1), 4, rate, "with_replacement", 7, ALPHA)


def exact_binomial_budget_pmf(rate: float, p: float) -> np.ndarray:
    """The pmf of the binomial budget ``R = 1 + Binomial(n', q)`` over ``R - 1 = 0 .. n + 1``
    (``n'`` is ``n`` or ``n + 1``, the randomised rounding of ``(rate - 1) / q``)."""
    q = 1.0 - p
    n_real = (rate - 1.0) / q
    n = math.floor(n_real)
    frac = n_real - n
    pmf = np.zeros(n + 2)
    for trials, weight in ((n, 1 - frac), (n + 1, frac)):
        pmf[: trials + 1] += weight * stats.binom.pmf(np.arange(trials + 1), trials, q)
    return pmf


@pytest.mark.parametrize(
    ("w_new", "w_others", "rate"),
    [
        (0.5, 8.0, 16.3),  # small share: drawn by inverse-CDF search
        (1.0, 1.0, 16.3),  # n p = 15: drawn by numpy
        (2.0, 30.0, 4.5),
        (0.3, 0.05, 9.0),  # large share
    ],
)
def test_weighted_binomial_budget_follows_its_law(w_new, w_others, rate):
    """With weights, each budget is drawn afresh from ``p = w_new / (w_new + w_others)``: its
    distribution is its law exactly. P(false fail) <= 1e-7 (chi-square, categories with at least
    300 expected draws; the tail is pooled)."""
    from pescador._seeds import Seed

    weights = np.linspace(0.5, 1.5, 8)  # uneven: the binomial budgets are not tabulated
    mux = StochasticMux([Streamer(endless, i) for i in range(8)], 3, rate, weights=weights)
    policy = mux._policy(Seed(31), None)
    n_draws = 200_000
    budgets = np.array([policy.budget(w_new, w_others) for _ in range(n_draws)])
    pmf = exact_binomial_budget_pmf(rate, w_new / (w_new + w_others))
    assert budgets.min() >= 1 and budgets.max() <= len(pmf)
    observed = np.bincount(budgets - 1, minlength=len(pmf)).astype(float)
    expected = pmf * n_draws
    keep = expected >= 300
    observed = np.append(observed[keep], observed[~keep].sum())
    expected = np.append(expected[keep], expected[~keep].sum())
    if expected[-1] < 300:  # pool a thin tail into the smallest kept category
        observed[-2] += observed[-1]
        expected[-2] += expected[-1]
        observed, expected = observed[:-1], expected[:-1]
    assert stats.chisquare(observed, expected * observed.sum() / expected.sum()).pvalue > ALPHA


@pytest.mark.parametrize("dist", ["binomial", "poisson", "constant"])
@pytest.mark.parametrize(
    ("weights", "n_active", "mode"),
    [
        (W4, 2, "with_replacement"),
        ((5, 1, 0.5), 5, "with_replacement"),  # more slots than streamers
        (W4, 1, "single_active"),
    ],
)
def test_activations_follow_weights(dist, weights, n_active, mode):
    """Activation counts follow the weights: P(false fail) <= 1e-7 (Freedman + union bound).

    pescador 3.0 activated uniformly (25 % each for W4); the bound is 1 to 2 %.
    """
    check_activation_shares(dist, weights, n_active, 3, mode, seed=99, delta=ALPHA)


@pytest.mark.parametrize(
    ("dist", "weights", "n_active", "rate"),
    [
        ("binomial", W4, 3, 4),
        ("binomial", (1, 3, 6), 5, 6.5),  # more slots than streamers
        ("constant", W4, 2, 3),
    ],
)
def test_item_shares_follow_weights(dist, weights, n_active, rate):
    """Long-run item shares = w_i / sum(w): P(false fail) <= 1e-7 (Freedman, check_item_shares).

    The bound is 1 to 3 % of the items; pescador 3.0 gave W4 about 25 % each.
    """
    check_item_shares(dist, weights, n_active, rate, seed=5, delta=ALPHA)


@pytest.mark.parametrize(("weights", "n_active"), [((1, 2, 4), 2), ((1, 2, 3, 6), 2)])
def test_single_active_refills_follow_weights(weights, n_active):
    """P(false fail) <= 1e-7 (chi-square per candidate set, check_single_active_refills)."""
    check_single_active_refills(weights, n_active, seed=3, alpha=ALPHA)


def test_exhaustive_order_is_weighted_sampling_without_replacement():
    """P(false fail) <= 1e-7 (chi-square over the 6 orders, 2000 independent seeds)."""
    check_exhaustive_orders((1, 2, 5), n_seeds=2000, first_seed=0, alpha=ALPHA)


@pytest.mark.parametrize("weights", [(1, 2, 3, 4), (0, 5, 1, 2.5), (3, 1)])
def test_shuffled_shares_follow_weights(weights):
    """Endless streamers: P(false fail) <= 1e-7 (chi-square, i.i.d. draws)."""
    check_shuffled_shares(weights, seed=11, alpha=ALPHA)


@pytest.mark.parametrize("weights", [(1, 2, 3, 4), (0, 5, 1, 2.5)])
def test_shuffled_shares_follow_weights_with_short_restarting_streams(weights):
    """Streams of 2 to 5 items, restarted whenever they end: shares still follow the weights.

    The ShuffledMux docstring promises that each item comes from streamer ``i``
    with probability proportional to ``weights[i]`` and that ended streams restart at once.
    If discovering the end of a stream costs a draw that yields nothing (pescador 3.0), a
    stream of length ``L`` gets only ``L / (L + 1)`` of its share: with (0, 5, 1, 2.5) the
    shares become 0.565 / 0.121 / 0.314 instead of 0.588 / 0.118 / 0.294, which 200 000 items
    detect. P(false fail) <= 1e-7 (chi-square, i.i.d. draws).
    """
    check_shuffled_shares(weights, seed=11, alpha=ALPHA, finite=True)


def test_shuffled_integer_and_float_weights_agree_in_distribution():
    """Weights are proportions: [2, 6] behaves as [0.25, 0.75]. P(false fail) <= 1e-7."""
    check_shuffled_shares((2, 6), seed=12, alpha=ALPHA)
    check_shuffled_shares((0.25, 0.75), seed=13, alpha=ALPHA)


# --------------------------------------------------------------------------- slow sweeps
# Each sweep splits its 1e-6 failure budget evenly between its seeds (union bound).

SWEEP = 20
SWEEP_DELTA = 1e-6 / SWEEP


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dist", "weights", "n_active", "mode"),
    [
        ("binomial", (1, 1, 1, 1), 3, "with_replacement"),
        ("binomial", W4, 3, "with_replacement"),
        ("binomial", W4, 2, "single_active"),
        ("poisson", W4, 3, "with_replacement"),
    ],
)
def test_slow_budget_mean_sweep(dist, weights, n_active, mode):
    """P(false fail) <= 1e-6 over all seeds."""
    for seed in range(SWEEP):
        check_budget_mean(dist, weights, n_active, 4.5, mode, seed, SWEEP_DELTA)


@pytest.mark.slow
@pytest.mark.parametrize("dist", ["binomial", "poisson", "constant"])
def test_slow_activation_sweep(dist):
    """P(false fail) <= 1e-6 over all seeds."""
    for seed in range(SWEEP):
        check_activation_shares(dist, W4, 2, 3, "with_replacement", seed, SWEEP_DELTA)


@pytest.mark.slow
@pytest.mark.parametrize("dist", ["binomial", "constant"])
def test_slow_item_share_sweep(dist):
    """P(false fail) <= 1e-6 over all seeds."""
    for seed in range(SWEEP):
        check_item_shares(dist, W4, 3, 4, seed, SWEEP_DELTA)


@pytest.mark.slow
def test_slow_single_active_refill_sweep():
    """P(false fail) <= 1e-6 over all seeds."""
    for seed in range(SWEEP):
        check_single_active_refills((1, 2, 4), 2, seed, SWEEP_DELTA)


@pytest.mark.slow
def test_slow_exhaustive_order_sweep():
    """P(false fail) <= 1e-6 over all seeds (disjoint seed ranges: independent samples)."""
    for k in range(SWEEP):
        check_exhaustive_orders((1, 2, 5), 2000, 10_000 + 2000 * k, SWEEP_DELTA)


@pytest.mark.slow
def test_slow_shuffled_sweep():
    """Endless streamers. P(false fail) <= 1e-6 over all seeds."""
    for seed in range(SWEEP):
        check_shuffled_shares((1, 2, 3, 4), seed, SWEEP_DELTA, finite=False)


@pytest.mark.slow
def test_slow_shuffled_short_streams_sweep():
    """Short restarting streams. P(false fail) <= 1e-6 over all seeds."""
    for seed in range(SWEEP):
        check_shuffled_shares((0, 5, 1, 2.5), seed, SWEEP_DELTA, finite=True)
