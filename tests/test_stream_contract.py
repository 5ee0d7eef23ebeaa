"""The contract between Streamer and its subclasses (pescador/core.py, pescador/_iterator.py).

Every stream is built through one initialiser (``Streamer._init_stream``), opens as a mux's
child through ``_open_child`` (which returns the child iterator and its items), and counts its
running iterations through ``_acquire``/``_release``.
"""

from __future__ import annotations

import copy
import pickle

import pytest

import pescador
from pescador.core import _How


def letters(word):
    yield from word


def every_kind_of_stream():
    plain = pescador.Streamer(letters, "abc")
    return {
        "Streamer": plain,
        "StochasticMux": pescador.StochasticMux([plain], 1, 2, random_state=0),
        "ShuffledMux": pescador.ShuffledMux([plain], random_state=0),
        "RoundRobinMux": pescador.RoundRobinMux([plain]),
        "ChainMux": pescador.ChainMux([plain]),
        "ChainMux(function)": pescador.ChainMux(lambda: iter([plain])),
        "ParallelStreamer": pescador.ParallelStreamer(plain, n_workers=1),
    }


@pytest.mark.parametrize("name", list(every_kind_of_stream()))
def test_every_stream_has_the_shared_fields(name):
    stream = every_kind_of_stream()[name]
    assert stream.active_count_ == 0
    assert stream.stream_ is None
    assert isinstance(stream.args, tuple)
    assert isinstance(stream.kwargs, dict)
    assert stream._plan.how is (_How.CALL if name == "Streamer" else _How.OWN)


def test_a_mux_has_no_streamer_and_says_so():
    mux = pescador.ShuffledMux([pescador.Streamer("ab")])
    with pytest.raises(AttributeError, match=r"'streamer'.*`streamers`"):
        mux.streamer
    assert getattr(mux, "streamer", None) is None
    with pytest.raises(AttributeError, match="'nothing'"):
        mux.nothing


def test_wrappers_report_what_they_wrap():
    inner = pescador.Streamer(letters, "ab")
    assert pescador.ParallelStreamer(inner, n_workers=1).streamer is inner
    assert pescador.Streamer(inner).streamer is inner


def test_setting_the_streamer_changes_the_plan():
    stream = pescador.Streamer([1, 2])
    stream.streamer = letters
    stream.args = ("xy",)
    assert list(stream) == ["x", "y"]
    assert stream._plan.direct


@pytest.mark.parametrize(
    "stream",
    [
        pescador.Streamer(letters, "abc"),  # a plain generator function: the direct path
        pescador.Streamer("abc"),
        pescador.Streamer(pescador.Streamer(letters, "abc")),
        pescador.ChainMux([pescador.Streamer("abc")]),
    ],
    ids=["function", "iterable", "nested", "mux"],
)
def test_open_child_returns_the_child_and_its_items(stream):
    child, items = stream._open_child(None)
    assert isinstance(child, pescador.StreamIterator)
    assert next(items) == "a"
    assert child.items_delivered == 1
    state = child._state_dict()
    child.close()
    again, rest = stream._open_child(None, state)
    assert list(rest) == ["b", "c"]
    assert again.items_delivered == 3
    assert stream.active == 0  # a mux's children do not count


def test_iterations_acquire_and_release_the_count():
    stream = pescador.Streamer(letters, "ab")
    it = iter(stream.iterate())
    next(it)
    assert stream.active == 1
    list(it)
    assert stream.active == 0
    with stream as active:
        assert stream.active == 1
        assert list(active.stream_) == ["a", "b"]
    assert stream.active == 0


@pytest.mark.parametrize("name", list(every_kind_of_stream()))
def test_every_stream_enters_copies_and_pickles(name):
    stream = every_kind_of_stream()[name]
    with stream as active:
        assert active.is_activated_copy and not stream.is_activated_copy
        assert stream.active_count_ == 1 and active.active_count_ == 0
        assert next(active.stream_) == "a"
    assert stream.active_count_ == 0
    if name != "ChainMux(function)":  # (a lambda)
        clone = pickle.loads(pickle.dumps(stream))
        assert clone._plan.how is stream._plan.how
    assert copy.copy(stream)._plan is stream._plan


def test_a_parallel_streamer_runs_as_a_muxs_child():
    parallel = pescador.ParallelStreamer(pescador.Streamer("abc"), n_workers=1)
    assert list(pescador.ChainMux([parallel, pescador.Streamer("de")])) == list("abcde")
