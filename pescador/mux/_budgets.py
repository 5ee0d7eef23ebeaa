"""The laws of an activation's item budget, tabulated for inverse-CDF sampling (private).

StochasticMux gives each activation a budget of items with mean ``rate`` (see its ``dist``).
Where the law allows, budgets are sampled from a table of cumulative probabilities with one
uniform; these constants say when a law is tabulated, or drawn another way.
"""

from __future__ import annotations

import itertools
import math

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
