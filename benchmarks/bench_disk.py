"""disk: the main job, sampling windows from a corpus of files, against the document's samplers.

The corpus: 500 files, each ``X`` float32 (2000, 128) and ``Y`` int64 (2000,), stored twice:
as NPZ archives (``np.savez``) and as NPY pairs (``<name>.X.npy``, ``<name>.Y.npy``). It is
written once to ``${TMPDIR:-/tmp}/pescador-bench-corpus-500x2000x128`` and read back
(warming the page cache) before timing. The pipeline: one window streamer per file (windows of
16 rows), ``StochasticMux(streams, n_active=32, rate=16, random_state=0)``, batches of 16
windows by ``buffer_stream``; timed per window, in steady state.

- reference: the samplers of "Sampling from disk" (``../shared/seeds/sampling-from-disk.txt``)
  verbatim (``sample_npz`` and ``sample_npy_mmap``; only the unclosed docstring of
  ``sample_npz`` is closed);
- ours: :func:`pescador.io.npz_streamers` and :func:`pescador.io.npy_streamers`.

Each case runs in a fresh subprocess of the same interpreter, so that its peak memory (max
RSS of the whole process: interpreter, numpy, pescador and the job) is comparable between the
two sides. The "limit" case (ours only) reads the same bytes as the windows at random offsets
with ``os.preadv`` and nothing else: what the page cache gives a single Python thread.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from _timing import Report, Target, best_per_item, consume, is_ours, parse_args

import pescador

N_FILES, ROWS, FEATURES = 500, 2000, 128
QUICK_FILES = 40
WINDOW, N_ACTIVE, RATE, BATCH = 16, 32, 16, 16
WINDOW_BYTES = WINDOW * (FEATURES * 4 + 8)

NPZ, NPZ_MEMORY = "NPZ (np.savez): windows", "NPZ (np.savez): peak memory"
NPY, NPY_MEMORY = "NPY pairs, memory-mapped: windows", "NPY pairs: peak memory"
LIMIT = "limit: pread of a window's bytes at random offsets, no pipeline (ours only)"

TARGETS: dict[str, Target] = {
    NPZ: {"speedup": 2},
    NPZ_MEMORY: {"speedup": 1},  # reference / ours >= 1: no more peak memory than the reference
    NPY: {"speedup": 3},
}


# ----------------------------------------------------------------------------- the document
# "Sampling from disk", verbatim (the reference side runs these).
def sample_npz(npz_file, n):
    """Generate an infinite sequence of contiguous samples
    from the input `npz_file`.

    Each iterate has `n > 0` rows."""
    with np.load(npz_file) as data:
        # How many rows are in the data?
        # We assume that data['Y'] has the same length
        n_total = len(data["X"])

        while True:
            # Compute the index offset
            idx = np.random.randint(n_total - n)
            yield dict(X=data["X"][idx : idx + n], Y=data["Y"][idx : idx + n])


def sample_npy_mmap(npy_x, npy_y, n):
    # Open each file in "copy-on-write" mode, so that the files are read-only
    X = np.load(npy_x, mmap_mode="c")
    Y = np.load(npy_y, mmap_mode="c")

    n_total = len(X)

    while True:
        # Compute the index offset
        idx = np.random.randint(n_total - n)
        yield dict(X=X[idx : idx + n], Y=Y[idx : idx + n])


# ----------------------------------------------------------------------------- the corpus
def corpus(n_files: int) -> Path:
    """The cached corpus directory (written on first use, atomically)."""
    root = Path(os.environ.get("TMPDIR", "/tmp"))
    folder = root / f"pescador-bench-corpus-{n_files}x{ROWS}x{FEATURES}"
    if (folder / "done").is_file():
        return folder
    building = Path(tempfile.mkdtemp(prefix=folder.name + ".building-", dir=root))
    rng = np.random.default_rng(0)
    (building / "npz").mkdir()
    (building / "npy").mkdir()
    for i in range(n_files):
        x = rng.standard_normal((ROWS, FEATURES), dtype=np.float32)
        y = np.arange(ROWS, dtype=np.int64) + i * ROWS
        np.savez(building / "npz" / f"f{i:04d}.npz", X=x, Y=y)
        np.save(building / "npy" / f"f{i:04d}.X.npy", x)
        np.save(building / "npy" / f"f{i:04d}.Y.npy", y)
    (building / "done").touch()
    try:
        building.rename(folder)
    except OSError:  # built concurrently by another run
        shutil.rmtree(building, ignore_errors=True)
    return folder


def warm(folder: Path) -> None:
    """Read every file once, so the timed runs find them in the page cache."""
    for path in sorted(folder.rglob("*.np[yz]")):
        with open(path, "rb") as f:
            while f.read(1 << 22):
                pass


# ----------------------------------------------------------------------------- the job
def streamers(folder: Path, kind: str, ours: bool) -> list[Any]:
    if ours:
        io = importlib.import_module("pescador.io")
        make = io.npz_streamers if kind == "npz" else io.npy_streamers
        return make(folder / kind, WINDOW)
    if kind == "npz":
        files = sorted(str(p) for p in (folder / "npz").glob("*.npz"))
        return [pescador.Streamer(sample_npz, f, WINDOW) for f in files]
    xs = sorted(str(p) for p in (folder / "npy").glob("*.X.npy"))
    ys = sorted(str(p) for p in (folder / "npy").glob("*.Y.npy"))
    return [pescador.Streamer(sample_npy_mmap, x, y, WINDOW) for x, y in zip(xs, ys, strict=True)]


def pipeline_run(folder: Path, kind: str, ours: bool) -> Callable[[int], int]:
    """``run(n)``: pull at least ``n`` windows (whole batches) from one running pipeline."""
    mux = pescador.StochasticMux(streamers(folder, kind, ours), N_ACTIVE, RATE, random_state=0)
    batches: Iterator[Any] = iter(pescador.buffer_stream(mux, BATCH))
    next(batches)  # steady state: the first activations are not timed

    def run(n: int) -> int:
        return consume(islice(batches, -(-n // BATCH))) * BATCH

    return run


def limit_run(folder: Path) -> Callable[[int], int]:
    """Only the reads: a window's bytes (X rows and Y rows) at random offsets, random files."""
    paths = sorted((folder / "npz").glob("*.npz"))
    fds = [os.open(p, os.O_RDONLY) for p in paths]
    x_rows, y_rows = WINDOW * FEATURES * 4, WINDOW * 8
    rng = np.random.default_rng(0)
    x_buf, y_buf = np.empty(x_rows, np.uint8), np.empty(y_rows, np.uint8)
    size = os.fstat(fds[0]).st_size

    def run(n: int) -> int:
        picks = rng.integers(0, len(fds), n).tolist()
        offsets = rng.integers(0, size - x_rows, n).tolist()
        for fd, at in zip(picks, offsets, strict=True):
            os.preadv(fds[fd], [x_buf], at)
            os.preadv(fds[fd], [y_buf], at)
        return n

    return run


