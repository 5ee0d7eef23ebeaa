"""The ``pescador`` command (also ``python -m pescador``).

``pescador demo`` runs the main job end to end: random windows from a corpus of array files,
mixed by a :class:`~pescador.StochasticMux` and batched by :func:`~pescador.buffer_stream`,
then a summary of the speed, the memory and how evenly the files were sampled. Without
``--data`` it writes a small synthetic corpus to a temporary directory (removed afterwards).

Examples
--------
>>> from pescador.cli import main
>>> main(["demo", "--files", "8", "--rows", "100", "--batches", "20", "--quiet"])
... # doctest: +ELLIPSIS
pescador demo: 8 synthetic NPZ files ...
0
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from itertools import islice
from typing import Any, TextIO

import numpy as np

from . import io as pio
from .exceptions import PescadorError
from .maps import buffer_stream
from .mux import StochasticMux
from .version import version

__all__ = ["main", "write_corpus"]

#: The key under which the demo tags each window with the index of its file.
FILE_KEY = "_pescador_file"

#: Exit status for bad input (a path that does not exist, an empty directory, a bad file).
EXIT_BAD_INPUT = 2


class _InputError(Exception):
    """A problem with what the user asked for: one line on stderr, exit status 2."""


def write_corpus(
    folder: str | os.PathLike[str],
    files: int = 64,
    rows: int = 2000,
    features: int = 64,
    fmt: str = "npz",
    seed: int = 0,
) -> list[str]:
    """Write a synthetic corpus: ``files`` examples with ``X`` (float32) and ``Y`` (int64).

    Each example has between ``rows // 2`` and ``rows * 3 // 2`` rows (a corpus of songs of
    different lengths); ``Y`` is the row index, so a window's labels are consecutive.
    ``fmt="npz"`` writes ``example-0000.npz`` (``np.savez``, uncompressed);
    ``fmt="npz-compressed"`` uses ``np.savez_compressed``; ``fmt="npy"`` writes
    ``example-0000.X.npy`` and ``example-0000.Y.npy``. Returns the paths written.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     [os.path.basename(p) for p in write_corpus(folder, files=2, rows=10, fmt="npy")]
    ['example-0000.X.npy', 'example-0000.Y.npy', 'example-0001.X.npy', 'example-0001.Y.npy']
    """
    rng = np.random.default_rng(seed)
    written = []
    for i in range(files):
        n_rows = int(rng.integers(max(1, rows // 2), max(2, rows * 3 // 2 + 1)))
        x = rng.standard_normal((n_rows, features), dtype=np.float32)
        y = np.arange(n_rows, dtype=np.int64)
        stem = os.path.join(os.fspath(folder), f"example-{i:04d}")
        if fmt == "npy":
            for key, array in (("X", x), ("Y", y)):
                np.save(f"{stem}.{key}.npy", array)
                written.append(f"{stem}.{key}.npy")
        elif fmt in ("npz", "npz-compressed"):
            save = np.savez if fmt == "npz" else np.savez_compressed
            save(f"{stem}.npz", X=x, Y=y)
            written.append(f"{stem}.npz")
        else:
            raise PescadorError(f"fmt={fmt!r}: expected 'npz', 'npz-compressed' or 'npy'")
    return written


# ----------------------------------------------------------------------------- arguments
def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0 or (kind is float and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number")
        return value

    parse.__name__ = kind.__name__
    return parse


def _number(group: Any, flag: str, default: float, text: str) -> None:
    """A positive number option (an int or a float, as its default)."""
    kind = type(default)
    group.add_argument(
        flag, type=_positive(kind), default=default, help=f"{text} (default {default:g})"
    )


def _keys(text: str) -> list[str]:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise argparse.ArgumentTypeError("expected array names separated by commas, e.g. X,Y")
    return keys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pescador",
        description="Stream and multiplex data samples from corpora too large for memory.",
    )
    parser.add_argument("--version", action="version", version=f"pescador {version}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="sample random windows from a corpus of NPZ/NPY files, and report the speed",
        description="Sample random windows of rows from a corpus of array files: one "
        "window streamer per file, StochasticMux(n_active, rate) over them, batches by "
        "buffer_stream; then report batches/s, MB/s, files touched, samples per file and "
        "peak memory. Without --data, a synthetic corpus is written to a temporary "
        "directory and removed afterwards.",
    )
    data = demo.add_argument_group("data")
    data.add_argument(
        "--data",
        metavar="DIR",
        help="a directory of .npz archives, or of <example>.<key>.npy files "
        "(default: a synthetic corpus)",
    )
    data.add_argument(
        "--format",
        choices=("auto", "npz", "npy"),
        default="auto",
        help="how --data is stored (default: auto, by the files found)",
    )
    data.add_argument(
        "--keys", type=_keys, help="the arrays to read, e.g. X,Y (default: every array)"
    )
    data.add_argument(
        "--short",
        choices=("skip", "error"),
        default="skip",
        help="files with fewer rows than a window: skip them (default) or stop with an error",
    )
    _number(data, "--files", 64, "synthetic corpus: files")
    _number(data, "--rows", 2000, "synthetic corpus: mean rows per file")
    _number(data, "--features", 64, "synthetic corpus: float32 features per row")
    stream = demo.add_argument_group("sampling")
    _number(stream, "--n-active", 32, "files open at once")
    _number(stream, "--rate", 16.0, "mean windows drawn from a file per activation")
    stream.add_argument(
        "--mode",
        choices=("with_replacement", "single_active", "exhaustive"),
        default="with_replacement",
        help="StochasticMux mode (default with_replacement)",
    )
    _number(stream, "--window", 16, "rows per window")
    _number(stream, "--batch-size", 16, "windows per batch")
    _number(stream, "--batches", 5000, "batches to draw")
    stream.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


# ----------------------------------------------------------------------------- the demo
def _streamers(args: argparse.Namespace, folder: str, fmt: str) -> list[Any]:
    """The window streamers over ``folder``, validated (headers read, short files dropped)."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        raise _InputError(f"--data {folder}: no such directory") from None
    except NotADirectoryError:
        raise _InputError(f"--data {folder}: not a directory") from None
    except OSError as exc:  # unreadable, a symlink loop, ...
        raise _InputError(f"--data {folder}: {exc.strerror or exc}") from None
    if fmt == "auto":
        fmt = "npz" if any(n.endswith(".npz") for n in names) else "npy"
    suffix = f".{fmt}"
    if not any(n.endswith(suffix) for n in names):
        found = "no .npz or .npy files" if args.format == "auto" else f"no {suffix} files"
        raise _InputError(f"--data {folder}: {found} in this directory")
    make = pio.npz_streamers if fmt == "npz" else pio.npy_streamers
    options = {"short": args.short, "validate": True, "id_key": FILE_KEY}
    return make(folder, args.window, args.keys, **options)


