"""The ``pescador`` command: ``pescador demo`` in-process (``main([...])``) and as a subprocess."""

from __future__ import annotations

import collections
import io
import json
import os
import re
import struct
import subprocess
import sys
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

import pescador
from pescador import cli
from pescador._progress import Progress
from pescador.cli import main, write_corpus

REPO = Path(__file__).resolve().parent.parent
SMALL = ["--files", "6", "--rows", "80", "--features", "4", "--batches", "12", "--quiet"]


def run_module(*args: str, timeout: float = 50) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "pescador", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def summary_values(text: str) -> dict[str, str]:
    return dict(
        re.findall(
            r"^(batches|throughput|files touched|samples/file|peak memory)\s+(.*)$", text, re.M
        )
    )


# --------------------------------------------------------------------------- the demo


def test_demo_on_a_synthetic_corpus(capsys):
    assert main(["demo", *SMALL]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith("pescador demo: 6 synthetic NPZ files")
    values = summary_values(out)
    assert set(values) == {"batches", "throughput", "files touched", "samples/file", "peak memory"}
    assert re.match(
        r"12 of 16 windows in [\d.]+ s: [\d,]+ batches/s, [\d,]+ windows/s", values["batches"]
    )
    assert re.match(r"[\d,.]+ MB/s \(keys X, Y\)", values["throughput"])
    assert re.match(r"\d of 6", values["files touched"])
    assert re.match(
        r"min \d+ / median [\d.]+ / max \d+  \(expected 32\.0 each\)", values["samples/file"]
    )
    assert re.match(r"[\d.]+ MB \(max RSS\)", values["peak memory"])
    folder = re.search(r"removed the synthetic corpus (\S+)\)", out).group(1)
    assert not os.path.exists(folder)


def test_demo_is_reproducible_by_seed(capsys):
    outputs = []
    for seed in ("1", "1", "2"):
        assert main(["demo", *SMALL, "--seed", seed]) == 0
        outputs.append(summary_values(capsys.readouterr().out)["samples/file"])
    assert outputs[0] == outputs[1] != outputs[2]


@pytest.mark.parametrize("fmt", ["npz", "npz-compressed", "npy"])
def test_demo_on_the_users_files(tmp_path, capsys, fmt):
    write_corpus(tmp_path, files=5, rows=60, features=3, fmt=fmt)
    args = ["demo", "--data", str(tmp_path), "--batches", "10", "--window", "8", "--quiet"]
    assert main([*args, "--batch-size", "4", "--n-active", "2", "--rate", "3"]) == 0
    out = capsys.readouterr().out
    kind = "NPY examples" if fmt == "npy" else "NPZ archives"
    assert out.startswith(f"pescador demo: 5 {kind} in {tmp_path}")
    assert "StochasticMux(n_active=2, rate=3, mode=with_replacement)" in out
    assert summary_values(out)["batches"].startswith("10 of 4 windows")
    assert "(expected 8.0 each)" in out
    assert sorted(os.listdir(tmp_path)) == sorted(os.listdir(tmp_path))  # untouched


def test_demo_keys_and_mode(tmp_path, capsys):
    write_corpus(tmp_path, files=4, rows=60, features=3)
    args = ["demo", "--data", str(tmp_path), "--keys", "Y", "--mode", "exhaustive", "--quiet"]
    assert (
        main([*args, "--rate", "2", "--batches", "1000", "--n-active", "2", "--batch-size", "2"])
        == 0
    )
    out = capsys.readouterr().out
    assert "(keys Y)" in out
    assert re.search(r"note\s+the stream ended after \d+ batches", out)
    assert main(args) == 2  # n_active=32 > 4 files: the mux refuses it
    assert "n_active=32 be at most the number of streamers=4" in one_error_line(capsys)


def test_demo_skips_short_files_and_says_so(tmp_path, capsys):
    write_corpus(tmp_path, files=3, rows=60, features=3)
    np.savez(tmp_path / "short.npz", X=np.zeros((3, 3), np.float32), Y=np.arange(3))
    assert main(["demo", "--data", str(tmp_path), "--batches", "5", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"skipped\s+\S*short\.npz: 3 rows, fewer than one window of 16", out)
    assert "3 NPZ archives" in out


# --------------------------------------------------------------------------- bad input


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pescador demo: error: ")
    return lines[0]


def test_a_path_that_does_not_exist(tmp_path, capsys):
    assert main(["demo", "--data", str(tmp_path / "nope")]) == 2
    assert one_error_line(capsys).endswith("nope: no such directory")


def test_a_file_instead_of_a_directory(tmp_path, capsys):
    (tmp_path / "f.npz").write_bytes(b"")
    assert main(["demo", "--data", str(tmp_path / "f.npz")]) == 2
    assert one_error_line(capsys).endswith("f.npz: not a directory")


def test_an_empty_directory(tmp_path, capsys):
    assert main(["demo", "--data", str(tmp_path)]) == 2
    assert "no .npz or .npy files in this directory" in one_error_line(capsys)
    assert main(["demo", "--data", str(tmp_path), "--format", "npy"]) == 2
    assert "no .npy files in this directory" in one_error_line(capsys)


def test_a_corrupt_file(tmp_path, capsys):
    write_corpus(tmp_path, files=2, rows=60, features=3)
    (tmp_path / "junk.npz").write_bytes(b"not an archive")
    assert main(["demo", "--data", str(tmp_path)]) == 2
    assert re.search(r"junk\.npz: not a valid NPZ", one_error_line(capsys))


def test_only_short_files(tmp_path, capsys):
    np.savez(tmp_path / "a.npz", X=np.zeros((3, 3)), Y=np.arange(3))
    assert main(["demo", "--data", str(tmp_path), "--short", "error"]) == 2
    assert "a.npz: 3 rows, fewer than one window of 16" in one_error_line(capsys)
    assert main(["demo", "--data", str(tmp_path)]) == 2
    assert "every file is shorter than a window" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [["--batches", "0"], ["--rate", "nan"], ["--window", "x"], ["--mode", "x"], ["--keys", ","]],
)
def test_bad_options_are_usage_errors(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", *args])
    assert exit_info.value.code == 2
    assert "usage: pescador demo" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "demo" in capsys.readouterr().err


# --------------------------------------------------------------------------- pieces


def test_write_corpus(tmp_path):
    paths = write_corpus(tmp_path, files=3, rows=10, features=2, fmt="npz")
    assert [os.path.basename(p) for p in paths] == [f"example-000{i}.npz" for i in range(3)]
    with np.load(paths[0]) as data:
        assert data["X"].dtype == np.float32 and data["X"].shape[1] == 2
        assert 5 <= len(data["Y"]) <= 15 and (data["Y"] == np.arange(len(data["Y"]))).all()
    with pytest.raises(cli.PescadorError, match="fmt='csv'"):
        write_corpus(tmp_path, fmt="csv")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_terminal_elsewhere_and_quiet():
    terminal = _Terminal()
    line = Progress(100, "windows", terminal, rich=False)
    line.update(40, force=True)
    line.finish()
    text = terminal.getvalue()
    assert re.match(
        r"\r40/100 windows \(40%\), [\d,]+ windows/s, elapsed [\d.]+s, ETA [\d.:]+s?", text
    )
    assert text.endswith("\n")
    piped = io.StringIO()  # not a terminal: one plain line at the end (and every 5 s)
    line = Progress(None, "examples", piped)
    line.update(7, force=True)
    assert re.fullmatch(r"7 examples, [\d,]+ examples/s, elapsed [\d.]+s\n", piped.getvalue())
    quiet = _Terminal()
    line = Progress(10, "windows", quiet, quiet=True)
    line.update(5, force=True)
    line.finish()
    assert quiet.getvalue() == ""
    assert [n for _, n in line.history] == [0, 5]  # (it still keeps the throughput)


def test_progress_line_drawn_by_rich_on_a_terminal():
    pytest.importorskip("rich")
    terminal = _Terminal()
    line = Progress(100, "windows", terminal)
    assert line._rich is not None
    line.update(100, force=True)
    line.finish()
    text = terminal.getvalue()
    assert "100/100" in text and "windows/s" in text and "ETA" in text


def test_progress_line_without_rich_is_plain(monkeypatch):
    monkeypatch.setitem(sys.modules, "rich.progress", None)
    terminal = _Terminal()
    line = Progress(10, "windows", terminal)
    assert line._rich is None
    line.update(5, force=True)
    assert terminal.getvalue().startswith("\r5/10 windows")


# --------------------------------------------------------------------------- python -m pescador


def test_python_m_pescador_demo():
    done = run_module("demo", *SMALL)
    assert done.returncode == 0, done.stderr
    assert "samples/file" in done.stdout and done.stderr == ""


def test_python_m_pescador_demo_help():
    done = run_module("demo", "--help")
    assert done.returncode == 0
    for option in ("--data", "--n-active", "--rate", "--mode", "--window", "--batch-size"):
        assert option in done.stdout
    for option in ("--batches", "--seed", "--keys"):
        assert option in done.stdout


def test_python_m_pescador_bad_path():
    done = run_module("demo", "--data", "/nonexistent/pescador-data")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "pescador demo: error: --data /nonexistent/pescador-data: no such directory"
    ]
    assert done.stdout == ""


# --------------------------------------------------------------------------- demo reports
def test_demo_json_is_exact(capsys):
    assert main(["demo", *SMALL, "--json", "--weights", "rows", "--seed", "3"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)  # stdout holds the JSON alone
    assert err.startswith("pescador demo: 6 synthetic NPZ files")
    assert report["command"] == "demo" and report["batches"] == 12
    assert report["windows"] == 12 * 16 == report["stats"]["items"]
    streamers = report["stats"]["streamers"]
    assert len(streamers) == report["files"] == 6
    counts = [s["items"] for s in streamers]
    assert sum(counts) == report["windows"]
    assert report["files_touched"] == sum(1 for c in counts if c)
    assert report["samples_per_file"]["max"] == max(counts)
    # Targets follow the rows of each file (--weights rows), read from the headers.
    assert sum(s["target"] for s in streamers) == pytest.approx(1)
    assert len({round(s["target"], 9) for s in streamers}) > 1
    per_window = 16 * 4 * 4  # X float32 (16, 4) read per window; Y (small) read whole
    assert all(s["bytes_read"] >= s["items"] * per_window for s in streamers)
    assert report["throughput"][0] == [0.0, 0] and report["throughput"][-1][1] == 192
    assert report["stats"]["rate"] == 16.0


def test_demo_json_matches_the_windows_drawn(tmp_path, capsys):
    # The demo's figures come from the watched mux; count the files of the same seeded
    # stream's windows outside it.
    write_corpus(tmp_path, files=5, rows=60, features=3)
    args = ["demo", "--data", str(tmp_path), "--window", "8", "--batches", "30", "--json"]
    assert main([*args, "--batch-size", "4", "--n-active", "2", "--rate", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    streams = pescador.io.npz_streamers(tmp_path, 8, short="skip", id_key="file")
    mux = pescador.StochasticMux(streams, 2, 3.0, random_state=0)
    seen = collections.Counter()
    for batch in islice(pescador.buffer_stream(mux, 4), 30):
        seen.update(batch["file"].tolist())
    assert [s["items"] for s in report["stats"]["streamers"]] == [seen[i] for i in range(5)]


def test_demo_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "demo.png"
    assert main(["demo", *SMALL, "--plot", str(path)]) == 0
    assert f"wrote the plot {path}" in capsys.readouterr().out
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1300, 380)
    assert 20_000 < len(data) < 400_000  # three panels drawn, not an empty canvas
    from matplotlib.image import imread

    pixels = imread(path)
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 50  # drawn


def test_demo_plot_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["demo", *SMALL, "--plot", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "--plot needs matplotlib: pip install 'pescador[plot]'" in err
    assert not (tmp_path / "x.png").exists()


# --------------------------------------------------------------------------- inspect
def planted_corpus(folder):
    """A corpus of 8 good examples and one of each problem; returns the problems' names."""
    write_corpus(folder, files=8, rows=100, features=4)
    np.savez(folder / "short.npz", X=np.zeros((3, 4), np.float32), Y=np.arange(3))
    np.savez(folder / "dtype.npz", X=np.zeros((50, 4), np.float64), Y=np.arange(50))
    np.savez(folder / "shape.npz", X=np.zeros((50, 5), np.float32), Y=np.arange(50))
    np.savez(folder / "keys.npz", X=np.zeros((50, 4), np.float32), Z=np.arange(50))
    np.savez(folder / "lengths.npz", X=np.zeros((50, 4), np.float32), Y=np.arange(40))
    (folder / "garbage.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    whole = (folder / "example-0000.npz").read_bytes()
    (folder / "truncated.npz").write_bytes(whole[: len(whole) // 2])
    (folder / "empty.npz").write_bytes(b"")


def test_inspect_reports_each_planted_problem(tmp_path, capsys):
    planted_corpus(tmp_path)
    assert main(["inspect", str(tmp_path), "--window", "16", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["examples"] == 16 and report["readable"] == 12 and not report["ok"]
    problems = report["problems"]
    unreadable = dict(problems["unreadable"])
    assert set(unreadable) == {"garbage.npz", "truncated.npz", "empty.npz", "lengths.npz"}
    assert "different lengths" in unreadable["lengths.npz"]
    assert all(unreadable[name] for name in unreadable)  # each with its reason
    assert problems["keys"] == [["keys.npz", ["X", "Z"]]]
    assert problems["dtypes"] == [["dtype.npz", "X", "float64", "float32"]]
    assert problems["shapes"] == [["shape.npz", "X", [5], [4]]]
    assert problems["short"] == [["short.npz", 3]]
    arrays = {
        (a["key"], a["dtype"], tuple(a["row_shape"])): a["examples"] for a in report["arrays"]
    }
    assert arrays[("X", "float32", (4,))] == 10 and arrays[("Y", "int64", ())] == 11
    # The table says the same.
    assert main(["inspect", str(tmp_path), "--window", "16", "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    assert "16 found, 12 readable" in out and "8 problems found" in out
    for line in (
        "garbage.npz: ",
        "keys.npz: X, Z",
        "dtype.npz: X is float64, most are float32",
        "shape.npz: X rows are (5,), most are (4,)",
        "short.npz: 3 rows",
    ):
        assert line in out


def test_inspect_a_clean_corpus(tmp_path, capsys):
    write_corpus(tmp_path, files=4, rows=40, features=2, fmt="npy")
    assert main(["inspect", str(tmp_path), "--window", "4", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "4 found, 4 readable" in out and "no problems found" in out
    assert re.search(r"X\s+float32\s+\(2,\)\s+4", out)
    np.save(tmp_path / "example-0001.Y.npy", np.arange(5))  # now shorter than X
    (tmp_path / "stray.npy").write_bytes(b"")  # not <example>.<key>.npy
    assert main(["inspect", str(tmp_path), "--json", "--keys", "X,Y"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert dict(report["problems"]["unreadable"]).keys() == {"example-0001", "stray.npy"}
    np.savez(tmp_path / "other.npz", X=np.zeros(3))  # fewer than the NPY files: ignored
    assert main(["inspect", str(tmp_path), "--quiet"]) == 1
    assert "(ignored 1 .npz files: --format npz inspects them)" in capsys.readouterr().out


def test_inspect_bad_usage(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "missing")]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path)]) == 2  # empty
    assert "no .npz or .npy files" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["inspect", str(tmp_path), "--window", "0"])
    assert exc.value.code == 2


def test_python_m_pescador_inspect(tmp_path):
    planted_corpus(tmp_path)
    done = run_module("inspect", str(tmp_path), "--window", "16")
    assert done.returncode == 1, done.stderr
    assert "8 problems found" in done.stdout
    assert re.search(r"16/16 examples \(100%\)", done.stderr)  # the progress line, piped
