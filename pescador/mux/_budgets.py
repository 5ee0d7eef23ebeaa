"""The laws of an activation's item budget, tabulated for inverse-CDF sampling (private).

StochasticMux gives each activation a budget of items with mean ``rate`` (see its ``dist``).
Where the law allows, budgets are sampled from a table of cumulative probabilities with one
uniform; these constants say when a law is tabulated, or drawn another way.
:class:`BudgetDraws` draws the budgets of one iteration.
"""

from __future__ import annotations

import functools
import itertools
import math
import sys
from collections.abc import Callable
from math import floor
from typing import Any

import numpy as np

from ._draws import Mapped, as_list, searched

#: Budget of an activation without a rate limit (never reached).
UNLIMITED = sys.maxsize

#: Largest support for which a budget distribution is tabulated.
MAX_TABLE = 1 << 16


#: Above this probability of the new slot being drawn, the binomial budget falls back to
#: Poisson (the binomial's ``n`` would explode).
BINOMIAL_MAX_P = 0.9999


#: Largest mean ``n * p`` for which a binomial budget's ``Binomial(n, p)`` is drawn by
#: sequential inverse-CDF search (about ``n * p + 1`` steps in Python) rather than by numpy
#: (one scalar call costs about as much as a few steps). Below it, and with ``p`` at most
#: :data:`BINOMIAL_MAX_P`, ``(1 - p) ** n`` is far from underflow.
INVERSION_MAX_MEAN = 8.0


def budget_table(dist: str, rate: float, p: float) -> list[float] | None:
    """Cumulative probabilities of an activation's budget minus one, for inverse-CDF sampling.

    ``binomial``: ``Binomial(n, 1 - p)`` with ``n = (rate - 1) / (1 - p)`` randomly rounded
    (a mixture of the two neighbouring integers, so the mean is exactly ``rate - 1``), or
    ``Poisson(rate - 1)`` when ``p`` exceeds :data:`BINOMIAL_MAX_P`. ``poisson``:
    ``Poisson(rate - 1)``. Sample with ``bisect_right(table, u)`` for ``u`` uniform in [0, 1);
    the last entry is infinity. ``None`` when the support is too large to tabulate. Building a
    table consumes no randomness, so caching never changes a sampled sequence.
    """
    if dist == "binomial" and p <= BINOMIAL_MAX_P:
        q = 1.0 - p
        n_real = (rate - 1.0) / q
        n = int(n_real)
        frac = n_real - n
        if n + 2 > MAX_TABLE:
            return None
        low = [*_pmf_binomial(n, q), 0.0]
        if frac:
            high = _pmf_binomial(n + 1, q)
            low = [(1.0 - frac) * a + frac * b for a, b in zip(low, high, strict=True)]
        return _cdf(low)
    lam = rate - 1.0
    top = int(lam + 12 * math.sqrt(lam) + 40)
    if top > MAX_TABLE:
        return None
    if lam == 0:
        return [math.inf]
    log_lam = math.log(lam)
    return _cdf([math.exp(k * log_lam - lam - math.lgamma(k + 1)) for k in range(top + 1)])


def _pmf_binomial(n: int, q: float) -> list[float]:
    if q >= 1.0:
        return [0.0] * n + [1.0]
    log_q, log_p, head = math.log(q), math.log1p(-q), math.lgamma(n + 1)
    return [
        math.exp(head - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_q + (n - k) * log_p)
        for k in range(n + 1)
    ]


def _cdf(pmf: list[float]) -> list[float]:
    total = math.fsum(pmf)
    cdf = [c / total for c in itertools.accumulate(pmf)]
    cdf[-1] = math.inf
    return cdf


@functools.lru_cache(maxsize=64)
def _budget_array(dist: str, rate: float, key: float) -> np.ndarray | None:
    """The budget table for ``w_others / w_new == key`` (see :func:`budget_table`), shared by
    every iteration: with equal weights there is one per live-slot count."""
    table = budget_table(dist, rate, 1 / (key + 1))
    return None if table is None else np.array(table)


