"""ray: pescador.ray.RayStreamer on a local Ray instance (ours only; needs ray).

Ray runs on this machine (``ray.init`` on 127.0.0.1, no dashboard, a 512 MiB object store,
workers at nice 0 like ParallelStreamer's instead of Ray's 15, no pool of idle workers
restarted behind the timed runs); every case is ours only, and n/a where ray is not installed.

- CPU-bound: a mux of 8 streams whose items each take about 1 ms of numpy work (sorting 40 000
  floats), through ``RayStreamer(mux, 2)`` against ``RayStreamer(mux, 1)``: the ratio of the
  time per item, 2 actors / 1 actor (target at most 1 / 1.6). Beside it, 2 actors against the
  mux in the consumer's own process, and ``ParallelStreamer(mux, 2)`` against it too.
- CPU time (less sensitive to other jobs than wall time): per item, of the two actors'
  processes (Ray's threads included) against the mux in one process, and of the consumer.
- transfer: batches ``{"X": float32 array}`` of 64 KiB and 1 MiB, distinct arrays (a pickle
  would send a repeated array once), through one actor and through one ``ParallelStreamer``
  worker: the time per delivered batch, consumed and dropped.
- startup: ``iterate()`` to the first item with 2 actors (Ray already running), beside
  ``ParallelStreamer``'s with 2 workers; and ``ray.init`` itself, once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from itertools import islice
from typing import Any

import numpy as np
from _timing import (
    Report,
    Steady,
    Target,
    _timed,
    best_per_item,
    calibrate,
    consume,
    parse_args,
)

import pescador

CPU = "CPU-bound (1 ms/item), time per item: RayStreamer 2 actors / 1 actor"
CPU_PROCESS = "CPU-bound (1 ms/item), time per item: RayStreamer 2 actors / 1 process"
CPU_PS = "CPU-bound (1 ms/item), time per item: ParallelStreamer 2 workers / 1 process"
CPU_ACTORS = "CPU-bound (1 ms/item), CPU time per item: in 2 actors / in 1 process"
CPU_CONSUMER = "CPU-bound (1 ms/item), CPU time per item of the consumer of 2 actors"
SIZES = {"64 KiB": 64 << 10, "1 MiB": 1 << 20}
START = "startup: iterate() to the first item, RayStreamer 2 actors"
START_PS = "startup: iterate() to the first item, ParallelStreamer 2 workers"
INIT = "startup: ray.init (local instance, once)"

TARGETS: dict[str, Target] = {CPU: {"at_most": 1 / 1.6}}
ITEM_WORK = 40_000  # floats sorted per item: about 1 ms on the 2-core VM
#: Items taken untimed before each timed run: more than 2 actors' prefetch (2 calls of 64).
DRAIN = 300


def busy(seed: int) -> Iterator[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    pid = os.getpid()  # which process made the item (to read its CPU time)
    while True:
        values = rng.random(ITEM_WORK)
        # A copy, not a view: an actor holds an answer's items until it sends them, and a
        # view would keep the whole sorted array alive meanwhile (64 of them: 20 MB, which
        # malloc then returns to the system and faults in again, item after item).
        yield {"X": np.sort(values)[:4].copy(), "pid": pid}


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_costs(mux: Any, n: int) -> dict[str, dict[str, Any]]:
    """CPU seconds per item (not wall time: other jobs on the machine hardly change it) of the
    mux in one process, of two actors running it (their processes' CPU, Ray's threads
    included), and of the consumer reading from them. The throughput model of
    docs/scaling.md: k actors on k free cores run ``k * in_process / in_actors`` times as
    fast as one process, until the consumer's ``1 / consumer`` items per second bound it."""
    from pescador.ray import RayStreamer

    start = time.process_time()
    consume(mux.iterate(max_iter=n))
    in_process = (time.process_time() - start) / n
    it = RayStreamer(mux, 2).iterate()
    try:
        pids = {int(item["pid"]) for item in islice(it, DRAIN)}
        before = {pid: cpu_seconds(pid) for pid in pids}
        start = time.process_time()
        consume(islice(it, n))
        consumer = (time.process_time() - start) / n
        in_actors = sum(cpu_seconds(pid) - before[pid] for pid in pids) / n
    finally:
        it.close()
    return {
        CPU_ACTORS: {"value": in_actors / in_process, "items": n, "unit": "x"},
        CPU_CONSUMER: {"seconds_per_item": consumer, "items": n, "unit": "item"},
    }


