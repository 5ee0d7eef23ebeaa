"""parallel: moving items between processes, and using more than one core.

- transfer: batches ``{"X": float32 array}`` of 64 KiB, 1 MiB and 16 MiB, produced by a
  generator that yields the same preallocated array, consumed and dropped. The reference runs
  its ``ZMQStreamer``; ours runs ``ParallelStreamer(stream, n_workers=1)`` (shared memory).
  The time per batch gives the GB/s: speed-up = ratio of GB/s.
- CPU-bound (ours only): a mux of 8 streams whose items each take about 1 ms of numpy work
  (sorting 20 000 floats), in one process and in ``ParallelStreamer(mux, 2)``. Reported as the
  ratio of the time per item, 2 workers / 1 process (≤ 1 / 1.7 is the target).
- disk (ours only): the main job of ``bench_disk.py`` (NPZ windows, StochasticMux, batches of
  16 windows) in one process and in 2 workers; ratio as above (≤ 1 / 1.5).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from _timing import Report, Run, Steady, Target, best_interleaved, best_per_item, parse_args

import pescador

SIZES = {"64 KiB": 64 << 10, "1 MiB": 1 << 20, "16 MiB": 16 << 20}
CPU = "CPU-bound (1 ms/item), time per item: 2 workers / 1 process"
DISK = "disk pipeline (NPZ windows), time per window: 2 workers / 1 process"

TARGETS: dict[str, Target] = {
    **{f"transfer {name} batches": {"speedup": 2} for name in SIZES},
    CPU: {"at_most": 1 / 1.7},
    DISK: {"at_most": 1 / 1.5},
}


def batches(nbytes: int) -> Iterator[dict[str, np.ndarray]]:
    item = {"X": np.ones(nbytes // 4, np.float32)}
    while True:
        yield item


def busy(seed: int) -> Iterator[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    while True:
        values = rng.random(20_000)
        yield {"X": np.sort(values)[:4]}


def transfer_run(nbytes: int) -> Run:
    source = pescador.Streamer(batches, nbytes)
    if hasattr(pescador, "ParallelStreamer"):
        return Steady(pescador.ParallelStreamer(source, 1))
    return Steady(pescador.ZMQStreamer(source))


def ratio(single: Any, parallel: Any, seconds: float, repeat: int) -> dict[str, Any]:
    results = best_interleaved({"1": Steady(single), "2": Steady(parallel)}, seconds, repeat)
    value = results["2"]["seconds_per_item"] / results["1"]["seconds_per_item"]
    return {"value": value, "items": results["2"]["items"], "unit": "x"}


def cpu_case(seconds: float, repeat: int) -> dict[str, Any]:
    streams = [pescador.Streamer(busy, i) for i in range(8)]
    mux = pescador.StochasticMux(streams, 4, 16, random_state=0)
    return ratio(mux, pescador.ParallelStreamer(mux, 2), seconds, repeat)


def disk_case(seconds: float, repeat: int, quick: bool) -> dict[str, Any]:
    from bench_disk import N_FILES, QUICK_FILES, corpus, warm

    folder = corpus(QUICK_FILES if quick else N_FILES)
    warm(folder)
    streams = pescador.io.npz_streamers(folder / "npz", 16)
    mux = pescador.StochasticMux(streams, 32, 16, random_state=0)
    pipeline = pescador.Streamer(pescador.buffer_stream, mux, 16)
    single = ratio(pipeline, pescador.ParallelStreamer(pipeline, 2), seconds, repeat)
    return single


def main() -> None:
    args = parse_args(__doc__)
    report = Report(pescador, args, TARGETS)
    seconds = args.time or (0.2 if args.quick else 1.0)
    repeat = args.repeat or 3
    for name, nbytes in SIZES.items():
        if args.quick and nbytes > 1 << 20:
            continue
        report.add(
            f"transfer {name} batches",
            lambda nbytes=nbytes: best_per_item(transfer_run(nbytes), seconds, repeat),
            "batch",
        )
    if report.ours_only():
        report.add(CPU, lambda: cpu_case(seconds, repeat), "x")
        report.add(DISK, lambda: disk_case(seconds, repeat, args.quick), "x")
    else:
        report.add(CPU, lambda: None, "x")
        report.add(DISK, lambda: None, "x")
    report.emit()


if __name__ == "__main__":
    main()
