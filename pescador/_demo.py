"""``pescador demo`` (private; the command is :mod:`pescador.cli`): sample random windows from
a corpus, watch the mux (:mod:`pescador.stats`), and report what it did: a text summary, or
JSON (``--json``), and a figure (``--plot``)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import warnings
from itertools import islice
from typing import Any, TextIO

import numpy as np

from . import io as pio
from . import stats as pstats
from ._progress import Progress
from .io._layout import _open_arrays
from .maps import buffer_stream
from .mux import StochasticMux

__all__ = ["FILE_KEY", "InputError", "run_demo"]

#: The key under which the demo tags each window with the index of its file.
FILE_KEY = "_pescador_file"


class InputError(Exception):
    """A problem with what the user asked for: one line on stderr, exit status 2."""


def _streamers(args: argparse.Namespace, folder: str, fmt: str) -> list[Any]:
    """The window streamers over ``folder``, validated (headers read, short files dropped)."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        raise InputError(f"--data {folder}: no such directory") from None
    except NotADirectoryError:
        raise InputError(f"--data {folder}: not a directory") from None
    except OSError as exc:  # unreadable, a symlink loop, ...
        raise InputError(f"--data {folder}: {exc.strerror or exc}") from None
    if fmt == "auto":
        fmt = "npz" if any(n.endswith(".npz") for n in names) else "npy"
    suffix = f".{fmt}"
    if not any(n.endswith(suffix) for n in names):
        found = "no .npz or .npy files" if args.format == "auto" else f"no {suffix} files"
        raise InputError(f"--data {folder}: {found} in this directory")
    make = pio.npz_streamers if fmt == "npz" else pio.npy_streamers
    options = {"short": args.short, "validate": True, "id_key": FILE_KEY}
    return make(folder, args.window, args.keys, **options)


def _weights(args: argparse.Namespace, streams: list[Any]) -> np.ndarray | None:
    """``--weights rows``: each file in proportion to its rows (headers read, cached)."""
    if args.weights == "uniform":
        return None
    rows = []
    for stream in streams:
        target = stream.args[0]  # an archive's path, or {key: path} of NPY files
        files = [(p, k) for k, p in target.items()] if isinstance(target, dict) else [(target, "")]
        fds: list[int] = []
        try:
            rows.append(_open_arrays(files, args.keys, fds)[1])
        finally:
            while fds:
                os.close(fds.pop())
    return np.array(rows, dtype=float)


def _peak_memory_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _run(args: argparse.Namespace, streams: list[Any]) -> dict[str, Any]:
    """Draw the batches, watching the mux; return what the reports show."""
    weights = _weights(args, streams)
    mux = StochasticMux(
        streams, args.n_active, args.rate, weights=weights, mode=args.mode, random_state=args.seed
    )
    total = args.batches * args.batch_size
    progress = Progress(total, "windows", sys.stderr, quiet=args.quiet or args.json)
    batches = windows = nbytes = 0
    keys: list[str] = []
    with buffer_stream(mux, args.batch_size) as stream:
        watched = pstats.watch(stream)
        for batch in islice(stream, args.batches):
            ids = batch.pop(FILE_KEY)
            nbytes += sum(value.nbytes for value in batch.values())
            batches += 1
            windows += len(ids)
            progress.update(windows)
            keys = keys or list(batch)
        elapsed = progress.finish()
        snapshot = watched.snapshot()
    return {
        "batches": batches,
        "windows": windows,
        "bytes": nbytes,
        "seconds": elapsed,
        "stats": snapshot,
        "history": progress.history,
        "keys": keys,
    }


def _summary(args: argparse.Namespace, result: dict[str, Any], out: TextIO) -> None:
    seconds = max(result["seconds"], 1e-9)
    stats: pstats.MuxStats = result["stats"]
    counts = np.array([s.items for s in stats.streamers])
    n_files = len(counts)
    expected = result["windows"] / n_files if n_files else 0.0
    peak = _peak_memory_mb()
    per = stats.items_per_activation
    lines = [
        "",
        f"batches        {result['batches']} of {args.batch_size} windows in {seconds:.2f} s: "
        f"{result['batches'] / seconds:,.0f} batches/s, "
        f"{result['windows'] / seconds:,.0f} windows/s",
        f"throughput     {result['bytes'] / seconds / 1e6:,.1f} MB/s "
        f"(keys {', '.join(result['keys']) or '-'})",
        f"files touched  {int(np.count_nonzero(counts))} of {n_files}",
        f"samples/file   min {int(counts.min()) if n_files else 0} / median "
        f"{statistics.median(counts.tolist()) if n_files else 0:g} / max "
        f"{int(counts.max()) if n_files else 0}  (expected {expected:.1f} each)",
        f"activations    {stats.activations}, "
        f"{'-' if per is None else f'{per:.2f}'} windows each (rate {args.rate:g})",
        f"share vs target total variation {_tv(stats)}",
        f"read from disk {(stats.bytes_read or 0) / 1e6:,.1f} MB of arrays",
        f"peak memory    {'n/a' if peak is None else f'{peak:.1f} MB'} (max RSS)",
    ]
    if result["batches"] < args.batches:
        lines.append(f"note           the stream ended after {result['batches']} batches")
    print("\n".join(lines), file=out)