def batches(nbytes: int) -> Iterator[dict[str, np.ndarray]]:
    # Distinct arrays, enough that an actor's answer (at most 8 MiB or 64 items) never holds
    # one twice.
    pool = [np.ones(nbytes // 4, np.float32) for _ in range(max(16, (16 << 20) // nbytes))]
    while True:
        yield from ({"X": x} for x in pool)


def start_ray() -> float:
    import ray

    start = time.perf_counter()
    ray.init(
        num_cpus=os.cpu_count() or 2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=512 << 20,
        log_to_driver=False,
        # Ray refills its pool of idle worker processes after each actor takes one: starting
        # Python processes in the background of the timed runs (seconds of CPU on 2 cores).
        # Without the pool, an actor starts its own process when it is created (untimed).
        # And Ray runs its workers at nice 15: on a machine shared with other jobs they get
        # a fraction of a core. ParallelStreamer's workers run at nice 0: compare like with
        # like.
        _system_config={"enable_worker_prestart": False, "worker_niceness": 0},
    )
    return time.perf_counter() - start


def steady(stream: Any, seconds: float, repeat: int, warm: int = 0) -> dict[str, Any]:
    """Best time per item of ``stream`` in steady state: after ``warm`` items (an actor's
    first answers, computed ahead while the pipeline was idle, would time as a burst), runs
    back to back on one iterator, nothing else running in between."""
    run = Steady(stream)
    try:
        run(warm)
        return best_per_item(run, seconds, repeat)
    finally:
        run.close()


def ratio(base: Any, other: Any, seconds: float, repeat: int) -> dict[str, Any]:
    """Time per item of ``other`` / ``base``, in alternating rounds (a noisy spell hits both
    alike). Each timed run is a fresh iteration, the only one alive (an idle one would keep
    producing into its prefetch, stealing the CPU from the one timed), after ``DRAIN`` items
    taken untimed (its actors' first answers, computed while it was not read, would time as a
    burst)."""
    streams = (base, other)
    sizes = []
    for stream in streams:
        run = Steady(stream)
        run(DRAIN)
        sizes.append(calibrate(run, seconds))
        run.close()
    best = [float("inf")] * 2
    for _ in range(repeat):
        for i, stream in enumerate(streams):
            run = Steady(stream)
            try:
                run(DRAIN)
                elapsed, n = _timed(run, sizes[i])
            finally:
                run.close()
            best[i] = min(best[i], elapsed / n)
    return {"value": best[1] / best[0], "items": sizes[1], "unit": "x"}


def first_item(stream: Any, repeat: int) -> dict[str, Any]:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        it = stream.iterate()
        next(it)
        best = min(best, time.perf_counter() - start)
        it.close()
    return {"seconds_per_item": best, "items": 1}


def main() -> None:
    args = parse_args(__doc__)
    report = Report(pescador, args, TARGETS)
    seconds = args.time or (0.5 if args.quick else 2.0)
    repeat = args.repeat or 3
    ways = ("RayStreamer 1 actor", "ParallelStreamer 1 worker")
    transfers = [f"transfer {n} batches: {w}" for n in SIZES for w in ways]
    names = [CPU, CPU_PROCESS, CPU_PS, CPU_ACTORS, CPU_CONSUMER, *transfers, START, START_PS, INIT]
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before ray's import: 127.0.0.1 only
    try:
        import ray
    except ImportError:
        ray = None
    if ray is None or not report.ours_only():
        for name in names:
            report.add(name, lambda: None, "x")
        report.emit()
        return
    from pescador.ray import RayStreamer

    init = start_ray()
    try:
        # Ray starts its worker processes in the background: let that settle before timing.
        warm = RayStreamer(pescador.Streamer(busy, 0), 2).iterate()
        next(warm)
        warm.close()
        time.sleep(2)
        report.add(INIT, lambda: {"seconds_per_item": init, "items": 1}, "start")
        mux = pescador.StochasticMux(
            [pescador.Streamer(busy, i) for i in range(8)], 4, 16, random_state=0
        )
        report.add(
            CPU, lambda: ratio(RayStreamer(mux, 1), RayStreamer(mux, 2), seconds, repeat), "x"
        )
        report.add(CPU_PROCESS, lambda: ratio(mux, RayStreamer(mux, 2), seconds, repeat), "x")
        report.add(
            CPU_PS, lambda: ratio(mux, pescador.ParallelStreamer(mux, 2), seconds, repeat), "x"
        )
        report.add_many(lambda: cpu_costs(mux, 500 if args.quick else 3000), "item")
        for name, nbytes in SIZES.items():
            source = pescador.Streamer(batches, nbytes)
            report.add(
                f"transfer {name} batches: RayStreamer 1 actor",
                lambda source=source: steady(RayStreamer(source, 1), seconds, repeat, 200),
                "batch",
            )
            report.add(
                f"transfer {name} batches: ParallelStreamer 1 worker",
                lambda source=source: steady(
                    pescador.ParallelStreamer(source, 1), seconds, repeat, 200
                ),
                "batch",
            )
        report.add(START, lambda: first_item(RayStreamer(mux, 2), repeat), "start")
        report.add(
            START_PS, lambda: first_item(pescador.ParallelStreamer(mux, 2), repeat), "start"
        )
    finally:
        ray.shutdown()
    report.emit()


if __name__ == "__main__":
    main()
