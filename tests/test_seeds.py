"""The user's seed documents (shared/seeds/*.txt) run verbatim, and do what they promise.

Each document's code lives, verbatim, between ``BEGIN verbatim``/``END verbatim`` markers in
its runnable script under ``examples/``. These tests execute that block as it stands, on small
synthetic files made in ``tmp_path`` (only the file lists the documents assume are supplied),
then check the documents' claims:

* chainmux-repeatable-streams: the validation ``ChainMux`` stream repeats every ``N*M`` items,
  and each pass is the first ``M`` examples of each file, in order;
* sampling-from-disk: the three samplers (``sample_npz``, ``sample_npz_copy``,
  ``sample_npy_mmap``) under ``StochasticMux(streams, n_active=32, rate=16)`` give 1000
  batches, each of the right shapes and made of ``n`` contiguous rows of one file.

When the seed documents are available (``../shared/seeds`` next to the repository, or
``$PESCADOR_SEEDS_DIR``), a test also checks that every line of each block appears, in order,
in its document, except the few lines added to fix the document's typos.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pescador
from conftest import REPO

EXAMPLES = REPO / "examples"
SEEDS = Path(os.environ.get("PESCADOR_SEEDS_DIR") or REPO.parent / "shared" / "seeds")

CHAIN_SCRIPT = EXAMPLES / "chainmux_repeatable_streams.py"
SAMPLING_SCRIPT = EXAMPLES / "sampling_from_disk.py"

#: Lines added to the documents' code so that it runs (see the scripts' docstrings).
FIX_LINES = {
    SAMPLING_SCRIPT: {"    '''", "    pass"},  # close a docstring; give a loop a body
    CHAIN_SCRIPT: set(),
}
DOCUMENTS = {
    CHAIN_SCRIPT: "chainmux-repeatable-streams.txt",
    SAMPLING_SCRIPT: "sampling-from-disk.txt",
}


def verbatim_block(script: Path) -> str:
    """The document's code: the lines between the BEGIN and END verbatim markers."""
    lines = script.read_text().splitlines()
    begin = next(i for i, line in enumerate(lines) if line.startswith("# ---- BEGIN verbatim"))
    end = next(i for i, line in enumerate(lines) if line.startswith("# ---- END verbatim"))
    assert begin < end
    return "\n".join(lines[begin + 1 : end]) + "\n"


def run_block(script: Path, **names):
    """Execute a document's code with ``names`` (its file lists) defined; return its namespace."""
    namespace = {"__name__": "seed_document", **names}
    code = compile(verbatim_block(script), f"<verbatim block of {script.name}>", "exec")
    exec(code, namespace)
    return namespace


@pytest.fixture
def seeded_global_rng():
    """The documents draw from numpy's global RNG: seed it, and restore it afterwards."""
    state = np.random.get_state()
    np.random.seed(20240611)
    yield
    np.random.set_state(state)


# --------------------------------------------------------------------------- verbatim check


@pytest.mark.parametrize("script", list(DOCUMENTS), ids=lambda p: p.stem)
def test_block_is_the_documents_code(script):
    document = SEEDS / DOCUMENTS[script]
    if not document.exists():
        pytest.skip(f"seed document not available: {document}")
    doc_lines = [line.rstrip() for line in document.read_text().splitlines()]
    position = 0
    for line in verbatim_block(script).splitlines():
        line = line.rstrip()
        if not line.strip():
            continue
        try:
            position = doc_lines.index(line, position) + 1
        except ValueError:
            assert line in FIX_LINES[script], f"not in {document.name} (in order): {line!r}"


@pytest.mark.parametrize("script", list(DOCUMENTS), ids=lambda p: p.stem)
def test_example_script_runs(script, tmp_path):
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


# --------------------------------------------------------------------------- ChainMux document

CHAIN_ROWS = 15  # more rows than the M = 10 the document reads


def write_validation_files(directory: Path):
    """file1.npz and file2.npz, the names the document hard-codes; returns their arrays."""
    rng = np.random.default_rng(7)
    arrays = {}
    for k, name in enumerate(["file1.npz", "file2.npz"]):
        X = rng.normal(size=(CHAIN_ROWS, 3, 2)).astype(np.float32)
        Y = 10 * (k + 1) + np.arange(CHAIN_ROWS)
        np.savez(directory / name, X=X, Y=Y)
        arrays[name] = (X, Y)
    return arrays