def _tv(stats: pstats.MuxStats) -> str:
    targets = stats.targets()
    if targets is None or not stats.items:
        return "-"
    return f"{100 * np.abs(stats.shares() - targets).sum() / 2:.2f}%"


def _json(args: argparse.Namespace, result: dict[str, Any], corpus: dict[str, Any]) -> str:
    stats: pstats.MuxStats = result["stats"]
    seconds = max(result["seconds"], 1e-9)
    counts = [s.items for s in stats.streamers]
    report = {
        "command": "demo",
        "corpus": corpus,
        "sampling": {
            "n_active": args.n_active,
            "rate": args.rate,
            "mode": args.mode,
            "weights": args.weights,
            "window": args.window,
            "batch_size": args.batch_size,
            "seed": args.seed,
        },
        "batches": result["batches"],
        "windows": result["windows"],
        "bytes": result["bytes"],
        "seconds": result["seconds"],
        "windows_per_second": result["windows"] / seconds,
        "megabytes_per_second": result["bytes"] / seconds / 1e6,
        "keys": result["keys"],
        "files": len(counts),
        "files_touched": sum(1 for c in counts if c),
        "samples_per_file": {
            "min": min(counts, default=0),
            "median": statistics.median(counts) if counts else 0,
            "max": max(counts, default=0),
        },
        "peak_memory_mb": _peak_memory_mb(),
        "throughput": [[round(t, 4), n] for t, n in result["history"]],
        "stats": stats.to_dict(),
    }
    return json.dumps(report, indent=1)


def _title(args: argparse.Namespace, result: dict[str, Any], source: str) -> str:
    return (
        f"pescador demo: {source}; StochasticMux(n_active={args.n_active}, rate={args.rate:g}, "
        f"weights={args.weights}), windows of {args.window} rows: {result['windows']:,} windows "
        f"in {result['seconds']:.1f} s"
    )


def run_demo(args: argparse.Namespace, out: TextIO) -> int:
    """The demo: status 0, or :class:`InputError` / PescadorError for bad input."""
    weights = "" if args.weights == "uniform" else f", weights={args.weights}"
    mux_text = (
        f"StochasticMux(n_active={args.n_active}, rate={args.rate:g}, mode={args.mode}"
        f"{weights}), seed {args.seed}; windows of {args.window} rows, batches of "
        f"{args.batch_size}"
    )
    if args.plot is not None:
        from ._plot import _pyplot

        _pyplot()  # fail now, not after the run, if matplotlib is missing
    # With --json, stdout holds the JSON alone: the human lines go to stderr.
    text = sys.stderr if args.json else out
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pio.ShortFileWarning)
        if args.data is not None:
            streams = _streamers(args, args.data, args.format)
            kind = "NPZ archives" if args.format == "npz" or _is_npz(streams) else "NPY examples"
            source = f"{len(streams)} {kind} in {args.data}"
            print(f"pescador demo: {source}", file=text)
            print(f"               {mux_text}", file=text)
            _report_skipped(caught, text)
            if not streams:
                raise InputError(f"--data {args.data}: every file is shorter than a window")
            result = _run(args, streams)
            removed = None
        else:
            with tempfile.TemporaryDirectory(prefix="pescador-demo-") as removed:
                write_corpus = _write_corpus()
                write_corpus(removed, args.files, args.rows, args.features, seed=args.seed)
                streams = _streamers(args, removed, "npz")
                size = sum(e.stat().st_size for e in os.scandir(removed)) / 1e6
                source = f"{args.files} synthetic NPZ files"
                print(
                    f"pescador demo: {source} ({size:.1f} MB: X float32 "
                    f"(~{args.rows}, {args.features}), Y int64) in {removed}",
                    file=text,
                )
                print(f"               {mux_text}", file=text)
                _report_skipped(caught, text)
                result = _run(args, streams)
    corpus = {"data": args.data, "files": len(streams), "synthetic": args.data is None}
    if args.json:
        print(_json(args, result, corpus), file=out)
    else:
        _summary(args, result, out)
    if args.plot is not None:
        from ._plot import plot_demo

        plot_demo(args.plot, result["stats"], result["history"], _title(args, result, source))
        print(f"wrote the plot {args.plot}", file=text)
    if removed is not None:
        print(f"(removed the synthetic corpus {removed})", file=text)
    return 0


def _write_corpus() -> Any:
    from .cli import write_corpus  # (the public function lives with the command)

    return write_corpus


def _is_npz(streams: list[Any]) -> bool:
    return bool(streams) and streams[0].streamer is pio.npz_windows


def _report_skipped(caught: list[warnings.WarningMessage], out: TextIO) -> None:
    skipped = [str(w.message) for w in caught if issubclass(w.category, pio.ShortFileWarning)]
    if skipped:
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        print(f"skipped        {skipped[0]}{more}", file=out)
    caught.clear()
