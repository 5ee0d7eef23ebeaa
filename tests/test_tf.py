"""pescador.tf.to_dataset with real TensorFlow: the signature of every item kind, values back
as they went in, a fresh stream per iteration, ParallelStreamer workers, errors, Keras on it,
doctests. The bodies are in tf_cases.py and run in the TensorFlow worker process
(framework_worker.py): the pytest process never imports TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("tensorflow")


@pytest.fixture
def case(framework_workers):
    worker = framework_workers("tensorflow")
    return lambda name, *args: worker.run("tf_cases", name, *args)


def test_without_tensorflow_the_error_names_the_extra():
    code = "import sys; sys.modules['tensorflow'] = None; import pescador.tf"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    assert "pip install 'pescador[tf]'" in done.stderr


def test_signature_and_values_of_every_kind(case):
    dtypes = case("signature_and_values")
    assert dtypes["f16"] == "float16" and dtypes["text"] == "string"


def test_tuples_and_arrays(case):
    assert case("tuples_and_arrays") == [3, 5]


def test_each_iteration_restarts_the_stream(case):
    case("restarts_each_iteration")


def test_an_output_signature_reads_nothing_ahead(case):
    case("signature_given_reads_nothing")


def test_parallel_workers(case):
    assert case("parallel_workers") == 30


def test_errors(case):
    errors = case("errors")
    assert set(errors) == {"empty", "dtype", "shape"}


def test_keras_fits_on_a_dataset(case):
    assert case("keras_fit") < 0.1


def test_doctests(case):
    assert case("doctests")[1] > 0
