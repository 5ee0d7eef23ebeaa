"""keras: a stream through pescador.tf.to_dataset and through Keras 3's fit (ours only).

The stream: a ``StochasticMux`` of 8 streamers of ready-made batches (``x`` float32 (64, 32),
``y`` float32 (64, 1)), so that what is measured is the path, not the data. Times are per
batch, in steady state (the first batches excluded), best of ``--repeat``:

- ``stream``: iterating the stream directly and making the ``(x, y)`` tuple (the base);
- ``to_dataset``: the same batches through ``pescador.tf.to_dataset`` (eager iteration of the
  ``tf.data`` iterator; TensorFlow converts each batch to tensors);
- ``fit``: ``model.fit`` of a one-layer model (``Dense(1)``, SGD) for a fixed number of steps,
  per trained batch, on the PyTorch and the TensorFlow backends, fed by a ``StreamDataset``, by
  the same with a ``Checkpoint`` callback (tracking only), by a ``StreamDataset`` that keeps
  the stream's state at every batch (``Checkpoint(every=1)``, nothing saved), by Keras' own
  generator input (a Python generator over the same stream), and by in-memory arrays
  (Keras' fastest path: ``fit(x, y, batch_size=64)``). The differences with the array path are
  what the input pipeline costs per batch; each case keeps the best of ``--repeat`` fits.

The fit cases are in CPU time of the process (all threads), the others in wall time. Each
Keras backend runs in its own subprocess (Keras fixes its backend at import). The
reference (pescador 3.0.0) has no Keras support and its virtualenv no Keras: its side is n/a.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from itertools import islice
from typing import Any

import numpy as np
from _timing import Report, Target, consume, is_ours, parse_args

import pescador

ROWS, FEATURES = 64, 32
STREAM = "stream: next batch and its (x, y) tuple"
TO_DATASET = "to_dataset: eager tf.data iteration"
TO_DATASET_OVER = "to_dataset: overhead over the stream"
FIT = "fit {backend}: {feed}"
FEEDS = {
    "arrays": "in-memory arrays (Keras' fastest path)",
    "dataset": "StreamDataset",
    "tracked": "StreamDataset + Checkpoint (tracking, no save)",
    "every": "StreamDataset + Checkpoint(every=1) (a state per batch, no save)",
    "generator": "Python generator over the stream",
}
OVERHEAD = "fit {backend}: StreamDataset overhead over arrays"
TARGETS: dict[str, Target] = {}


def batches(tag: int) -> Any:
    rng = np.random.default_rng(tag)
    pool = [
        {
            "x": rng.random((ROWS, FEATURES), dtype=np.float32),
            "y": rng.random((ROWS, 1), dtype=np.float32),
        }
        for _ in range(16)
    ]
    while True:
        yield from pool


def stream() -> Any:
    streams = [pescador.Streamer(batches, tag) for tag in range(8)]
    return pescador.StochasticMux(streams, n_active=4, rate=16, random_state=0)


def per_batch(iterator: Any, n: int, repeat: int) -> float:
    best = float("inf")
    consume(islice(iterator, 20))  # warm up
    for _ in range(repeat):
        start = time.perf_counter()
        consume(islice(iterator, n))
        best = min(best, (time.perf_counter() - start) / n)
    return best


class Clock:
    """A callback timing the batches after the first ``skip`` of a fit, in CPU time of the
    process (all its threads: TensorFlow reads the stream in its own), which other jobs on a
    shared machine do not inflate."""

    def __init__(self, keras: Any, skip: int = 10) -> None:
        outer = self

        class _Clock(keras.callbacks.Callback):
            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                if batch == skip - 1:
                    outer.start = time.process_time()
                outer.end, outer.count = time.process_time(), batch + 1 - skip

        self.callback = _Clock()
        self.start = self.end = 0.0
        self.count = 0

    def seconds(self) -> float:
        return (self.end - self.start) / self.count


def inner(backend: str, steps: int, repeat: int) -> dict[str, float]:
    """The measurements of one Keras backend (in a subprocess where it is imported)."""
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import warnings

    import keras

    from pescador.keras import Checkpoint, StreamDataset

    warnings.filterwarnings("ignore", category=UserWarning)
    if backend == "torch":
        import torch

        torch.set_num_threads(1)
    out: dict[str, float] = {}
    if backend == "tensorflow":
        pairs = pescador.Streamer(pescador.keras_tuples, stream(), "x", "y")
        out[STREAM] = per_batch(pairs.iterate(), 20 * steps, repeat)
        from pescador.tf import to_dataset

        out[TO_DATASET] = per_batch(iter(to_dataset(pairs)), 5 * steps, repeat)

    def model() -> Any:
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(1)])
        m.compile(keras.optimizers.SGD(0.01), "mse")
        return m

    rng = np.random.default_rng(0)
    x = rng.random((ROWS * (steps + 10), FEATURES), dtype=np.float32)
    y = rng.random((ROWS * (steps + 10), 1), dtype=np.float32)

    def fit(feed: str) -> float:
        m, clock = model(), Clock(keras)
        callbacks = [clock.callback]
        options: dict[str, Any] = {"epochs": 1, "verbose": 0, "shuffle": False}
        if feed == "arrays":
            m.fit(
                x, y, batch_size=ROWS, steps_per_epoch=steps + 10, callbacks=callbacks, **options
            )
            return clock.seconds()
        if feed == "generator":
            data: Any = ((b["x"], b["y"]) for b in stream().iterate())
        else:
            data = StreamDataset(stream(), "x", "y")
            if feed != "dataset":
                callbacks.append(Checkpoint(None, data, every=1 if feed == "every" else None))
        m.fit(data, steps_per_epoch=steps + 10, callbacks=callbacks, **options)
        return clock.seconds()

    for _ in range(repeat):
        for feed in FEEDS:
            name = FIT.format(backend=backend, feed=FEEDS[feed])
            out[name] = min(out.get(name, float("inf")), fit(feed))
    return out


def main() -> None:
    if sys.argv[1:2] == ["--inner"]:
        backend, steps, repeat = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        print(json.dumps(inner(backend, steps, repeat)))
        return
    args = parse_args(__doc__)
    report = Report(pescador, args, TARGETS)
    steps = 100 if args.quick else 400
    names = [STREAM, TO_DATASET, TO_DATASET_OVER]
    for backend in ("torch", "tensorflow"):
        names += [FIT.format(backend=backend, feed=f) for f in FEEDS.values()]
        names.append(OVERHEAD.format(backend=backend))
    import importlib.util

    # Only whether Keras is there: importing it here would fix a backend in this process.
    if importlib.util.find_spec("keras") is None or not is_ours(pescador):
        for name in names:
            report.add(name, lambda: None, "batch")
        report.emit()
        return
    results: dict[str, float] = {}
    for backend in ("torch", "tensorflow"):
        env = dict(os.environ, KERAS_BACKEND=backend)
        command = [sys.executable, __file__, "--inner", backend, str(steps), str(args.repeat)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            continue
        results.update(json.loads(done.stdout.strip().splitlines()[-1]))
    if STREAM in results and TO_DATASET in results:
        results[TO_DATASET_OVER] = results[TO_DATASET] - results[STREAM]
    for backend in ("torch", "tensorflow"):
        dataset = results.get(FIT.format(backend=backend, feed=FEEDS["dataset"]))
        arrays = results.get(FIT.format(backend=backend, feed=FEEDS["arrays"]))
        if dataset is not None and arrays is not None:
            results[OVERHEAD.format(backend=backend)] = dataset - arrays
    for name in names:
        value = results.get(name)
        if value is None:
            report.add(name, lambda: {"error": "not measured (see stderr)"}, "batch")
        else:
            report.add(name, lambda v=value: {"seconds_per_item": v, "items": steps}, "batch")
    report.emit()


if __name__ == "__main__":
    main()