class BudgetDraws:
    """The item budgets of a StochasticMux's activations: :meth:`draw` one for a new slot.

    Parameters
    ----------
    rate : float or None
        The mean budget; ``None`` for unlimited activations.
    dist : {'binomial', 'constant', 'poisson'}
        The law (see StochasticMux).
    equal_weights : bool
        Whether every streamer weighs the same: binomial budgets then come from a few tables.
    rng : numpy Generator
        For the table-drawn budgets' blocks, and numpy's scalar draws.
    uniform : callable
        One uniform in [0, 1) per call, for the binomial budgets drawn by search.

    Notes
    -----
    State: the position of the table-drawn budgets (:meth:`state`); the rest comes from
    ``rng`` and ``uniform``, which their owner saves.
    """

    __slots__ = (
        "binomial",
        "dist",
        "fixed",
        "key",
        "next_tabled",
        "rate",
        "rng",
        "tabled",
        "tabulate",
        "uniform",
    )

    def __init__(
        self,
        rate: float | None,
        dist: str,
        equal_weights: bool,
        rng: np.random.Generator,
        uniform: Callable[[], float],
    ) -> None:
        self.rate = rate
        self.dist = dist
        self.binomial = dist == "binomial"
        # The same for every activation (fixed; 0 if not), or drawn from cached tables (equal
        # weights, or poisson), or drawn afresh (binomial with weights).
        self.fixed = UNLIMITED if rate is None else math.ceil(rate) if dist == "constant" else 0
        self.tabulate = equal_weights or dist == "poisson"
        self.rng = rng
        self.uniform = uniform
        # Budgets from tables: a C-level stream, mapped by retable().
        self.tabled = Mapped(rng, as_list)
        self.next_tabled = self.tabled.draw
        self.key: float | None = None  # the current table's

    def draw(self, w_new: float, w_others: float) -> int:
        """An activation's item budget ``R`` (mean ``rate``, at least 1), for a slot of weight
        ``w_new`` among live slots of total weight ``w_others`` besides it."""
        if self.fixed:
            return self.fixed
        # The law depends on the weights only through w_others / w_new (poisson: not at all),
        # which takes one value per live-slot count with equal weights: sample from cached
        # inverse-CDF tables with one uniform.
        if self.tabulate:
            key = w_others / w_new if self.binomial else 0.0
            if key == self.key or self.retable(key):
                return 1 + self.next_tabled()
        rate = self.rate
        assert rate is not None
        if self.binomial and w_others > 0:
            p = w_new / (w_others + w_new)
            if p <= BINOMIAL_MAX_P:
                q = 1.0 - p
                n_real = (rate - 1.0) / q
                n = floor(n_real)  # (cheaper than int())
                # R - 1 = Binomial(N, q) for N = n or n + 1 (randomised rounding, so that
                # E[N] = n_real and E[R] = rate exactly) = n - Binomial(n, p) + Bernoulli(c):
                # the extra trial of N = n + 1 (probability n_real - n) succeeds with
                # probability q. One uniform decides the Bernoulli and, rescaled, the rest.
                u = self.uniform()
                c = (n_real - n) * q
                extra = u < c
                u = u / c if extra else (u - c) / (1.0 - c)
                if n * p > INVERSION_MAX_MEAN:
                    return 1 + extra + int(self.rng.binomial(n, q))
                # p, the new slot's share, is usually small: draw Binomial(n, p) by inverse
                # CDF, searching from 0 (a step or two) with the pmf's ratio (numpy's own
                # method for small n * p; inlined: this runs once per activation).
                f = q**n  # P(Binomial(n, p) = 0): far from underflow, as n * p is small
                ratio = p / q
                x = 0
                while u >= f and x < n:
                    u -= f
                    x += 1
                    f *= (n - x + 1) * ratio / x
                return 1 + extra + n - x
        return 1 + int(self.rng.poisson(rate - 1.0))

    def retable(self, key: float) -> bool:
        """Draw budgets from the table for ``key``; False if it has none (too large)."""
        assert self.rate is not None
        table = _budget_array(self.dist, self.rate, key)
        if table is None:
            return False
        self.tabled.remap(searched(table))
        self.key = key
        return True

    def state(self) -> list[Any]:
        """The table-drawn budgets' position (see :meth:`Uniforms.state`)."""
        return self.tabled.state()

    def load(self, state: list[Any], where: str = "state", path: str = "budgets") -> None:
        self.tabled.load(state, where, path)


def residual_budgets(
    dist: str,
    rate: float,
    w_new: np.ndarray,
    w_others: np.ndarray,
    rng: np.random.Generator,
) -> list[int]:
    """The budgets left in slots of a mux that has been running for a long time.

    Slot ``k`` runs a streamer of weight ``w_new[k]`` among live slots of total weight
    ``w_others[k]`` besides it; its budgets ``R`` follow the law :meth:`BudgetDraws.draw`
    gives that context. In the long run the budget left in the slot is ``r`` with probability
    ``P(R >= r) / E[R]``: the activation the slot holds at a random item is length-biased
    (``P(R = m) m / E[R]``), since it holds the slot for ``m`` draws of it, and the item is at a
    uniform position among its ``m`` (docs/design.md, "The stationary start"). Drawn as such:
    ``R*`` from the length-biased law, then ``r`` uniform in ``1 .. R*``.

    - ``constant``: ``R* = ceil(rate)``.
    - ``R = 1 + Poisson(lam)`` (``poisson``; ``binomial`` where it falls back to it):
      ``R* = 1 + Poisson(lam) + Bernoulli(lam / (1 + lam))``, as ``x P(X = x)`` is
      ``lam P(X + 1 = x)`` for ``X`` Poisson.
    - ``R = 1 + Binomial(N, q)`` with ``N`` randomly rounded from ``(rate - 1) / q``: ``N``
      length-biased by ``1 + N q``, then ``R* = 1 + Binomial(N, q)`` with probability
      ``1 / (1 + N q)``, else ``2 + Binomial(N - 1, q)`` (``x P(X = x) = N q P(Y + 1 = x)`` for
      ``Y`` binomial ``(N - 1, q)``).

    Numpy draws every slot at once (one call per step, whatever ``len(w_new)``).
    """
    n = len(w_new)
    if dist == "constant":
        size = np.full(n, math.ceil(rate), dtype=np.int64)
    else:
        lam = rate - 1.0
        size = np.empty(n, dtype=np.int64)
        p = w_new / (w_others + w_new)  # (every weight is positive)
        binomial = (p <= BINOMIAL_MAX_P) & (w_others > 0)
        if dist != "binomial":
            binomial[:] = False
        poisson = ~binomial
        k = int(poisson.sum())
        if k:
            size[poisson] = 1 + rng.poisson(lam, k) + (rng.random(k) * (1.0 + lam) < lam)
        k = n - k
        if k:
            q = 1.0 - p[binomial]
            n_real = lam / q
            trials = np.floor(n_real)
            frac = n_real - trials
            high = frac * (1.0 + (trials + 1.0) * q)  # N = n + 1, length-biased
            low = (1.0 - frac) * (1.0 + trials * q)
            trials += rng.random(k) * (high + low) < high
            biased = rng.random(k) * (1.0 + trials * q) >= 1.0  # probability N q / (1 + N q)
            x = rng.binomial((trials - biased).astype(np.int64), q) + biased
            size[binomial] = 1 + x
    left: list[int] = (1 + (rng.random(n) * size).astype(np.int64)).tolist()
    return left
