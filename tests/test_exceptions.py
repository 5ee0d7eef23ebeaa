"""Tests for pescador.exceptions."""

from __future__ import annotations

import pickle
import sys

import pytest

import pescador
import pescador.exceptions as exc


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (exc.PescadorError, Exception),
        (exc.DataError, exc.PescadorError),
        (exc.StateError, exc.PescadorError),
        (exc.WorkerError, exc.PescadorError),
        (exc.WorkerStateError, exc.WorkerError),
        (exc.WorkerStateError, exc.StateError),
    ],
)
def test_hierarchy(child, parent):
    assert issubclass(child, parent)


@pytest.mark.parametrize("cls", [exc.DataError, exc.StateError, exc.WorkerError])
def test_caught_as_pescador_error(cls):
    with pytest.raises(pescador.PescadorError, match="went wrong"):
        raise cls("it went wrong")


def test_siblings_are_distinct():
    classes = [exc.DataError, exc.StateError, exc.WorkerError]
    for a in classes:
        for b in classes:
            assert issubclass(a, b) == (a is b)


def test_package_level_names_are_the_same_classes():
    assert pescador.PescadorError is exc.PescadorError
    assert pescador.DataError is exc.DataError


def test_all():
    assert set(exc.__all__) == {
        "PescadorError",
        "DataError",
        "StateError",
        "WorkerError",
        "WorkerStateError",
    }


def test_docstring_draws_every_exception():
    for name in exc.__all__:
        assert f"── {name}" in exc.__doc__, name


def test_data_error_chains_cause():
    with pytest.raises(exc.DataError) as info:
        try:
            {}["missing"]
        except KeyError as err:
            raise exc.DataError("not a data object") from err
    assert isinstance(info.value.__cause__, KeyError)


# --------------------------------------------------------------------------- WorkerError

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "worker.py", line 3, in gen\n'
    "ValueError: bad item\n"
)


def test_worker_error_attributes():
    err = exc.WorkerError("worker failed", TRACEBACK)
    assert err.message == "worker failed"
    assert err.remote_traceback == TRACEBACK
    assert err.args == ("worker failed",)


def test_worker_error_str_shows_remote_traceback():
    text = str(exc.WorkerError("worker failed", TRACEBACK))
    assert text.startswith("worker failed\n")
    assert "Remote traceback:" in text
    assert text.endswith("ValueError: bad item")


def test_worker_error_without_traceback():
    err = exc.WorkerError("worker died with exit code -9")
    assert err.remote_traceback is None
    assert str(err) == "worker died with exit code -9"


@pytest.mark.parametrize("tb", [TRACEBACK, None])
def test_worker_error_pickles(tb):
    err = exc.WorkerError("worker failed", tb)
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is exc.WorkerError
    assert copy.message == "worker failed"
    assert copy.remote_traceback == tb
    assert str(copy) == str(err)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="add_note is Python 3.11+")
def test_worker_error_pickle_keeps_notes():
    err = exc.WorkerError("worker failed", TRACEBACK)
    err.add_note("from streamer Streamer(gen)")
    copy = pickle.loads(pickle.dumps(err))
    assert copy.__notes__ == ["from streamer Streamer(gen)"]


@pytest.mark.parametrize("cls", [exc.PescadorError, exc.DataError, exc.StateError])
def test_plain_errors_pickle(cls):
    copy = pickle.loads(pickle.dumps(cls("message")))
    assert type(copy) is cls
    assert str(copy) == "message"
