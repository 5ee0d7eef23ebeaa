"""Streamer.iterate, ``__call__`` and ``iter``, and the iterator objects they return.

``max_iter`` truncation never pulls an item from the source that it does not deliver, and every
way an iteration can end (exhausted, truncated, closed, dropped, failed) releases its activation
and runs the generator's ``finally`` blocks.
"""

from __future__ import annotations

import collections.abc
import gc

import numpy as np
import pytest

import pescador
from conftest import count_up, naturals

# --------------------------------------------------------------------------- iterate


def test_iterate_yields_the_stream():
    assert list(pescador.Streamer(count_up, 5).iterate()) == [0, 1, 2, 3, 4]
    assert list(pescador.Streamer(count_up, 5).iterate(max_iter=None)) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("max_iter", "expected"),
    [
        (0, 0),
        (-1, 0),
        (-2.5, 0),
        (1, 1),
        (3, 3),
        (2.5, 3),
        (0.1, 1),
        (5e3, 5000),
        (np.int64(4), 4),
        (np.float32(2.5), 3),
        (float("-inf"), 0),
    ],
)
def test_max_iter_values_on_an_infinite_stream(probe, max_iter, expected):
    stream = pescador.Streamer(probe.infinite)
    assert list(stream.iterate(max_iter=max_iter)) == list(range(expected))
    assert probe.pulls == expected  # never an item pulled and not delivered
    assert stream.active == 0


def test_max_iter_infinity_means_no_limit():
    assert list(pescador.Streamer(count_up, 4).iterate(float("inf"))) == [0, 1, 2, 3]


@pytest.mark.parametrize("bad", ["3", [3], float("nan")], ids=["str", "list", "nan"])
def test_invalid_max_iter_raises_at_the_call(bad):
    stream = pescador.Streamer(count_up, 4)
    with pytest.raises(pescador.PescadorError, match="max_iter"):
        stream.iterate(bad)
    with pytest.raises(pescador.PescadorError, match="max_iter"):
        stream.cycle(bad)


def test_max_iter_zero_still_makes_no_pull_but_ends_cleanly(probe):
    stream = pescador.Streamer(probe.infinite)
    assert list(stream.iterate(0)) == []
    assert probe.pulls == 0
    assert stream.active == 0


@pytest.mark.parametrize("n", [0, 1, 2, 7, 50])
def test_max_iter_never_pulls_an_extra_item(probe, n):
    stream = pescador.Streamer(probe.infinite)
    it = stream.iterate(max_iter=n)
    for _ in range(n):
        next(it)
    with pytest.raises(StopIteration):
        next(it)
    assert probe.pulls == n
    with pytest.raises(StopIteration):
        next(it)
    assert probe.pulls == n


def test_truncating_a_finite_stream_gives_its_prefix(probe):
    stream = pescador.Streamer(probe.finite, 5)
    assert list(stream.iterate(3)) == [0, 1, 2]
    assert probe.pulls == 3
    assert list(stream.iterate(10)) == [0, 1, 2, 3, 4]


def test_active_lifecycle_of_one_iteration():
    stream = pescador.Streamer(count_up, 2)
    it = stream.iterate()
    assert stream.active == 0
    assert next(it) == 0
    assert stream.active == 1
    assert next(it) == 1
    with pytest.raises(StopIteration):
        next(it)
    assert stream.active == 0  # decremented on exhaustion


def test_active_decremented_when_max_iter_is_reached():
    stream = pescador.Streamer(naturals)
    assert list(stream.iterate(max_iter=3)) == [0, 1, 2]
    assert stream.active == 0


def test_concurrent_iterations_are_independent():
    stream = pescador.Streamer(count_up, 4)
    a, b = stream.iterate(), stream.iterate()
    got_a, got_b = [], []
    for _ in range(4):
        got_a.append(next(a))
        assert stream.active >= 1
        got_b.append(next(b))
    assert stream.active == 2
    assert got_a == got_b == [0, 1, 2, 3]
    assert list(a) == []
    assert stream.active == 1
    assert list(b) == []
    assert stream.active == 0


