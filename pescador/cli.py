"""The ``pescador`` command (also ``python -m pescador``).

``pescador demo`` runs the main job end to end: random windows from a corpus of array files,
mixed by a :class:`~pescador.StochasticMux` and batched by :func:`~pescador.buffer_stream`,
with a progress line, then what the sampler did (:mod:`pescador.stats`): the speed, the
memory, each file's share against its target; as text, as JSON (``--json``), or as a figure
(``--plot FILE.png``). Without ``--data`` it writes a small synthetic corpus to a temporary
directory (removed afterwards).

``pescador inspect DIR`` checks a corpus before training, from the files' headers: the
examples, their rows, keys, dtypes and shapes and where they disagree, the files shorter than
a window and those that cannot be read; exit status 0 (no problem), 1 (problems), 2 (bad
usage).

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
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._demo import InputError, run_demo
from ._inspect import run_inspect
from .exceptions import PescadorError
from .version import version

__all__ = ["main", "write_corpus"]

#: Exit status for bad input (a path that does not exist, an empty directory, a bad file).
EXIT_BAD_INPUT = 2


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
    stream.add_argument(
        "--weights",
        choices=("uniform", "rows"),
        default="uniform",
        help="each file's weight: equal (default), or its number of rows",
    )
    report = demo.add_argument_group("report")
    report.add_argument(
        "--quiet", action="store_true", help="no progress line (on stderr) during the run"
    )
    report.add_argument(
        "--json",
        action="store_true",
        help="print the report as JSON on stdout (the other lines go to stderr)",
    )
    report.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw what the sampler did: each file's share against its target, samples per "
        "file, throughput over time (needs matplotlib: pip install 'pescador[plot]')",
    )
    inspect = commands.add_parser(
        "inspect",
        help="check a corpus of NPZ/NPY files before training, from their headers",
        description="Check a corpus before a long training run, reading only the files' "
        "headers: the examples found, their rows, the arrays' keys, dtypes and row shapes "
        "(and the examples where they differ from most), files shorter than --window, and "
        "files that cannot be read (with the reason). Exit status: 0 no problem found, 1 "
        "problems found, 2 bad usage.",
    )
    inspect.add_argument("directory", metavar="DIR", help="a directory of .npz or .npy files")
    inspect.add_argument(
        "--format",
        choices=("auto", "npz", "npy"),
        default="auto",
        help="how DIR is stored (default: auto, by the files found)",
    )
    inspect.add_argument(
        "--keys", type=_keys, help="the arrays that must be there, e.g. X,Y (default: all)"
    )
    inspect.add_argument(
        "--window", type=_positive(int), help="report the examples with fewer rows than this"
    )
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
    inspect.add_argument("--quiet", action="store_true", help="no progress line (on stderr)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pescador`` command with ``argv`` (default: ``sys.argv[1:]``); return its status.

    Status 0 on success, 1 when ``inspect`` found problems, 2 for bad arguments or bad input
    data (one line on stderr), 130 if interrupted.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    try:
        if args.command == "inspect":
            return run_inspect(args, sys.stdout, sys.stderr)
        return run_demo(args, sys.stdout)
    except (InputError, PescadorError) as exc:  # bad data, or options the mux refuses
        print(f"pescador {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"pescador {args.command}: interrupted", file=sys.stderr)
        return 130
