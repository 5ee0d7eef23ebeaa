"""Timing helpers shared by the ``bench_*.py`` scripts.

Every benchmark script runs unchanged under two interpreters: this repository's pescador and
the reference pescador 3.0.0. It measures a set of named cases and prints one JSON line::

    {"cases": {"<case>": {"seconds_per_item": 1.2e-07, "items": 2000000, "unit": "item"}, ...},
     "targets": {"<case>": {"speedup": 25}, ...}, "pescador": "<path>", "python": "<version>"}

A case entry is either a time (``seconds_per_item``, lower is better, shown per ``unit``) or a
plain number (``value``, lower is better, e.g. a ratio), or ``null`` when it was skipped on this
side (a feature the reference lacks, or a case that only makes sense for ours), or
``{"error": "..."}`` when it raised. Targets (checked by ``run.py``) are either
``{"speedup": r}`` (reference / ours >= r) or ``{"at_most": v}`` (ours <= v, in seconds per item
or in the case's plain unit).

A *run* is a callable ``run(n) -> items``: it processes at least ``n`` items (a stream that ends
early is started again) and returns how many it processed. Work sizes are calibrated so each
timed run lasts about ``--time`` seconds, and the best (fastest) of ``--repeat`` runs is kept:
the machine is shared, and noise only ever makes a run slower.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from itertools import count, islice
from pathlib import Path
from typing import Any

Run = Callable[[int], int]
Target = dict[str, float]

#: The repository root (``benchmarks/..``): a pescador imported from here is "ours".
REPO_ROOT = Path(__file__).resolve().parent.parent


def consume(iterable: Iterable[Any]) -> int:
    """Exhaust ``iterable`` at C speed and return the number of items it produced."""
    counter = count()
    # zip pulls from ``iterable`` first, so ``counter`` advances once per item delivered; zip
    # reuses its result tuple because the deque drops it at once: a few ns per item in all.
    deque(zip(iterable, counter, strict=False), maxlen=0)
    return next(counter)


class Steady:
    """A run over one iterator of ``stream``, started (its first item pulled) before timing:
    an infinite stream in steady state, activation excluded."""

    def __init__(self, stream: Any) -> None:
        self.iterator = stream.iterate()
        next(self.iterator)

    def __call__(self, n: int) -> int:
        return consume(islice(self.iterator, n))

    def close(self) -> None:
        """Stop the iterator now (its worker processes, if any)."""
        close = getattr(self.iterator, "close", None)
        if close is not None:
            close()


def parse_args(description: str) -> argparse.Namespace:
    """The command line shared by every benchmark script."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--time", type=float, default=None, help="seconds per timed run")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per case (best)")
    parser.add_argument("--case", default="", help="only cases whose name contains this")
    parser.add_argument(
        "--all-cases",
        action="store_true",
        help="also run the cases meant for this repository's pescador only",
    )
    args = parser.parse_args()
    if args.time is None:
        args.time = 0.02 if args.quick else 0.25
    if args.repeat is None:
        args.repeat = 2 if args.quick else 3
    return args


def is_ours(module: Any) -> bool:
    """Whether the imported pescador ``module`` is this repository's package."""
    return REPO_ROOT in Path(module.__file__).resolve().parents


def _timed(run: Run, n: int) -> tuple[float, int]:
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        items = run(n)
        elapsed = time.perf_counter() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    if items <= 0:
        raise RuntimeError(f"a run asked for {n} items produced none")
    return elapsed, items


def calibrate(run: Run, seconds: float, start: int = 100) -> int:
    """The ``n`` for which ``run(n)`` lasts about ``seconds`` (the probes double as warm-up)."""
    n = start
    while True:
        elapsed, items = _timed(run, n)
        if elapsed >= min(seconds, 0.05) / 2 or n >= 10**9:
            return max(1, round(items * seconds / max(elapsed, 1e-9)))
        n = items * 10


def best_per_item(run: Run, seconds: float, repeat: int) -> dict[str, Any]:
    """Best-of-``repeat`` seconds per item of ``run``, each run lasting about ``seconds``."""
    n = calibrate(run, seconds)
    best = float("inf")
    best_items = 0
    for _ in range(repeat):
        elapsed, items = _timed(run, n)
        if elapsed / items < best:
            best, best_items = elapsed / items, items
    return {"seconds_per_item": best, "items": best_items}


def best_interleaved(runs: dict[str, Run], seconds: float, repeat: int) -> dict[str, Any]:
    """Like :func:`best_per_item` for several runs at once, alternating them round by round.

    Use it when cases are compared with each other (an overhead over a baseline), so that a
    noisy spell on the machine hits all of them alike.
    """
    sizes = {name: calibrate(run, seconds) for name, run in runs.items()}
    results: dict[str, Any] = {
        name: {"seconds_per_item": float("inf"), "items": 0} for name in runs
    }
    for _ in range(repeat):
        for name, run in runs.items():
            elapsed, items = _timed(run, sizes[name])
            if elapsed / items < results[name]["seconds_per_item"]:
                results[name] = {"seconds_per_item": elapsed / items, "items": items}
    return results


def best_seconds(action: Callable[[], object], repeat: int) -> dict[str, Any]:
    """Best-of-``repeat`` wall time of one call of ``action`` (a one-off cost, not a rate)."""

    def once(_n: int) -> int:
        action()
        return 1

    best = min(_timed(once, 1)[0] for _ in range(repeat))
    return {"seconds_per_item": best, "items": 1}


class Report:
    """Collects the cases of one script and prints them as the one JSON line."""

    def __init__(self, module: Any, args: argparse.Namespace, targets: dict[str, Target]):
        self.module = module
        self.args = args
        self.targets = targets
        self.cases: dict[str, Any] = {}
        self.failed = False

    def wanted(self, name: str) -> bool:
        return self.args.case in name

    def add(self, name: str, measure: Callable[[], dict[str, Any] | None], unit: str) -> None:
        """Record case ``name``, measured by ``measure()`` (``None`` means skipped)."""
        if not self.wanted(name):
            return
        try:
            result = measure()
        except Exception as exc:  # report it and go on: other cases are still worth having
            traceback.print_exc(file=sys.stderr)
            self.failed = True
            self.cases[name] = {"error": f"{type(exc).__name__}: {exc}"}
            return
        if result is not None:
            result.setdefault("unit", unit)
        self.cases[name] = result

    def add_many(self, measure: Callable[[], dict[str, Any]], unit: str) -> None:
        """Record several cases measured together (see :func:`best_interleaved`)."""
        try:
            results = measure()
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self.failed = True
            results = {"(all)": {"error": f"{type(exc).__name__}: {exc}"}}
        for name, result in results.items():
            if self.wanted(name):
                self.cases[name] = result if result is None else {"unit": unit, **result}

    def ours_only(self) -> bool:
        """Whether to run the cases that are too slow, or meaningless, for the reference."""
        return self.args.all_cases or is_ours(self.module)

    def emit(self) -> None:
        line = {
            "cases": self.cases,
            "targets": {k: v for k, v in self.targets.items() if k in self.cases},
            "pescador": str(Path(self.module.__file__).resolve().parent),
            "python": sys.version.split()[0],
        }
        print(json.dumps(line))
        sys.exit(1 if self.failed else 0)
