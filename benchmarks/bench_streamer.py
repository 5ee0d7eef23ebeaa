"""Streamer overhead: iterating a ``Streamer`` against iterating its generator directly.

The generator yields one preallocated object, so it costs almost nothing and what is left is the
per-item cost of the wrapper. ``iterate: overhead over raw generator`` is the difference of the
first two cases, measured alternately in the same process.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from _timing import Report, Target, best_interleaved, best_per_item, parse_args

import pescador

TARGETS: dict[str, Target] = {
    # The reference adds about 30 ns per item.
    "iterate: overhead over raw generator": {"at_most": 15e-9},
    "list(iterate(max_iter=n)) of an endless stream": {"speedup": 1.0},
    "cycle(max_iter=n), restarting every 100 items": {"speedup": 1.0},
}

ITEM = {"x": 0}


def gen(n: int) -> Iterator[dict[str, int]]:
    item = ITEM
    for _ in range(n):
        yield item


def endless() -> Iterator[dict[str, int]]:
    item = ITEM
    while True:
        yield item


def run_raw(n: int) -> int:
    for _x in gen(n):
        pass
    return n


def run_iterate(n: int) -> int:
    for _x in pescador.Streamer(gen, n).iterate():
        pass
    return n


def run_list(n: int) -> int:
    return len(list(pescador.Streamer(endless).iterate(max_iter=n)))


def run_cycle(n: int) -> int:
    for _x in pescador.Streamer(gen, 100).cycle(max_iter=n):
        pass
    return n


def overhead(seconds: float, repeat: int) -> dict[str, dict[str, float]]:
    results = best_interleaved({"raw generator": run_raw, "iterate": run_iterate}, seconds, repeat)
    added = results["iterate"]["seconds_per_item"] - results["raw generator"]["seconds_per_item"]
    results["iterate: overhead over raw generator"] = {
        "seconds_per_item": added,
        "items": results["iterate"]["items"],
    }
    return results


def main() -> None:
    args = parse_args(__doc__)
    report = Report(pescador, args, TARGETS)
    # The overhead is a small difference of two times: more alternations steady it.
    report.add_many(lambda: overhead(args.time, max(args.repeat, 5)), "item")
    for name, run in [
        ("list(iterate(max_iter=n)) of an endless stream", run_list),
        ("cycle(max_iter=n), restarting every 100 items", run_cycle),
    ]:
        report.add(name, partial(best_per_item, run, args.time, args.repeat), "item")
    report.emit()


if __name__ == "__main__":
    main()
