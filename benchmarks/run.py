"""Run the benchmarks side by side: this repository's pescador against the reference 3.0.0.

Each ``benchmarks/bench_<name>.py`` script runs under two interpreters, alternately, for several
rounds:

* OURS: the interpreter running this file (``.venv/bin/python`` under ``make bench``), with the
  repository root first on ``PYTHONPATH`` so that ``import pescador`` is this repository's;
* REFERENCE: a virtualenv holding pescador 3.0.0, whose python is printed by
  ``../shared/tools/reference-env.sh`` (built on first use, then cached).

The machine is shared and noisy, so every case keeps the best (lowest) time of all rounds on
each side. The result is a markdown table with the speed-up (reference / ours) and each case's
target. The exit status is 0 even when targets fail: this is a report, and failures are marked
``FAIL`` in the table and listed below it.

Examples::

    make bench
    .venv/bin/python benchmarks/run.py --only mux --rounds 3 --output benchmarks/results/mux.md
    .venv/bin/python benchmarks/run.py --quick
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
REFERENCE_ENV = REPO_ROOT.parent / "shared" / "tools" / "reference-env.sh"
SIDES = ("reference", "ours")


@dataclass
class Outcome:
    """Everything one side produced for one benchmark, over all rounds."""

    cases: dict[str, list[Any]] = field(default_factory=dict)  # case -> one entry per round
    targets: dict[str, dict[str, float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    pescador: str = ""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--only",
        metavar="PATTERN",
        default="",
        help="run only benchmarks whose name (e.g. 'mux' for bench_mux.py) contains PATTERN\n"
        "or matches it as a glob; comma-separated patterns are OR-ed",
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    parser.add_argument("--case", default="", help="only cases whose name contains this")
    parser.add_argument("--time", type=float, help="seconds per timed run inside a script")
    parser.add_argument("--repeat", type=int, help="timed runs per case inside a script")
    # Testing the harness itself: --reference-twice runs the reference on both sides (every
    # ratio should be about 1); --ours-python runs ours under another interpreter.
    parser.add_argument("--reference-twice", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ours-python", help=argparse.SUPPRESS)
    parser.add_argument(
        "--reference-python",
        metavar="PATH",
        help="the reference's python (default: the one reference-env.sh prints)",
    )
    parser.add_argument("--timeout", type=float, default=3600, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds={args.rounds}: expected at least 1")
    return args


def reference_python() -> str:
    """Build (or find, it is cached) the reference virtualenv; return its python."""
    if not REFERENCE_ENV.is_file():
        sys.exit(
            f"error: {REFERENCE_ENV} not found. The reference pescador 3.0.0 is built by that "
            "script, expected in the shared/ directory next to this repository "
            f"({REPO_ROOT.parent}). Pass --reference-python PATH to use another interpreter."
        )
    print(f"reference: {REFERENCE_ENV} (first run builds a virtualenv)", file=sys.stderr)
    done = subprocess.run(
        ["bash", str(REFERENCE_ENV)], stdout=subprocess.PIPE, text=True, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        sys.exit(f"error: {REFERENCE_ENV} failed (exit {done.returncode}); see its output above")
    return lines[-1]


def select(pattern: str) -> list[Path]:
    scripts = sorted(BENCH_DIR.glob("bench_*.py"))
    if not pattern:
        return scripts
    wanted = [p.strip() for p in pattern.split(",") if p.strip()]

    def matches(name: str) -> bool:
        return any(p in name or fnmatch.fnmatch(name, p) for p in wanted)

    chosen = [s for s in scripts if matches(s.stem.removeprefix("bench_"))]
    if not chosen:
        names = ", ".join(s.stem.removeprefix("bench_") for s in scripts)
        sys.exit(f"error: --only={pattern!r} matches no benchmark (there are: {names})")
    return chosen


def environment(with_repo: bool) -> dict[str, str]:
    env = dict(os.environ)
    # Never let the repository leak into the reference's path, and put it first for ours.
    env.pop("PYTHONPATH", None)
    if with_repo:
        inherited = os.environ.get("PYTHONPATH")
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *([inherited] if inherited else [])])
    return env


def run_once(python: str, with_repo: bool, script: Path, flags: list[str], timeout: float) -> Any:
    """Run ``script`` once; return its parsed JSON line, or an error message (a str)."""
    try:
        done = subprocess.run(
            [python, str(script), *flags],
            capture_output=True,
            text=True,
            env=environment(with_repo),
            cwd=BENCH_DIR,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:.0f} s"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1])
        if not isinstance(result.get("cases"), dict):
            raise ValueError("no cases")
    except (IndexError, ValueError, AttributeError):
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        return f"exit {done.returncode}, no JSON result\n{tail}"
    if done.returncode != 0 and done.stderr.strip() not in _shown:
        # Some cases failed but the others were reported: show why (once), then keep going.
        _shown.add(done.stderr.strip())
        print(done.stderr.rstrip(), file=sys.stderr)
    return result


_shown: set[str] = set()


def run_benchmark(
    script: Path, pythons: dict[str, str], args: argparse.Namespace
) -> dict[str, Outcome]:
    flags = [f for f, on in [("--quick", args.quick)] if on]
    for flag, value in [("--case", args.case), ("--time", args.time), ("--repeat", args.repeat)]:
        if value:
            flags += [flag, str(value)]
    outcomes = {side: Outcome() for side in SIDES}
    for round_ in range(args.rounds):
        order = SIDES if round_ % 2 == 0 else SIDES[::-1]
        for side in order:
            start = time.perf_counter()
            with_repo = side == "ours" and not args.reference_twice
            result = run_once(pythons[side], with_repo, script, flags, args.timeout)
            took = time.perf_counter() - start
            print(
                f"  {script.stem} round {round_ + 1}/{args.rounds} {side:9}  {took:6.1f} s",
                file=sys.stderr,
            )
            outcome = outcomes[side]
            if isinstance(result, str):
                print(f"    {side} failed: {result}", file=sys.stderr)
                outcome.errors.append(result.splitlines()[0])
                continue
            outcome.pescador = result.get("pescador", "?")
            outcome.targets.update(result.get("targets", {}))
            for case, entry in result["cases"].items():
                outcome.cases.setdefault(case, []).append(entry)
    return outcomes


# ----------------------------------------------------------------------------- the report


def best(entries: list[Any] | None) -> Any:
    """The best of one case's entries over the rounds: lowest time, else None or an error."""
    if not entries:
        return None
    numbers = [e for e in entries if e and "error" not in e]
    if numbers:
        return min(numbers, key=lambda e: e.get("seconds_per_item", e.get("value")))
    errors = [e for e in entries if e]
    return errors[0] if errors else None