def worker(case: str, folder: Path, seconds: float, repeat: int) -> None:
    """Measure one case in this (fresh) process; print its timing and peak memory as JSON."""
    import resource

    ours = is_ours(pescador)
    run = limit_run(folder) if case == "limit" else pipeline_run(folder, case, ours)
    result = best_per_item(run, seconds, repeat)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["peak_mb"] = peak / 2**20 if sys.platform == "darwin" else peak / 2**10
    print(json.dumps(result))


def measure(case: str, folder: Path, seconds: float, repeat: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", case, str(folder), str(seconds), str(repeat)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker {case} failed:\n{done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        case, folder, seconds, repeat = sys.argv[2:6]
        worker(case, Path(folder), float(seconds), int(repeat))
        return
    args = parse_args(__doc__)
    report = Report(pescador, args, TARGETS)
    start = time.perf_counter()
    folder = corpus(QUICK_FILES if args.quick else N_FILES)
    warm(folder)
    print(f"corpus ready in {time.perf_counter() - start:.1f} s: {folder}", file=sys.stderr)

    measured: dict[str, dict[str, Any]] = {}

    def measured_once(kind: str) -> dict[str, Any]:
        if kind not in measured:
            measured[kind] = measure(kind, folder, args.time, args.repeat)
        return measured[kind]

    for kind, timed, memory in (("npz", NPZ, NPZ_MEMORY), ("npy", NPY, NPY_MEMORY)):
        report.add(
            timed,
            lambda kind=kind: {k: measured_once(kind)[k] for k in ("seconds_per_item", "items")},
            "window",
        )
        report.add(memory, lambda kind=kind: {"value": measured_once(kind)["peak_mb"]}, " MB")

    def limit() -> dict[str, Any] | None:
        if not report.ours_only():
            return None
        result = measure("limit", folder, args.time, args.repeat)
        return {k: result[k] for k in ("seconds_per_item", "items")}

    report.add(LIMIT, limit, "window")
    report.emit()


if __name__ == "__main__":
    main()
