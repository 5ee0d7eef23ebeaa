"""torch: pescador.torch.StreamDataset in torch's DataLoader (needs torch on the side that runs).

Ours only (ratios of time per item; lower is better):

- adapter, num_workers=0: the disk main job (NPZ windows, StochasticMux, batches of 64
  windows) through ``DataLoader(StreamDataset(batches), batch_size=None)``, against the same
  DataLoader over a bare ``IterableDataset`` whose ``__iter__`` returns ``iter(batches)``:
  what the adapter adds, at most 1.05. Beside it, against a plain loop over the stream that
  converts each batch as the loader does (``default_convert``): what the DataLoader adds.
  Measured in CPU time of the process (all of it runs there), which other jobs on a shared
  machine do not inflate.
- CPU-bound (about 1 ms of numpy per item, a mux of 8 streams): ``DataLoader(num_workers=2,
  batch_size=16, prefetch_factor=8)`` against one process (target: 1.6x the items/s, i.e. at
  most 1 / 1.6); beside it the default ``prefetch_factor=2`` (on a shared machine a worker
  then often waits for the other: each may run only 2 batches ahead), ``batch_size=None``
  (one item per transfer) and ``ParallelStreamer(mux, 2)``.
- disk main job: the pipeline with batches of 256 windows through ``DataLoader(num_workers=2,
  prefetch_factor=4)`` against one process (target 1.4x); beside it ``ParallelStreamer``.

Both sides (reference: pescador 3.0.0 wrapped naively, ``__iter__`` returning
``iter(stream)``, in an ``IterableDataset``): one pass over a ``ChainMux`` of 8 finite
CPU-bound streams (800 items of 1 ms: a small dataset's epoch) through ``DataLoader(
num_workers=2, batch_size=16)``, the workers' start included: the time per *distinct* item
delivered and the fraction of items delivered twice. The reference side needs torch in the
reference's virtualenv; without it these cases are n/a. To measure them::

    bash ../shared/tools/reference-env.sh /tmp/pescador-reference-torch   # prints its python
    /tmp/pescador-reference-torch/bin/python -m pip install torch   # a CPU build if offered
    .venv/bin/python benchmarks/run.py --only torch \\
        --reference-python /tmp/pescador-reference-torch/bin/python
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

import numpy as np
from _timing import Report, Run, Target, best_interleaved, consume, is_ours, parse_args

import pescador

OVERHEAD = "adapter, num_workers=0: StreamDataset / naive IterableDataset, in a DataLoader"
OVERHEAD_LOOP = "num_workers=0: DataLoader(StreamDataset) / plain loop with default_convert"
CPU_DL = "CPU-bound (1 ms/item), time per item: DataLoader(2 workers, batch 16) / 1 process"
CPU_DL_2 = "CPU-bound (1 ms/item), time per item: the same, prefetch_factor=2 / 1 process"
CPU_DL_ITEMS = "CPU-bound (1 ms/item), time per item: DataLoader(2 workers, unbatched) / 1 process"
CPU_PS = "CPU-bound (1 ms/item), time per item: ParallelStreamer(2) / 1 process"
DISK_DL = "disk job (batches of 256 windows), time per window: DataLoader(2 workers) / 1 process"
DISK_PS = "disk job (batches of 256 windows), time per window: ParallelStreamer(2) / 1 process"
DISTINCT = "one pass, DataLoader(2 workers, batch 16): time per distinct item"
DUPLICATES = "one pass, DataLoader(2 workers, batch 16): fraction of items delivered twice"

TARGETS: dict[str, Target] = {
    OVERHEAD: {"at_most": 1.05},
    CPU_DL: {"at_most": 1 / 1.6},
    DISK_DL: {"at_most": 1 / 1.4},
    DUPLICATES: {"at_most": 0.0},
}
ITEM_WORK = 80_000  # floats sorted per item: about 1 ms on the 2-core VM
CPU_BATCH = 16
DISK_WINDOWS = 256


def busy(seed: int) -> Iterator[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    j = 0
    while True:
        values = rng.random(ITEM_WORK)
        yield {"X": np.sort(values)[:4], "id": seed, "j": j}
        j += 1


def finite_busy(seed: int, n: int) -> Iterator[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    for j in range(n):
        values = rng.random(ITEM_WORK)
        yield {"X": np.sort(values)[:4], "id": seed, "j": j}


def cpu_mux() -> Any:
    streams = [pescador.Streamer(busy, i) for i in range(8)]
    return pescador.StochasticMux(streams, 4, 16, random_state=0)


def dataset(stream: Any) -> Any:
    """Ours: a StreamDataset. The reference: the naive wrapper users of 3.0 wrote."""
    import torch.utils.data

    if is_ours(pescador):
        from pescador.torch import StreamDataset

        return StreamDataset(stream)

    class Naive(torch.utils.data.IterableDataset):  # type: ignore[misc]
        def __iter__(self) -> Any:
            return iter(stream)

    return Naive()


def loader_run(stream: Any, batch_size: int | None, num_workers: int = 2, **options: Any) -> Run:
    """``run(n)``: at least ``n`` items from one running DataLoader (whole batches)."""
    import torch.utils.data

    loader = torch.utils.data.DataLoader(
        dataset(stream), batch_size=batch_size, num_workers=num_workers, **options
    )
    batches = iter(loader)
    next(batches)  # the workers are up
    per = batch_size or 1

    def run(n: int) -> int:
        return consume(islice(batches, -(-n // per))) * per

    return run


def stream_run(stream: Any, per: int = 1, convert: Callable[[Any], Any] | None = None) -> Run:
    iterator = stream.iterate()
    next(iterator)

    def run(n: int) -> int:
        batches = islice(iterator, -(-n // per))
        return consume(batches if convert is None else map(convert, batches)) * per

    return run


def ratios(runs: dict[str, Run], base: str, seconds: float, repeat: int) -> dict[str, Any]:
    results = best_interleaved(runs, seconds, repeat)
    one = results[base]["seconds_per_item"]
    return {
        name: {"value": r["seconds_per_item"] / one, "items": r["items"], "unit": "x"}
        for name, r in results.items()
        if name != base
    }


def disk_pipeline(quick: bool, windows: int) -> Any:
    from bench_disk import N_FILES, QUICK_FILES, corpus, warm

    folder = corpus(QUICK_FILES if quick else N_FILES)
    warm(folder)
    io = importlib.import_module("pescador.io")
    mux = pescador.StochasticMux(io.npz_streamers(folder / "npz", 16), 32, 16, random_state=0)
    return pescador.Streamer(pescador.buffer_stream, mux, windows)


def cpu_seconds(runs: dict[str, Run], seconds: float, repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` CPU time per item of each run (this process's CPU time, alternating
    the runs): unlike wall time, it does not count other jobs on a shared machine, which is
    what a few percent between single-process runs needs."""
    import time

    from _timing import calibrate

    sizes = {name: calibrate(run, seconds) for name, run in runs.items()}
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.process_time()
            items = run(sizes[name])
            best[name] = min(best[name], (time.process_time() - start) / items)
    return best