@pytest.fixture
def chain_document(tmp_path, monkeypatch):
    arrays = write_validation_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    return run_block(CHAIN_SCRIPT), arrays


def test_chain_document_first_pass_is_the_first_m_examples_of_each_file(chain_document):
    ns, arrays = chain_document
    N, M, val_stream = ns["N"], ns["M"], ns["val_stream"]
    assert (N, M) == (2, 10)
    assert isinstance(val_stream, pescador.ChainMux)
    first_pass = list(val_stream.iterate(max_iter=N * M))
    assert len(first_pass) == N * M
    expected = [(name, i) for name in ns["val_files"] for i in range(M)]
    for item, (name, i) in zip(first_pass, expected, strict=True):
        X, Y = arrays[name]
        assert set(item) == {"X", "y"}
        assert item["X"].shape == (3, 2)
        assert item["X"].dtype == np.float32
        np.testing.assert_array_equal(item["X"], X[i])
        assert item["y"] == Y[i]


def test_chain_document_stream_has_period_n_times_m(chain_document):
    ns, _ = chain_document
    period = ns["N"] * ns["M"]
    items = list(ns["val_stream"].iterate(max_iter=4 * period + 3))
    assert len(items) == 4 * period + 3
    for k, item in enumerate(items):
        reference = items[k % period]
        np.testing.assert_array_equal(item["X"], reference["X"])
        assert item["y"] == reference["y"]
    # The period is exactly N*M, not a divisor of it: the first pass has no repeated item.
    assert len({int(item["y"]) for item in items[:period]}) == period


def test_chain_document_stream_is_repeatable_across_iterations(chain_document):
    ns, _ = chain_document
    period = ns["N"] * ns["M"]
    val_stream = ns["val_stream"]
    epochs = [list(val_stream(max_iter=period)) for _ in range(3)]
    for epoch in epochs[1:]:
        for a, b in zip(epoch, epochs[0], strict=True):
            np.testing.assert_array_equal(a["X"], b["X"])
            assert a["y"] == b["y"]


def test_chain_document_streams_are_streamers(chain_document):
    ns, _ = chain_document
    assert len(ns["val_streams"]) == ns["N"]
    for stream, name in zip(ns["val_streams"], ns["val_files"], strict=True):
        assert isinstance(stream, pescador.Streamer)
        assert stream.args == (name, ns["M"])
        assert len(list(stream)) == ns["M"]


# --------------------------------------------------------------------------- sampling document

FEATURES = 6
#: Rows per file; all longer than the document's n = 16 (its randint(n_total - n) needs that).
SAMPLING_ROWS = [17, 20, 33, 64, 100]


def sampling_data(file_number, rows):
    """Y is ``10000 * file_number + row``; X holds distinct values derived from it."""
    Y = 10_000 * file_number + np.arange(rows, dtype=np.int64)
    X = Y[:, None] * 10.0 + np.arange(FEATURES)
    return X.astype(np.float64), Y


@pytest.fixture
def sampling_files(tmp_path):
    files = {"npz_files": [], "npy_x_files": [], "npy_y_files": []}
    for number, rows in enumerate(SAMPLING_ROWS):
        X, Y = sampling_data(number, rows)
        np.savez(tmp_path / f"track{number}.npz", X=X, Y=Y)
        np.save(tmp_path / f"track{number}_X.npy", X)
        np.save(tmp_path / f"track{number}_Y.npy", Y)
        files["npz_files"].append(str(tmp_path / f"track{number}.npz"))
        files["npy_x_files"].append(str(tmp_path / f"track{number}_X.npy"))
        files["npy_y_files"].append(str(tmp_path / f"track{number}_Y.npy"))
    return files


@pytest.fixture
def sampling_document(sampling_files, seeded_global_rng):
    return run_block(SAMPLING_SCRIPT, **sampling_files)


