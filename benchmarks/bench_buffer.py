"""buffer_stream: batching a prebuilt list of dict items into dicts of stacked arrays.

Each item is ``{"X": float32 array (128,), "Y": int64 scalar}``; batches hold 32 items. The
list is built once, outside the timing, so what is measured is the batching alone (per batch).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from _timing import Report, Target, best_per_item, consume, parse_args

import pescador

TARGETS: dict[str, Target] = {
    "batches of 32, stacked on a new axis": {"speedup": 1.0},
}

BATCH = 32


def make_items(n: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    return [{"X": rng.standard_normal(128, dtype=np.float32), "Y": np.int64(i)} for i in range(n)]


def main() -> None:
    args = parse_args(__doc__)
    report = Report(pescador, args, TARGETS)
    items = make_items(10_000 if args.quick else 100_000)

    def run(n: int) -> int:
        batches = 0
        while batches < n:
            batches += consume(pescador.buffer_stream(items, BATCH))
        return batches

    report.add(
        "batches of 32, stacked on a new axis",
        lambda: best_per_item(run, args.time, args.repeat),
        "batch",
    )
    report.emit()


if __name__ == "__main__":
    main()