def overhead_cases(seconds: float, repeat: int, quick: bool) -> dict[str, Any]:
    import torch.utils.data
    from torch.utils.data import default_convert

    batches = disk_pipeline(quick, 64)

    class Naive(torch.utils.data.IterableDataset):  # type: ignore[misc]
        def __iter__(self) -> Any:
            return iter(batches.iterate())

    def naive_run() -> Run:
        loader = iter(torch.utils.data.DataLoader(Naive(), batch_size=None))
        next(loader)
        return lambda n: consume(islice(loader, n))

    runs = {
        "converted": stream_run(batches, convert=default_convert),
        "naive": naive_run(),
        "loader": loader_run(batches, None, num_workers=0),
    }
    best = cpu_seconds(runs, seconds, 2 * repeat)
    return {
        OVERHEAD: {"value": best["loader"] / best["naive"]},
        OVERHEAD_LOOP: {"value": best["loader"] / best["converted"]},
    }


def cpu_cases(seconds: float, repeat: int) -> dict[str, Any]:
    mux = cpu_mux()
    runs = {
        "1": stream_run(mux),
        CPU_DL: loader_run(mux, CPU_BATCH, prefetch_factor=8),
        CPU_DL_2: loader_run(mux, CPU_BATCH),
        CPU_DL_ITEMS: loader_run(mux, None),
        CPU_PS: stream_run(pescador.ParallelStreamer(mux, 2)),
    }
    return ratios(runs, "1", seconds, repeat)


