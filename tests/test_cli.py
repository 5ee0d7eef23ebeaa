"""The ``pescador`` command: ``pescador demo`` in-process (``main([...])``) and as a subprocess."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pescador import cli
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


def test_progress_bar_on_a_terminal_only():
    terminal = _Terminal()
    bar = cli._Progress(10, terminal, enabled=True)
    bar.update(5, 80, force=True)
    bar.finish()
    assert re.match(r"\r\[#{15}\.{15}\] 5/10 batches, [\d,]+ windows/s \n$", terminal.getvalue())
    piped = io.StringIO()
    bar = cli._Progress(10, piped, enabled=True)
    bar.update(5, 80, force=True)
    bar.finish()
    assert piped.getvalue() == ""


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