def test_concurrent_iterations_of_a_generator_function_each_call_it(probe):
    stream = pescador.Streamer(probe.finite, 3)
    its = [stream.iterate() for _ in range(4)]
    results = [[] for _ in its]
    for _ in range(3):
        for got, it in zip(results, its, strict=True):
            got.append(next(it))
    assert stream.active == 4
    assert probe.calls == 4
    assert results == [[0, 1, 2]] * 4
    for it in its:
        it.close()
    assert stream.active == 0
    assert probe.finished == 4


def test_close_decrements_active_and_runs_finally(probe):
    stream = pescador.Streamer(probe.infinite)
    it = stream.iterate()
    next(it)
    assert stream.active == 1
    it.close()
    assert stream.active == 0
    assert probe.finished == 1


def test_plain_del_decrements_active_and_runs_finally(probe):
    stream = pescador.Streamer(probe.infinite)
    it = stream.iterate()
    next(it)
    next(it)
    assert stream.active == 1
    del it
    assert stream.active == 0
    assert probe.finished == 1


def test_abandoned_for_loop_releases_the_activation(probe):
    stream = pescador.Streamer(probe.infinite)
    for item in stream.iterate():
        if item == 3:
            break
    gc.collect()
    assert stream.active == 0
    assert probe.finished == 1


def test_exception_in_the_generator_propagates_unchanged(probe):
    stream = pescador.Streamer(probe.failing, 2)
    it = stream.iterate()
    assert next(it) == 0
    assert next(it) == 1
    with pytest.raises(ValueError, match="boom"):
        next(it)
    assert probe.finished == 1
    with pytest.raises(StopIteration):
        next(it)


def test_exception_in_the_generator_ends_the_activation(probe):
    """An iteration whose generator raised is finished: it no longer counts in ``active``.

    (pescador 3.0 decremented the count as the exception left its ``with`` block.)
    """
    stream = pescador.Streamer(probe.failing, 1)
    it = stream.iterate()
    with pytest.raises(ValueError, match="boom"):
        list(it)
    assert stream.active == 0


# --------------------------------------------------------------------------- call and iter


def test_call_is_iterate_or_cycle():
    stream = pescador.Streamer(count_up, 3)
    assert list(stream()) == [0, 1, 2]
    assert list(stream(2)) == [0, 1]
    assert list(stream(max_iter=2)) == [0, 1]
    assert list(stream(5, True)) == [0, 1, 2, 0, 1]
    assert list(stream(max_iter=5, cycle=True)) == [0, 1, 2, 0, 1]
    assert list(stream(None, False)) == [0, 1, 2]


def test_iter_restarts_each_time():
    stream = pescador.Streamer(count_up, 3)
    assert list(stream) == [0, 1, 2]
    assert list(stream) == [0, 1, 2]
    assert [x for x in stream] == [0, 1, 2]
    assert stream.active == 0


def test_iter_counts_as_an_activation(probe):
    stream = pescador.Streamer(probe.infinite)
    it = iter(stream)
    assert next(it) == 0
    assert stream.active == 1
    del it
    assert stream.active == 0
    assert probe.finished == 1


# --------------------------------------------------------------------------- iterator objects


def test_iterate_returns_a_stream_iterator():
    it = pescador.Streamer(count_up, 3).iterate()
    assert isinstance(it, pescador.StreamIterator)
    assert isinstance(it, collections.abc.Iterator)
    assert isinstance(pescador.Streamer(count_up, 3).cycle(), pescador.StreamIterator)
    assert isinstance(pescador.Streamer(count_up, 3)(), pescador.StreamIterator)


def test_iterator_next_and_for_share_one_position():
    it = pescador.Streamer(count_up, 6).iterate()
    assert next(it) == 0
    assert next(it) == 1
    rest = []
    for x in it:
        rest.append(x)
        if x == 3:
            break
    assert rest == [2, 3]
    assert next(it) == 4
    assert list(iter(it)) == [5]
    assert list(it) == []


