"""pescador.keras with real Keras 3, on the PyTorch and TensorFlow backends: a fit that learns,
exact resume after a kill mid-epoch, fits that continue exactly, the validation stream identical
every epoch, every item kind, errors, doctests. The bodies are in keras_cases.py and run in one
worker process per backend (framework_worker.py): Keras fixes its backend at import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("keras")

BACKENDS = ["torch", "tensorflow"]


@pytest.fixture(params=BACKENDS)
def backend(request, framework_workers):
    name = request.param
    pytest.importorskip(name)
    worker = framework_workers(name)
    return lambda case, *args: worker.run("keras_cases", case, *args)


def test_import_pescador_imports_no_keras_or_tensorflow():
    code = (
        "import pescador, sys\n"
        "for name in ('keras', 'tensorflow', 'torch', 'jax'):\n"
        "    assert name not in sys.modules, name + ' was imported'\n"
        "assert 'keras' in dir(pescador) and 'tf' in dir(pescador)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_without_keras_the_error_names_the_extra():
    code = "import sys; sys.modules['keras'] = None; import pescador.keras"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    assert "pip install 'pescador[keras]'" in done.stderr


def test_fit_learns(backend):
    first, last = backend("fit_learns")
    assert last < first / 10


def test_resume_after_a_kill_matches_the_uninterrupted_run(backend, tmp_path):
    assert backend("resume_matches", str(tmp_path)) == 10


def test_fits_continue_after_the_last_trained_batch(backend):
    backend("fits_continue_exactly")


def test_validation_stream_identical_every_epoch(backend, tmp_path):
    assert backend("validation_identical", str(tmp_path)) == [0, 4, 8, 102, 106]


def test_item_kinds(backend):
    report = backend("item_kinds")
    assert report["dict"] == ["first", "second"]


def test_errors_say_what_to_do(backend):
    backend("errors")


def test_doctests(backend):
    failed, attempted = backend("doctests")
    assert failed == 0 and attempted > 0


@pytest.mark.timeout(150)  # three processes that each import Keras (5 s or more each)
def test_the_keras_training_example_runs(tmp_path):
    """examples/keras_train.py for one epoch: trained, killed mid-epoch, resumed, identical."""
    pytest.importorskip("torch")
    repo = Path(__file__).resolve().parent.parent
    python_path = os.pathsep.join([str(repo), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = dict(os.environ, KERAS_BACKEND="torch", PYTHONPATH=python_path)
    script = repo / "examples" / "keras_train.py"
    done = subprocess.run(
        [sys.executable, str(script), "--workdir", str(tmp_path), "--epochs", "1"],
        capture_output=True,
        text=True,
        timeout=140,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resumed at epoch 0, step 7" in done.stdout
    assert "resumed run matches the uninterrupted run" in done.stdout


def test_the_readme_example_runs(backend, tmp_path):
    assert backend("readme", str(tmp_path)) < 0.01