def disk_cases(seconds: float, repeat: int, quick: bool) -> dict[str, Any]:
    batches = disk_pipeline(quick, DISK_WINDOWS)
    runs = {
        "1": stream_run(batches, DISK_WINDOWS),
        DISK_DL: loader_run(batches, None, prefetch_factor=4),
        DISK_PS: stream_run(pescador.ParallelStreamer(batches, 2), DISK_WINDOWS),
    }
    # loader_run counts DataLoader items: here batches of DISK_WINDOWS windows
    results = best_interleaved(runs, seconds, repeat)
    one = results["1"]["seconds_per_item"]
    dl = results[DISK_DL]["seconds_per_item"] / DISK_WINDOWS
    ps = results[DISK_PS]["seconds_per_item"]
    return {DISK_DL: {"value": dl / one, "unit": "x"}, DISK_PS: {"value": ps / one, "unit": "x"}}


def naive_cases(repeat: int, quick: bool) -> dict[str, Any]:
    """One pass through a DataLoader with 2 workers: time per distinct item, duplicates."""
    import time

    import torch.utils.data

    per_stream = 10 if quick else 100
    streams = [pescador.Streamer(finite_busy, i, per_stream) for i in range(8)]
    stream = pescador.ChainMux(streams)
    best, duplicates = float("inf"), 0.0
    for _ in range(repeat):
        seen: set[tuple[int, int]] = set()
        total = 0
        start = time.perf_counter()
        loader = torch.utils.data.DataLoader(dataset(stream), batch_size=CPU_BATCH, num_workers=2)
        for batch in loader:
            seen.update(zip(batch["id"].tolist(), batch["j"].tolist(), strict=True))
            total += len(batch["id"])
        elapsed = time.perf_counter() - start
        if len(seen) != 8 * per_stream:
            raise RuntimeError(f"{len(seen)} distinct items of {8 * per_stream}")
        best = min(best, elapsed / len(seen))
        duplicates = 1 - len(seen) / total
    return {
        DISTINCT: {"seconds_per_item": best, "items": 8 * per_stream, "unit": "item"},
        DUPLICATES: {"value": duplicates, "unit": ""},
    }


def main() -> None:
    args = parse_args(__doc__)
    report = Report(pescador, args, TARGETS)
    seconds = args.time or (0.2 if args.quick else 1.0)
    repeat = args.repeat or 3
    try:
        import torch
    except ImportError:  # the reference's virtualenv, usually: nothing to measure
        torch = None
    if torch is not None:
        torch.set_num_threads(1)
    ours = report.ours_only() and torch is not None
    if torch is None:
        for name in (DISTINCT, DUPLICATES):
            report.add(name, lambda: None, "item")
    else:
        warnings.filterwarnings("ignore", category=UserWarning)  # torch's advice on workers
        report.add_many(lambda: naive_cases(repeat, args.quick), "item")
    if ours:
        report.add_many(lambda: overhead_cases(seconds, repeat, args.quick), "x")
        report.add_many(lambda: cpu_cases(seconds, repeat), "x")
        report.add_many(lambda: disk_cases(seconds, repeat, args.quick), "x")
    else:
        for name in (
            OVERHEAD,
            OVERHEAD_LOOP,
            CPU_DL,
            CPU_DL_2,
            CPU_DL_ITEMS,
            CPU_PS,
            DISK_DL,
            DISK_PS,
        ):
            report.add(name, lambda: None, "x")
    report.emit()


if __name__ == "__main__":
    main()