class _Progress:
    """A one-line progress bar on a terminal (nothing otherwise)."""

    def __init__(self, total: int, out: TextIO, enabled: bool) -> None:
        self.total = total
        self.out = out
        self.enabled = enabled and out.isatty()
        self.start = self.last = time.perf_counter()

    def update(self, done: int, windows: int, force: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < 0.1 and not force):
            return
        self.last = now
        width = 30
        filled = int(width * done / self.total)
        rate = windows / max(now - self.start, 1e-9)
        self.out.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} batches, "
            f"{rate:,.0f} windows/s "
        )
        self.out.flush()

    def finish(self) -> None:
        if self.enabled:
            self.out.write("\n")
            self.out.flush()


def _peak_memory_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _run(args: argparse.Namespace, streams: list[Any]) -> dict[str, Any]:
    """Draw the batches; return what the summary reports."""
    mux = StochasticMux(streams, args.n_active, args.rate, mode=args.mode, random_state=args.seed)
    counts = np.zeros(len(streams), dtype=np.int64)
    progress = _Progress(args.batches, sys.stderr, not args.quiet)
    batches = windows = nbytes = 0
    start = time.perf_counter()
    with buffer_stream(mux, args.batch_size) as stream:
        for batch in islice(stream, args.batches):
            ids = batch.pop(FILE_KEY)
            counts += np.bincount(ids, minlength=len(streams))
            nbytes += sum(value.nbytes for value in batch.values())
            batches += 1
            windows += len(ids)
            progress.update(batches, windows)
    elapsed = time.perf_counter() - start
    progress.update(batches, windows, force=True)
    progress.finish()
    return {
        "batches": batches,
        "windows": windows,
        "bytes": nbytes,
        "seconds": elapsed,
        "counts": counts,
        "keys": list(batch) if batches else [],
    }


