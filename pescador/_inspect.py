"""``pescador inspect DIR`` (private; the command is :mod:`pescador.cli`): check a corpus
before a long training run, from the files' headers alone.

Each example (an ``.npz`` archive, or the ``<example>.<key>.npy`` files of one example) is
opened with the hardened header readers of :mod:`pescador.io` (nothing a header claims is
believed before it is checked against the file), so a corrupt or hostile file is reported
with the reason, never read further. Reported: the examples found, their rows, the arrays'
keys, dtypes and row shapes, and where they disagree (the majority is taken as expected),
the files shorter than a window, and those that cannot be read.
"""

from __future__ import annotations

import collections
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from ._progress import Progress
from .io._corpus import group_npy_files
from .io._files import DataFileError
from .io._layout import _open_arrays

__all__ = ["Example", "inspect_corpus", "run_inspect"]


@dataclass
class Example:
    """One example's headers: ``arrays`` maps each key to ``(dtype, row shape)``."""

    name: str
    rows: int = -1
    arrays: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)
    error: str | None = None


def _examples(folder: str, fmt: str) -> tuple[str, list[tuple[str, list[tuple[str, str]]]]]:
    """The examples of ``folder``: ``(format, [(name, [(path, key), ...]), ...])``."""
    names = sorted(os.listdir(folder))
    npz = [n for n in names if n.endswith(".npz")]
    npy = [n for n in names if n.endswith(".npy")]
    if fmt == "auto":
        fmt = "npz" if len(npz) >= len(npy) and npz else "npy"
    if fmt == "npz":
        return fmt, [(n, [(os.path.join(folder, n), "")]) for n in npz]
    found: list[tuple[str, list[tuple[str, str]]]] = []
    paths = [os.path.join(folder, n) for n in npy]
    good = []
    for path in paths:
        try:
            group_npy_files([path])
            good.append(path)
        except DataFileError as exc:  # not named <example>.<key>.npy
            found.append((os.path.basename(path), [(path, "!" + exc.problem)]))
    for example, files in group_npy_files(good).items():
        found.append((os.path.basename(example), [(p, k) for k, p in files.items()]))
    return fmt, sorted(found)


def _read(name: str, files: list[tuple[str, str]], keys: Sequence[str] | None) -> Example:
    example = Example(name)
    if files[0][1].startswith("!"):
        example.error = files[0][1][1:]
        return example
    fds: list[int] = []
    try:
        chosen, rows = _open_arrays(files, keys, fds)
    except DataFileError as exc:
        where = os.path.basename(exc.path)
        example.error = exc.problem if where == name else f"{where}: {exc.problem}"
        return example
    finally:
        while fds:
            os.close(fds.pop())
    example.rows = rows
    for key, _, info, _ in chosen:
        example.arrays[key] = (str(info.dtype), tuple(info.shape[1:]))
    return example


def inspect_corpus(
    folder: str,
    fmt: str = "auto",
    keys: Sequence[str] | None = None,
    progress: Callable[[int], Progress] | None = None,
) -> tuple[str, list[Example], float]:
    """Read every example's headers: ``(format, examples, seconds)``; ``progress``: makes the
    progress line, given the number of examples."""
    start = time.perf_counter()
    fmt, examples = _examples(folder, fmt)
    line = None if progress is None else progress(len(examples))
    out = []
    for k, (name, files) in enumerate(examples, 1):
        out.append(_read(name, files, keys))
        if line is not None:
            line.update(k)
    if line is not None:
        line.finish()
    return fmt, out, time.perf_counter() - start


def _majority(values: list[Any]) -> Any:
    return collections.Counter(values).most_common(1)[0][0]


def problems_of(examples: list[Example], window: int | None) -> dict[str, Any]:
    """What is wrong: unreadable examples, disagreeing keys/dtypes/shapes, short ones."""
    readable = [e for e in examples if e.error is None]
    report: dict[str, Any] = {
        "unreadable": [[e.name, e.error] for e in examples if e.error is not None],
        "keys": [],
        "dtypes": [],
        "shapes": [],
        "short": [],
    }
    if not readable:
        return report
    expected_keys = _majority([tuple(e.arrays) for e in readable])
    for e in readable:
        if tuple(e.arrays) != expected_keys:
            report["keys"].append([e.name, list(e.arrays)])
    for key in expected_keys:
        having = [e for e in readable if key in e.arrays]
        dtype = _majority([e.arrays[key][0] for e in having])
        shape = _majority([e.arrays[key][1] for e in having])
        for e in having:
            d, s = e.arrays[key]
            if d != dtype:
                report["dtypes"].append([e.name, key, d, dtype])
            if s != shape:
                report["shapes"].append([e.name, key, list(s), list(shape)])
    if window is not None:
        report["short"] = [[e.name, e.rows] for e in readable if e.rows < window]
    return report