def number(entry: Any) -> float | None:
    if not entry or "error" in entry:
        return None
    value = entry.get("seconds_per_item", entry.get("value"))
    return None if value is None else float(value)


def time_unit(seconds: float) -> tuple[str, float]:
    for name, scale in (("ns", 1e-9), ("µs", 1e-6), ("ms", 1e-3)):
        if abs(seconds) < 1000 * scale:
            return name, scale
    return "s", 1.0


def show(entry: Any) -> str:
    if entry is None:
        return "n/a"
    if "error" in entry:
        return "error"
    if "value" in entry:
        return f"{entry['value']:.3g}{entry.get('unit', '')}"
    name, factor = time_unit(entry["seconds_per_item"])
    per = entry.get("unit", "item")
    suffix = "" if per == "call" else f"/{per}"
    return f"{entry['seconds_per_item'] / factor:.3g} {name}{suffix}"


def show_target(target: dict[str, float] | None, entry: Any) -> str:
    if not target:
        return "—"
    if "speedup" in target:
        return f"≥ {target['speedup']:g}x"
    limit = target["at_most"]
    if entry and "seconds_per_item" in entry:
        name, factor = time_unit(limit)
        return f"≤ {limit / factor:g} {name}"
    return f"≤ {limit:g}"


def verdict(target: dict[str, float] | None, ref: Any, ours: Any) -> str:
    if not target:
        return ""
    ours_value, ref_value = number(ours), number(ref)
    if ours_value is None:
        return "**FAIL** (no result)"
    if "speedup" in target:
        if ref_value is None:
            return "n/a (no reference)"
        passed = ref_value / ours_value >= target["speedup"] if ours_value > 0 else True
    else:
        passed = ours_value <= target["at_most"]
    return "pass" if passed else "**FAIL**"


