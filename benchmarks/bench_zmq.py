"""ZMQStreamer: throughput of a stream of batches through its background process.

A generator yields one preallocated batch ``{"X": float32 array}`` of 64 KiB, 1 MiB or 16 MiB
over and over, so producing costs nothing and what is measured is the transfer from the worker
process to the consumer. Each case is measured in steady state: the iterator is started and its
first item pulled before timing (process start-up is a case of its own). Batch cases are
reported as time per GB (throughput in GB/s = 1 / that, shown on stderr); small items per item.

Both sides run their own ``ZMQStreamer`` with its defaults (the reference: zero-copy send, a
copy into ``bytes`` on receipt, about 2000 items of read-ahead; ours: shared memory for large
batches, zero-copy frames otherwise, 8 items of read-ahead).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
from _timing import Report, Steady, Target, best_per_item, best_seconds, parse_args

import pescador
from pescador.zmq_stream import ZMQStreamer

SIZES = {"64 KiB": 64 << 10, "1 MiB": 1 << 20, "16 MiB": 16 << 20}
SMALL = "10-float items"
START = "iterate() + first item (process start)"


def batch_case(label: str) -> str:
    return f"{label} batches: time per GB"


TARGETS: dict[str, Target] = {batch_case(label): {"speedup": 2} for label in SIZES}


def batches(nbytes: int) -> Iterator[dict[str, np.ndarray]]:
    batch = {"X": np.random.default_rng(0).random(nbytes // 4, dtype=np.float32)}
    while True:
        yield batch


def measure_batches(nbytes: int, seconds: float, repeat: int) -> dict[str, Any]:
    run = Steady(ZMQStreamer(pescador.Streamer(batches, nbytes)))
    try:
        result = best_per_item(run, seconds, repeat)
    finally:
        run.close()
    per_gb = result["seconds_per_item"] * 1e9 / nbytes
    print(f"  {nbytes >> 10} KiB: {1 / per_gb:.2f} GB/s", file=sys.stderr)
    return {"seconds_per_item": per_gb, "items": result["items"], "unit": "GB"}


def measure_small(seconds: float, repeat: int) -> dict[str, Any]:
    run = Steady(ZMQStreamer(pescador.Streamer(batches, 40)))
    try:
        return best_per_item(run, seconds, repeat)
    finally:
        run.close()


def measure_start(repeat: int) -> dict[str, Any]:
    zs = ZMQStreamer(pescador.Streamer(batches, 40))

    def start() -> None:
        iterator = zs.iterate()
        next(iterator)
        iterator.close()

    return best_seconds(start, repeat)


def main() -> None:
    args = parse_args(__doc__)
    report = Report(pescador, args, TARGETS)
    for label, nbytes in SIZES.items():
        if args.quick and nbytes > (1 << 20):
            continue
        report.add(
            batch_case(label), lambda n=nbytes: measure_batches(n, args.time, args.repeat), "GB"
        )
    report.add(SMALL, lambda: measure_small(args.time, args.repeat), "item")
    report.add(START, lambda: measure_start(args.repeat), "call")
    report.emit()


if __name__ == "__main__":
    main()