def _table(
    folder: str,
    fmt: str,
    examples: list[Example],
    found: dict[str, Any],
    window: int | None,
    seconds: float,
) -> str:
    readable = [e for e in examples if e.error is None]
    rows = [e.rows for e in readable]
    lines = [
        f"pescador inspect: {folder} ({fmt.upper()}), headers of {len(examples)} examples read in "
        f"{seconds:.2f} s",
        "",
        f"examples        {len(examples)} found, {len(readable)} readable",
    ]
    if rows:
        lines.append(
            f"rows            {sum(rows):,} in all; per example min {min(rows):,} / median "
            f"{statistics.median(rows):g} / max {max(rows):,}"
        )
    if readable:
        lines += ["", f"{'array':<12} {'dtype':<10} {'row shape':<14} examples"]
        keys = collections.Counter(k for e in readable for k in e.arrays)
        for key in sorted(keys, key=lambda k: -keys[k]):
            kinds = collections.Counter(e.arrays[key] for e in readable if key in e.arrays)
            for (dtype, shape), count in kinds.most_common():
                lines.append(f"{key:<12} {dtype:<10} {shape!s:<14} {count}")
    lines.append("")
    checks = [
        ("unreadable", "cannot be read", lambda p: f"{p[0]}: {p[1]}"),
        ("keys", "other arrays than most", lambda p: f"{p[0]}: {', '.join(p[1]) or '-'}"),
        ("dtypes", "another dtype", lambda p: f"{p[0]}: {p[1]} is {p[2]}, most are {p[3]}"),
        (
            "shapes",
            "another row shape",
            lambda p: f"{p[0]}: {p[1]} rows are {tuple(p[2])}, most are {tuple(p[3])}",
        ),
        ("short", f"shorter than a window of {window}", lambda p: f"{p[0]}: {p[1]} rows"),
    ]
    total = 0
    for key, what, say in checks:
        if key == "short" and window is None:
            continue
        problems = found[key]
        total += len(problems)
        lines.append(f"{'ok' if not problems else 'PROBLEM':<8} {len(problems):>6} {what}")
        for p in problems[:10]:
            lines.append(f"           {say(p)}")
        if len(problems) > 10:
            lines.append(f"           ... and {len(problems) - 10} more")
    lines.append("")
    lines.append("no problems found" if not total else f"{total} problems found")
    return "\n".join(lines)


def run_inspect(args: Any, out: TextIO, err: TextIO) -> int:
    """The command: 0 (no problems), 1 (problems found); raises InputError for bad usage."""
    from ._demo import InputError

    folder = args.directory
    if not os.path.isdir(folder):
        what = "no such directory" if not os.path.exists(folder) else "not a directory"
        raise InputError(f"{folder}: {what}")
    quiet = args.quiet or args.json
    try:
        fmt, examples, seconds = inspect_corpus(
            folder, args.format, args.keys, lambda n: Progress(n, "examples", err, quiet=quiet)
        )
    except OSError as exc:
        raise InputError(f"{folder}: {exc.strerror or exc}") from None
    if not examples:
        raise InputError(f"{folder}: no .npz or .npy files in this directory")
    other = ".npy" if fmt == "npz" else ".npz"
    ignored = sum(1 for name in os.listdir(folder) if name.endswith(other))
    found = problems_of(examples, args.window)
    n_problems = sum(len(v) for v in found.values())
    if args.json:
        report = {
            "command": "inspect",
            "directory": folder,
            "format": fmt,
            "seconds": seconds,
            "examples": len(examples),
            "readable": sum(1 for e in examples if e.error is None),
            "rows": sum(e.rows for e in examples if e.error is None),
            "window": args.window,
            "ignored": ignored,
            "arrays": _arrays(examples),
            "problems": found,
            "ok": not n_problems,
        }
        print(json.dumps(report, indent=1), file=out)
    else:
        print(_table(folder, fmt, examples, found, args.window, seconds), file=out)
        if ignored:
            note = f"(ignored {ignored} {other} files: --format {other[1:]} inspects them)"
            print(note, file=out)
    return 1 if n_problems else 0


def _arrays(examples: list[Example]) -> list[dict[str, Any]]:
    kinds = collections.Counter(
        (key, dtype, shape)
        for e in examples
        if e.error is None
        for key, (dtype, shape) in e.arrays.items()
    )
    return [
        {"key": key, "dtype": dtype, "row_shape": list(shape), "examples": count}
        for (key, dtype, shape), count in kinds.most_common()
    ]