def table(results: dict[str, dict[str, Outcome]]) -> tuple[list[str], list[str]]:
    """The markdown rows, and the list of failed ``benchmark / case`` names."""
    rows = [
        "| benchmark | case | reference | ours | speed-up | target | result |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    failures = []
    for bench, outcomes in results.items():
        ref_side, ours_side = outcomes["reference"], outcomes["ours"]
        cases = list(dict.fromkeys([*ours_side.cases, *ref_side.cases]))
        targets = {**ref_side.targets, **ours_side.targets}
        for case in cases:
            ref, ours = best(ref_side.cases.get(case)), best(ours_side.cases.get(case))
            ref_value, ours_value = number(ref), number(ours)
            timed = all("seconds_per_item" in e for e in (ref, ours) if e and "error" not in e)
            speedup = "—"
            if timed and ref_value is not None and ours_value:
                speedup = f"{ref_value / ours_value:.3g}x"
            target = targets.get(case)
            result = verdict(target, ref, ours)
            if "FAIL" in result:
                failures.append(f"{bench} / {case}")
            rows.append(
                f"| {bench} | {case} | {show(ref)} | {show(ours)} | {speedup} "
                f"| {show_target(target, ours or ref)} | {result} |"
            )
        for side in SIDES:
            for error in dict.fromkeys(outcomes[side].errors):
                rows.append(f"| {bench} | ({side} run failed: {error}) | | | | | **FAIL** |")
                failures.append(f"{bench} / {side} run")
    return rows, failures


def report(
    results: dict[str, dict[str, Outcome]], pythons: dict[str, str], args: argparse.Namespace
) -> str:
    rows, failures = table(results)
    paths = {
        side: next((o[side].pescador for o in results.values() if o[side].pescador), "?")
        for side in SIDES
    }
    lines = [
        f"Benchmarks, {time.strftime('%Y-%m-%d %H:%M')}, {platform.node()} "
        f"({os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}), best of {args.rounds} alternating rounds"
        + (", --quick" if args.quick else "")
        + ".",
        "",
        f"- reference: `{pythons['reference']}` (pescador from `{paths['reference']}`)",
        f"- ours: `{pythons['ours']}` (pescador from `{paths['ours']}`)",
        "",
        *rows,
        "",
    ]
    checked = sum(1 for row in rows[2:] if row.rstrip(" |").endswith(("pass", "**FAIL**")))
    if failures:
        lines.append(f"**FAIL**: {len(failures)} of {checked} targets missed or not measured:")
        lines += [f"- {name}" for name in failures]
    else:
        lines.append(f"All {checked} targets pass.")
    return "\n".join(lines) + "\n"


def check_paths(results: dict[str, dict[str, Outcome]], args: argparse.Namespace) -> None:
    """Warn loudly when a side imported the wrong pescador."""
    for outcomes in results.values():
        for side in SIDES:
            path = outcomes[side].pescador
            if not path:
                continue
            inside = Path(path).resolve().is_relative_to(REPO_ROOT)
            if side == "ours" and not inside and not args.reference_twice:
                print(f"WARNING: ours imported pescador from {path}", file=sys.stderr)
            if side == "reference" and inside:
                print(f"WARNING: the reference imported this repo's {path}", file=sys.stderr)


def main() -> None:
    args = parse_args()
    scripts = select(args.only)
    reference = args.reference_python or reference_python()
    ours = reference if args.reference_twice else args.ours_python or sys.executable
    pythons = {"reference": reference, "ours": ours}
    results = {}
    for script in scripts:
        print(f"{script.name}:", file=sys.stderr)
        results[script.stem.removeprefix("bench_")] = run_benchmark(script, pythons, args)
    check_paths(results, args)
    text = report(results, pythons, args)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"written to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
