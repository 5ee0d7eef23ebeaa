"""pescador.stats: what watching a stream costs, and how fast ``pescador inspect`` reads a corpus.

*Overhead* (a ratio, target <= 1.05): the per-item time of an iterator while watched over
its time while not, in one run: one iterator, whose slot table is watched in every other run
(so the same objects and memory serve both; two iterators of one mux differ by up to 25% on
the shared machine, from where their objects lie in memory), in steady state, in CPU time of
the thread (wall time there mostly measures the other processes). Streams:
``StochasticMux`` over 1000 endless tiny generators (each yields one preallocated item),
``n_active=32``, at ``rate`` 16 (the demo's) and 4 (short activations: the worst case, as the
counting is per activation); two levels of nested muxes; and the windows of a corpus of NPZ
files (``pescador.io``, whose streamers also count the bytes they read). A last case runs
the same iterator unwatched both ways: how far from 1 the method itself lands.

*Inspect*: ``pescador inspect`` (``main(["inspect", DIR, "--json"])``) over a corpus of 2000
NPZ files (500 with ``--quick``), headers only, the layout cache cleared before each run (the
operating system's page cache is warm: the files were just written). Seconds per file.

pescador 3.0 has neither: every case is ours only (``null`` there).
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import tempfile
import time
from itertools import islice
from typing import Any

import numpy as np
from _timing import Report, Target, best_seconds, consume, parse_args

import pescador

N_STREAMERS = 1000
N_ACTIVE = 32
N_FILES = 2000

OVERHEAD = "watched / unwatched per-item time: "
TARGETS: dict[str, Target] = {
    OVERHEAD + "StochasticMux rate 16": {"at_most": 1.05},
    OVERHEAD + "StochasticMux rate 4": {"at_most": 1.05},
    OVERHEAD + "nested muxes": {"at_most": 1.05},
    OVERHEAD + "NPZ windows": {"at_most": 1.05},
    "inspect: headers, per file": {"at_most": 2e-3},
}

ITEM = {"x": np.zeros(4, np.float32)}


def endless(item: Any) -> Any:
    while True:
        yield item


def flat(rate: float) -> Any:
    streams = [pescador.Streamer(endless, ITEM) for _ in range(N_STREAMERS)]
    weights = np.random.default_rng(0).uniform(0.5, 2, N_STREAMERS)
    return pescador.StochasticMux(streams, N_ACTIVE, rate, weights=weights, random_state=0)


def nested() -> Any:
    inner = [
        pescador.StochasticMux(
            [pescador.Streamer(endless, ITEM) for _ in range(100)], 4, 8, random_state=None
        )
        for _ in range(10)
    ]
    return pescador.StochasticMux(inner, 4, 64, random_state=0)


def overhead(stream: Any, args: Any, watch: bool = True) -> dict[str, Any]:
    """The ratio of the per-item times, watched over unwatched, of *one* iterator whose slot
    table is watched in every other run (``table.stats`` set to its recorder, or ``None``):
    the same objects and memory both ways, so the ratio measures the counting and nothing
    else. CPU time of this thread (the time the process waits for a core on a loaded machine
    is not counted), runs of about ``args.time`` seconds, best of many. ``watch=False``
    compares unwatched with unwatched: how far from 1 the method itself lands."""
    from pescador.stats._watch import _mux_iterator

    it = stream.iterate()
    pescador.stats.watch(it)
    found = _mux_iterator(it)
    assert found is not None and found.policy is not None
    table = found.policy.table
    recorder = table.stats if watch else None
    try:
        consume(islice(it, 10_000))
        n = 1000
        while True:  # calibrate: n items take about args.time seconds
            start = time.thread_time()
            consume(islice(it, n))
            if time.thread_time() - start >= args.time / 4:
                n = int(n * args.time / max(time.thread_time() - start, 1e-9))
                break
            n *= 4
        best = {"plain": float("inf"), "watched": float("inf")}
        pair = [("plain", None), ("watched", recorder)]
        for _ in range(max(7, 3 * args.repeat)):
            pair.reverse()  # (neither always runs first)
            for name, stats in pair:
                table.stats = stats
                gc.disable()
                start = time.thread_time()
                consume(islice(it, n))
                best[name] = min(best[name], (time.thread_time() - start) / n)
                gc.enable()
    finally:
        it.close()
    return {
        "value": best["watched"] / best["plain"],
        "plain_ns": 1e9 * best["plain"],
        "watched_ns": 1e9 * best["watched"],
    }


def main() -> None:
    args = parse_args(__doc__.split("\n\n")[0])
    report = Report(pescador, args, TARGETS)
    if not report.ours_only() or not hasattr(pescador, "stats"):
        for name in TARGETS:
            report.add(name, lambda: None, "ratio")
        report.emit()
        return
    from pescador.cli import main as command
    from pescador.cli import write_corpus

    floor = "unwatched / unwatched (the method's floor): StochasticMux rate 16"
    report.add(floor, lambda: overhead(flat(16), args, watch=False), "ratio")
    for rate in (16, 4):
        name = OVERHEAD + f"StochasticMux rate {rate}"
        report.add(name, lambda rate=rate: overhead(flat(rate), args), "ratio")
    report.add(OVERHEAD + "nested muxes", lambda: overhead(nested(), args), "ratio")
    with tempfile.TemporaryDirectory(prefix="pescador-bench-") as folder:
        n_files = 500 if args.quick else N_FILES
        write_corpus(folder, files=n_files, rows=200, features=8)

        def windows() -> Any:
            streams = pescador.io.npz_streamers(folder, 16)
            return pescador.StochasticMux(streams, 32, 16, random_state=0)

        report.add(OVERHEAD + "NPZ windows", lambda: overhead(windows(), args), "ratio")

        def inspect() -> None:
            pescador.io._LAYOUTS.clear()
            with contextlib.redirect_stdout(io.StringIO()):
                assert command(["inspect", folder, "--json", "--window", "16"]) == 0

        def per_file() -> dict[str, Any]:
            result = best_seconds(inspect, args.repeat)
            result["seconds_per_item"] /= n_files
            result["items"] = n_files
            return result

        report.add("inspect: headers, per file", per_file, "file")
        assert len(os.listdir(folder)) == n_files
    report.emit()


if __name__ == "__main__":
    main()