def test_iter_of_an_iterator_is_an_iterator_on_the_same_position():
    it = pescador.Streamer(count_up, 4).iterate()
    inner = iter(it)
    assert iter(inner) is inner
    assert next(inner) == 0
    assert next(it) == 1
    assert next(inner) == 2


def test_close_is_idempotent_and_next_after_close_stops(probe):
    stream = pescador.Streamer(probe.infinite)
    it = stream.iterate()
    next(it)
    it.close()
    it.close()
    assert stream.active == 0
    assert probe.finished == 1
    with pytest.raises(StopIteration):
        next(it)
    assert list(it) == []
    assert stream.active == 0


def test_close_before_start_never_calls_the_generator(probe):
    stream = pescador.Streamer(probe.infinite)
    it = stream.iterate()
    it.close()
    assert list(it) == []
    assert probe.calls == 0
    assert stream.active == 0


def test_close_after_exhaustion_is_harmless():
    stream = pescador.Streamer(count_up, 2)
    it = stream.iterate()
    assert list(it) == [0, 1]
    it.close()
    it.close()
    assert stream.active == 0


def test_iterator_context_manager_closes(probe):
    stream = pescador.Streamer(probe.infinite)
    with stream.iterate() as it:
        assert isinstance(it, pescador.StreamIterator)
        assert next(it) == 0
        assert stream.active == 1
    assert stream.active == 0
    assert probe.finished == 1
    with pytest.raises(StopIteration):
        next(it)


def test_iterator_context_manager_closes_on_exception(probe):
    stream = pescador.Streamer(probe.infinite)
    with pytest.raises(RuntimeError):
        with stream.iterate(max_iter=10) as it:
            next(it)
            raise RuntimeError
    assert stream.active == 0
    assert probe.finished == 1


def test_items_delivered():
    stream = pescador.Streamer(naturals)
    it = stream.iterate(max_iter=4)
    assert it.items_delivered == 0
    next(it)
    assert it.items_delivered == 1
    assert list(it) == [1, 2, 3]
    assert it.items_delivered == 4
    it.close()
    assert it.items_delivered == 4


def test_items_delivered_counts_across_cycle_passes():
    c = pescador.Streamer(count_up, 3).cycle(max_iter=7)
    assert len(list(c)) == 7
    assert c.items_delivered == 7


def test_items_delivered_after_early_close():
    it = pescador.Streamer(naturals).iterate()
    for _ in range(5):
        next(it)
    it.close()
    assert it.items_delivered == 5


# --------------------------------------------------------------------------- resources


def test_finally_runs_when_max_iter_is_reached(probe):
    stream = pescador.Streamer(probe.infinite)
    for _ in stream.iterate(max_iter=3):
        pass
    assert probe.finished == 1
    assert list(stream(2)) == [0, 1]
    assert probe.finished == 2


def test_finally_runs_when_closed_early(probe):
    stream = pescador.Streamer(probe.finite, 100)
    it = stream.iterate()
    next(it)
    assert probe.finished == 0
    it.close()
    assert probe.finished == 1


def test_finally_runs_when_a_for_loop_over_the_streamer_breaks(probe):
    stream = pescador.Streamer(probe.infinite)
    for item in stream:
        if item == 2:
            break
    assert probe.finished == 1
    assert stream.active == 0


def test_file_opened_by_the_generator_is_closed_promptly(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("".join(f"{i}\n" for i in range(100)))
    handles = []

    def read(filename):
        with open(filename) as handle:
            handles.append(handle)
            for line in handle:
                yield int(line)

    stream = pescador.Streamer(read, path)
    assert list(stream.iterate(max_iter=3)) == [0, 1, 2]
    assert handles[-1].closed
    it = stream.iterate()
    next(it)
    it.close()
    assert handles[-1].closed
    assert list(stream.cycle(max_iter=150))[-1] == 49
    assert all(h.closed for h in handles)
