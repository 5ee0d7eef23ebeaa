"""Muxes: per-item cost of multiplexing many cheap streams.

Every streamer runs a generator that yields one preallocated ``{"x": float32 (4,)}`` item, so
the producers cost next to nothing and the mux's own work (choosing a slot, counting, replacing
streams) dominates. Infinite muxes are measured in steady state: the iterator is started and its
first item pulled before timing. Muxes that end (exhaustive mode, RoundRobin, Chain) are run to
their end, again and again, and their items counted; their activation is part of the cost.

Cases marked "ours only" are skipped under the reference (it is O(n_streamers) per item, so a
100 000-streamer mux would take hours); ``--all-cases`` runs them anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np
from _timing import (
    Report,
    Run,
    Steady,
    Target,
    best_interleaved,
    best_per_item,
    best_seconds,
    consume,
    parse_args,
)

import pescador

N_STREAMERS = 1000
N_ACTIVE = 32
RATE = 16
MODES = ("with_replacement", "single_active", "exhaustive")
DISTS = ("constant", "binomial", "poisson")
#: RoundRobinMux and ChainMux: this many finite streamers of FINITE_LENGTH items each.
N_FINITE, FINITE_LENGTH = 100, 1000
#: The scaling cases (ours only).
N_MANY = 100_000
SCALING = f"scaling: per-item time, {N_MANY // 1000}k / 1k streamers"
CONSTRUCT = f"StochasticMux({N_MANY // 1000}k streamers): construction"
FIRST_ITEM = f"StochasticMux({N_MANY // 1000}k streamers): iterate() + first item"
#: Weights that change (ours only: pescador 3.0 has no such thing).
SET_WEIGHT = f"StochasticMux({N_MANY // 1000}k streamers): set_weight (one streamer)"
SET_WEIGHTS = f"StochasticMux({N_MANY // 1000}k streamers): set_weights (every streamer)"
SCHEDULED = "StochasticMux with_replacement binomial weighted, WeightSchedule every 1000"
SHUFFLED_SET_WEIGHT = (
    f"ShuffledMux({N_MANY // 1000}k streamers, weights 1:1000): set_weight + the next item"
)
LIVE = (SET_WEIGHT, SET_WEIGHTS, SCHEDULED, SHUFFLED_SET_WEIGHT)
#: ShuffledMux's weighted cases: even weights (drawn by thinning), and spread ones (by
#: descent of a sum tree).
SHUFFLED_WEIGHTED = {"weighted": "random", "weighted 1:1000": "spread"}


def stochastic_name(mode: str, dist: str, weighted: bool) -> str:
    return f"StochasticMux {mode} {dist}" + (" weighted" if weighted else "")


TARGETS: dict[str, Target] = {
    **{
        stochastic_name(mode, dist, weighted): {"speedup": 25}
        for mode in MODES
        for dist in DISTS
        for weighted in (False, True)
    },
    f"ShuffledMux {N_STREAMERS} streamers": {"speedup": 25},
    f"ShuffledMux {N_ACTIVE} streamers": {"speedup": 10},
    **{
        f"ShuffledMux {N_STREAMERS} streamers {case}": {"speedup": 25}
        for case in SHUFFLED_WEIGHTED
    },
    "RoundRobinMux exhaustive": {"speedup": 4},
    "ChainMux exhaustive": {"speedup": 2},
    SCALING: {"at_most": 1.5},
    CONSTRUCT: {"at_most": 1.0},
    SET_WEIGHT: {"at_most": 1e-4},  # O(log n + n_active): far below a millisecond
    SET_WEIGHTS: {"at_most": 0.1},  # O(n) once
    # O(log n), and the rest of one block of draws mapped again at the next draw
    SHUFFLED_SET_WEIGHT: {"at_most": 2e-3},
}


def endless(_i: int) -> Iterator[dict[str, np.ndarray]]:
    item = {"x": np.zeros(4, np.float32)}
    while True:
        yield item


def finite(_i: int, n: int) -> Iterator[dict[str, np.ndarray]]:
    item = {"x": np.zeros(4, np.float32)}
    for _ in range(n):
        yield item


def endless_streamers(n: int) -> list[Any]:
    return [pescador.Streamer(endless, i) for i in range(n)]


def finite_streamers(n: int, length: int) -> list[Any]:
    return [pescador.Streamer(finite, i, length) for i in range(n)]


def random_weights(n: int) -> np.ndarray:
    """Positive weights, a fixed draw (a fresh array each call: 3.0 normalises it in place)."""
    return np.random.default_rng(0).uniform(0.1, 1.0, n)


def spread_weights(n: int) -> np.ndarray:
    """Weights from 1 to 1000, geometrically (a fresh array each call)."""
    return np.geomspace(1.0, 1000.0, n)


def to_the_end(mux: Any) -> Run:
    """Time a finite mux: iterate it to its end, as often as needed for ``n`` items."""

    def run(n: int) -> int:
        items = 0
        while items < n:
            items += consume(mux.iterate())
        return items

    return run


def stochastic(streamers: list[Any], mode: str, dist: str, weighted: bool) -> Run:
    mux = pescador.StochasticMux(
        streamers,
        N_ACTIVE,
        RATE,
        weights=random_weights(len(streamers)) if weighted else None,
        mode=mode,
        dist=dist,
        random_state=0,
    )
    return to_the_end(mux) if mode == "exhaustive" else Steady(mux)


def shuffled(streamers: list[Any], weights: str | None = None) -> Run:
    n = len(streamers)
    w = None if weights is None else (random_weights if weights == "random" else spread_weights)(n)
    return Steady(pescador.ShuffledMux(streamers, weights=w, random_state=0))


def main() -> None:
    args = parse_args(__doc__)
    report = Report(pescador, args, TARGETS)

    def add(name: str, make_run: Callable[[], Run]) -> None:
        if report.wanted(name):
            report.add(name, lambda: best_per_item(make_run(), args.time, args.repeat), "item")

    streamers = endless_streamers(N_STREAMERS)
    for mode in MODES:
        for dist in DISTS:
            for weighted in (False, True):
                name = stochastic_name(mode, dist, weighted)
                add(name, partial(stochastic, streamers, mode, dist, weighted))
    for n in (N_STREAMERS, N_ACTIVE):
        add(f"ShuffledMux {n} streamers", partial(shuffled, streamers[:n]))
    for case, weights in SHUFFLED_WEIGHTED.items():
        add(f"ShuffledMux {N_STREAMERS} streamers {case}", partial(shuffled, streamers, weights))

    finite_ones = finite_streamers(N_FINITE, FINITE_LENGTH)
    add("RoundRobinMux exhaustive", lambda: to_the_end(pescador.RoundRobinMux(finite_ones)))
    add("ChainMux exhaustive", lambda: to_the_end(pescador.ChainMux(finite_ones)))

    if report.ours_only():
        add_scaling(report, streamers, args.time, args.repeat)
        add_live(report, streamers, args.time, args.repeat)
    else:
        for name in (SCALING, CONSTRUCT, FIRST_ITEM, *LIVE):
            report.add(name, lambda: None, "")
    report.emit()


def add_live(report: Report, streamers: list[Any], seconds: float, repeat: int) -> None:
    """Weights that change: one streamer's and every streamer's, on a running iteration of a
    StochasticMux over 100 000 streamers, one streamer's of a ShuffledMux over as many; the
    per-item time under a schedule."""
    if report.wanted(SCHEDULED):
        weights = random_weights(len(streamers))
        schedule = pescador.WeightSchedule(lambda n: weights * (1 + (n // 1000) % 2), 1000)
        mux = pescador.StochasticMux(streamers, N_ACTIVE, RATE, weights=schedule, random_state=0)
        report.add(SCHEDULED, lambda: best_per_item(Steady(mux), seconds, repeat), "item")
    if not any(report.wanted(name) for name in (SET_WEIGHT, SET_WEIGHTS, SHUFFLED_SET_WEIGHT)):
        return
    many = endless_streamers(N_MANY)
    weights = random_weights(N_MANY)
    it = pescador.StochasticMux(many, N_ACTIVE, RATE, weights=weights, random_state=0).iterate()
    next(it)
    changes = iter(np.random.default_rng(1).integers(0, N_MANY, 10**6).tolist())
    it.set_weight(0, 1.0)  # (the first builds the candidates' sum tree, O(n) once)

    def one() -> None:
        it.set_weight(next(changes), 0.5)
        next(it)

    report.add(SET_WEIGHT, lambda: best_seconds(one, max(repeat, 20)), "call")
    report.add(SET_WEIGHTS, lambda: best_seconds(lambda: it.set_weights(weights), repeat), "call")
    if report.wanted(SHUFFLED_SET_WEIGHT):
        spread = spread_weights(N_MANY)
        shuffled_it = pescador.ShuffledMux(many, weights=spread, random_state=0).iterate()
        next(shuffled_it)
        shuffled_it.set_weight(0, 2.0)  # (the first indexes the slots, O(n) once)

        def shuffled_one() -> None:
            shuffled_it.set_weight(next(changes), 2.0)
            next(shuffled_it)

        report.add(
            SHUFFLED_SET_WEIGHT, lambda: best_seconds(shuffled_one, max(repeat, 20)), "call"
        )


def add_scaling(report: Report, streamers: list[Any], seconds: float, repeat: int) -> None:
    """Per-item time and start-up cost of a StochasticMux over 100 000 streamers."""
    if not any(report.wanted(name) for name in (SCALING, CONSTRUCT, FIRST_ITEM)):
        return
    many = endless_streamers(N_MANY)

    def default_mux(streamers: list[Any]) -> Any:
        return pescador.StochasticMux(streamers, N_ACTIVE, RATE, random_state=0)

    def per_item() -> dict[str, Any]:
        runs = {"1k": Steady(default_mux(streamers)), "100k": Steady(default_mux(many))}
        results = best_interleaved(runs, seconds, repeat)
        ratio = results["100k"]["seconds_per_item"] / results["1k"]["seconds_per_item"]
        return {SCALING: {"value": ratio, "items": results["100k"]["items"], "unit": "x"}}

    if report.wanted(SCALING):
        report.add_many(per_item, "x")
    report.add(CONSTRUCT, lambda: best_seconds(lambda: default_mux(many), repeat), "call")
    mux = default_mux(many)
    report.add(FIRST_ITEM, lambda: best_seconds(lambda: next(mux.iterate()), repeat), "call")


if __name__ == "__main__":
    main()