def _summary(args: argparse.Namespace, result: dict[str, Any], out: TextIO) -> None:
    seconds = max(result["seconds"], 1e-9)
    counts = result["counts"]
    n_files = len(counts)
    expected = result["windows"] / n_files if n_files else 0.0
    peak = _peak_memory_mb()
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
        f"peak memory    {'n/a' if peak is None else f'{peak:.1f} MB'} (max RSS)",
    ]
    if result["batches"] < args.batches:
        lines.append(f"note           the stream ended after {result['batches']} batches")
    print("\n".join(lines), file=out)


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    mux_text = (
        f"StochasticMux(n_active={args.n_active}, rate={args.rate:g}, mode={args.mode}), "
        f"seed {args.seed}; windows of {args.window} rows, batches of {args.batch_size}"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pio.ShortFileWarning)
        if args.data is not None:
            streams = _streamers(args, args.data, args.format)
            kind = "NPZ archives" if args.format == "npz" or _is_npz(streams) else "NPY examples"
            print(f"pescador demo: {len(streams)} {kind} in {args.data}", file=out)
            print(f"               {mux_text}", file=out)
            _report_skipped(caught, out)
            if not streams:
                raise _InputError(f"--data {args.data}: every file is shorter than a window")
            result = _run(args, streams)
            removed = None
        else:
            with tempfile.TemporaryDirectory(prefix="pescador-demo-") as removed:
                write_corpus(removed, args.files, args.rows, args.features, seed=args.seed)
                streams = _streamers(args, removed, "npz")
                size = sum(e.stat().st_size for e in os.scandir(removed)) / 1e6
                print(
                    f"pescador demo: {args.files} synthetic NPZ files ({size:.1f} MB: X float32 "
                    f"(~{args.rows}, {args.features}), Y int64) in {removed}",
                    file=out,
                )
                print(f"               {mux_text}", file=out)
                _report_skipped(caught, out)
                result = _run(args, streams)
    _summary(args, result, out)
    if removed is not None:
        print(f"(removed the synthetic corpus {removed})", file=out)
    return 0


def _is_npz(streams: list[Any]) -> bool:
    return bool(streams) and streams[0].streamer is pio.npz_windows


def _report_skipped(caught: list[warnings.WarningMessage], out: TextIO) -> None:
    skipped = [str(w.message) for w in caught if issubclass(w.category, pio.ShortFileWarning)]
    if skipped:
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        print(f"skipped        {skipped[0]}{more}", file=out)
    caught.clear()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pescador`` command with ``argv`` (default: ``sys.argv[1:]``); return its status.

    Status 0 on success, 2 for bad arguments or bad input data (one line on stderr), 130 if
    interrupted.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return _demo(args, sys.stdout)
    except (_InputError, PescadorError) as exc:  # bad data, or options the mux refuses
        print(f"pescador {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"pescador {args.command}: interrupted", file=sys.stderr)
        return 130
