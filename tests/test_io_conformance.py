"""The :mod:`pescador.io` window streamers (npz_windows, npy_windows, and the Streamers of
npz_streamers and npy_streamers) under the :mod:`pescador.testing` checks: restartable,
resumable (without rereading what was read), and window starts in the right proportions.
"""

from __future__ import annotations

import importlib
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

import pescador
import pescador.io
import pescador.maps
from conftest import MODES, advance, assert_conforms, roundtrip
from pescador import StochasticMux, Streamer
from pescador.testing import assert_proportions, items_equal

# --------------------------------------------------------------------------- corpus


def write_corpus(folder: Path, n_files: int = 6, rows: int = 3000, features: int = 40):
    """NPZ and NPY examples whose X is large enough to be read in place, window by window."""
    for k in range(n_files):
        X = (np.arange(rows * features, dtype=np.float32) + 1e6 * k).reshape(rows, features)
        Y = np.arange(rows) + 10_000 * k
        np.savez(folder / f"{k}.npz", X=X, Y=Y)
        np.save(folder / f"e{k}.X.npy", X)
        np.save(folder / f"e{k}.Y.npy", Y)
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture
def count_reads(monkeypatch):
    """Count the positioned reads of the window streamers (each reads with ``_pread``)."""
    module = importlib.import_module(pescador.io.WindowIterator.__module__)
    assert hasattr(module, "_pread"), "the window streamers' reader moved: update this test"
    reads = [0]
    real = module._pread

    def counting(fd, buffers, offset):
        reads[0] += 1
        return real(fd, buffers, offset)

    monkeypatch.setattr(module, "_pread", counting)
    return reads


# --------------------------------------------------------------------------- conformance
# The pescador.testing checks, through assert_conforms (conftest.py): restartable, resumable
# at every position (JSON states), and, where the stream is random, the proportions of items.


@pytest.mark.parametrize("mode", MODES)
def test_npz_windows_through_a_mux_resume_at_every_position(corpus, mode):
    streams = pescador.io.npz_streamers(corpus, 8, id_key="file")
    assert_conforms(StochasticMux(streams, 3, 5, mode=mode, random_state=2), 120)


def test_npy_windows_through_maps_resume(corpus):
    mux = StochasticMux(pescador.io.npy_streamers(corpus, 8), 2, 7, random_state=3)
    assert_conforms(mux, 300, positions=range(1, 301, 11))
    assert_conforms(Streamer(pescador.buffer_stream, mux, 4), 30)


def test_a_window_streamer_resumes_without_rereading(corpus, count_reads):
    """O(1): after 100 000 windows, resuming reads one window (plus the small Y, whole)."""
    stream = Streamer(pescador.io.npz_windows, corpus / "0.npz", 8, random_state=1)
    it = advance(stream.iterate(), 100_000)
    state = roundtrip(it.state_dict())
    expected = next(it)
    it.close()
    count_reads[0] = 0
    got = next(stream.iterate(state=state))
    assert items_equal(got, expected)
    assert count_reads[0] <= 2
    assert len(json.dumps(state)) < 1024


def test_a_mux_of_window_streamers_resumes_without_rereading(corpus, count_reads):
    mux = StochasticMux(pescador.io.npz_streamers(corpus, 8), 3, None, random_state=2)
    it = advance(mux.iterate(), 30_000)
    state = roundtrip(it.state_dict())
    expected = list(itertools.islice(it, 3))
    it.close()
    count_reads[0] = 0
    resumed = mux.iterate(state=state)
    assert items_equal(next(resumed), expected[0])
    assert count_reads[0] <= 2  # only the slot drawn first opened its file
    assert items_equal([expected[0], *itertools.islice(resumed, 2)], expected)


@pytest.mark.parametrize("kind", ["npz", "npy"])
def test_a_window_streamer_with_a_fixed_seed_conforms(corpus, kind):
    """A fixed ``random_state``: every activation replays the same windows (a recipe)."""
    if kind == "npz":
        stream = Streamer(pescador.io.npz_windows, corpus / "0.npz", 8, random_state=1)
    else:
        files = {"X": corpus / "e0.X.npy", "Y": corpus / "e0.Y.npy"}
        stream = Streamer(pescador.io.npy_windows, files, 8, random_state=1)
    assert_conforms(stream, 40)


def test_window_starts_are_uniform(tmp_path):
    """A window starts at any of the ``rows - n + 1 = 13`` valid rows, uniformly, and each
    window is an independent draw: P(false failure) <= alpha = 1e-6 (Hoeffding)."""
    path = tmp_path / "short.npz"
    np.savez(path, X=np.zeros((20, 2), np.float32), Y=np.arange(20))
    stream = Streamer(pescador.io.npz_windows, path, 8, random_state=0)
    assert_proportions(stream, lambda window: int(window["Y"][0]), [1] * 13, n=26_000)