def check_batches(batches, n):
    """Every batch is n contiguous rows of one file; return how many came from each file."""
    counts = [0] * len(SAMPLING_ROWS)
    for batch in batches:
        assert set(batch) == {"X", "Y"}
        assert batch["X"].shape == (n, FEATURES)
        assert batch["Y"].shape == (n,)
        assert batch["X"].dtype == np.float64
        assert batch["Y"].dtype == np.int64
        file_number, first_row = divmod(int(batch["Y"][0]), 10_000)
        assert 0 <= file_number < len(SAMPLING_ROWS)
        rows = SAMPLING_ROWS[file_number]
        # randint(n_total - n): the window starts in [0, n_total - n - 1].
        assert 0 <= first_row <= rows - n - 1
        X, Y = sampling_data(file_number, rows)
        np.testing.assert_array_equal(batch["X"], X[first_row : first_row + n])
        np.testing.assert_array_equal(batch["Y"], Y[first_row : first_row + n])
        counts[file_number] += 1
    return counts


def mux_of(ns, sampler):
    """A StochasticMux over the sampler, as the document builds it."""
    n = ns["n"]
    if sampler == "sample_npy_mmap":
        streams = [
            pescador.Streamer(ns[sampler], x, y, n)
            for x, y in zip(ns["npy_x_files"], ns["npy_y_files"], strict=True)
        ]
    else:
        streams = [pescador.Streamer(ns[sampler], f, n) for f in ns["npz_files"]]
    return pescador.StochasticMux(streams, n_active=32, rate=16)


def test_sampling_document_objects(sampling_document):
    ns = sampling_document
    assert ns["n"] == 16
    for name in ("mux_stream", "mux_streamer"):
        mux = ns[name]
        assert isinstance(mux, pescador.StochasticMux)
        assert mux.n_active == 32
        assert mux.rate == 16
        assert mux.n_streams == len(SAMPLING_ROWS)
    # The document's own loop ran to its end on the document's mux.
    assert ns["batch"]["X"].shape == (16, FEATURES)


@pytest.mark.parametrize("sampler", ["sample_npz", "sample_npz_copy", "sample_npy_mmap"])
def test_sampling_document_samplers_under_stochastic_mux(sampling_document, sampler):
    """1000 batches; with ~60 activations over 5 files, every file is used.

    A given file is never activated with probability about (4/5)**60 < 2e-6 per run; the
    global RNG is seeded, so the run is deterministic anyway.
    """
    ns = sampling_document
    batches = list(mux_of(ns, sampler)(max_iter=1000))
    assert len(batches) == 1000
    counts = check_batches(batches, ns["n"])
    assert sum(counts) == 1000
    assert all(counts), counts


def test_sampling_document_muxes_as_built_by_the_document(sampling_document):
    ns = sampling_document
    for name in ("mux_stream", "mux_streamer"):
        batches = list(ns[name](max_iter=1000))
        assert len(batches) == 1000
        assert all(check_batches(batches, ns["n"]))


def test_sampling_document_memory_claims(sampling_document):
    """The copying sampler's batches own their memory; the mmap sampler's are memory maps."""
    ns = sampling_document
    n = ns["n"]
    copied = next(iter(pescador.Streamer(ns["sample_npz_copy"], ns["npz_files"][0], n)))
    assert copied["X"].flags.owndata and copied["Y"].flags.owndata
    x_file, y_file = ns["npy_x_files"][0], ns["npy_y_files"][0]
    mapped = next(iter(pescador.Streamer(ns["sample_npy_mmap"], x_file, y_file, n)))
    assert isinstance(mapped["X"], np.memmap)
    assert isinstance(mapped["Y"], np.memmap)


def test_sampling_document_needs_files_longer_than_n(tmp_path, seeded_global_rng):
    """The document's ``randint(n_total - n)`` fails when a file has exactly n rows.

    The numpy error reaches the caller with its type unchanged, through the mux.
    """
    X, Y = sampling_data(0, 16)
    np.savez(tmp_path / "short.npz", X=X, Y=Y)
    files = {"npz_files": [str(tmp_path / "short.npz")], "npy_x_files": [], "npy_y_files": []}
    with pytest.raises(ValueError):
        run_block(SAMPLING_SCRIPT, **files)
