"""Property-based tests (hypothesis) of the structural guarantees of Streamer.

No item is pulled from a source and thrown away, and nothing hangs:

* ``iterate(max_iter=n)`` on an infinite stream yields exactly the first ``ceil(n)`` items and
  pulls exactly that many from the generator;
* ``iterate(max_iter)`` of a finite stream is the prefix of ``list(source)``;
* ``cycle(max_iter=m)`` is the source repeated and truncated to ``m`` (and ends if it is empty);
* concurrent iterations, interleaved in any order, each see the whole sequence, and ``active``
  counts the started, unfinished ones.
"""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

import pescador
from conftest import Probe

SETTINGS = settings(max_examples=150, deadline=None)

ITEMS = st.lists(st.integers(-1000, 1000), max_size=40)
MAX_ITER = st.none() | st.integers(-5, 100)


def prefix(items, max_iter):
    if max_iter is None:
        return list(items)
    return list(items)[: max(0, math.ceil(max_iter))]


@SETTINGS
@given(n=st.integers(0, 500))
def test_max_iter_on_an_infinite_stream_yields_and_pulls_exactly_n(n):
    counter = Probe()
    stream = pescador.Streamer(counter.infinite)
    assert list(stream.iterate(max_iter=n)) == list(range(n))
    assert counter.pulls == n
    assert counter.finished == counter.calls <= 1
    assert stream.active == 0


@SETTINGS
@given(n=st.floats(-10, 300, allow_nan=False))
def test_float_max_iter_yields_and_pulls_its_ceiling(n):
    counter = Probe()
    expected = max(0, math.ceil(n))
    assert len(list(pescador.Streamer(counter.infinite).iterate(n))) == expected
    assert counter.pulls == expected


@SETTINGS
@given(n=st.integers(0, 200), outer=st.integers(0, 200))
def test_nested_streamer_pulls_exactly_the_smaller_limit(n, outer):
    counter = Probe()
    inner = pescador.Streamer(counter.infinite)
    wrapped = pescador.Streamer(inner, n)
    assert list(wrapped.iterate(max_iter=outer)) == list(range(min(n, outer)))
    assert counter.pulls == min(n, outer)


@SETTINGS
@given(items=ITEMS, max_iter=MAX_ITER)
def test_iterate_of_a_finite_list_is_a_prefix(items, max_iter):
    stream = pescador.Streamer(items)
    assert list(stream.iterate(max_iter)) == prefix(items, max_iter)
    assert list(stream(max_iter)) == prefix(items, max_iter)
    assert list(stream) == items  # restartable
    assert stream.active == 0


@SETTINGS
@given(items=ITEMS, max_iter=MAX_ITER)
def test_iterate_of_a_finite_generator_is_a_prefix_without_extra_pulls(items, max_iter):
    counter = Probe()
    stream = pescador.Streamer(counter.over, items)
    expected = prefix(items, max_iter)
    assert list(stream.iterate(max_iter)) == expected
    assert counter.pulls == len(expected)
    assert counter.finished == counter.calls
    assert stream.active == 0


@SETTINGS
@given(items=ITEMS, m=st.integers(0, 200))
def test_cycle_is_the_source_repeated_and_truncated(items, m):
    counter = Probe()
    stream = pescador.Streamer(counter.over, items)
    got = list(stream.cycle(max_iter=m))
    if items:
        repeats = m // len(items) + 1
        assert got == (items * repeats)[:m]
    else:
        assert got == []  # cycling an empty stream ends (nothing hangs)
    assert counter.pulls == len(got)
    assert list(stream(m, cycle=True)) == got
    assert list(pescador.Streamer(items).cycle(m)) == got
    assert stream.active == 0


@SETTINGS
@given(items=ITEMS.filter(bool), m=st.integers(0, 100))
def test_unbounded_cycle_prefix(items, m):
    got = list(itertools.islice(pescador.Streamer(items).cycle(), m))
    assert got == (items * (m // len(items) + 1))[:m]


@SETTINGS
@given(
    items=ITEMS,
    n_iterators=st.integers(1, 5),
    schedule=st.lists(st.integers(0, 4), max_size=120),
    use_list=st.booleans(),
)
def test_interleaved_iterations_each_see_the_whole_sequence(
    items, n_iterators, schedule, use_list
):
    stream = pescador.Streamer(items) if use_list else pescador.Streamer(Probe().over, items)
    iterators = [stream.iterate() for _ in range(n_iterators)]
    seen = [[] for _ in iterators]
    started, finished = set(), set()
    for k in schedule:
        k %= n_iterators
        if k in finished:
            continue
        started.add(k)
        try:
            seen[k].append(next(iterators[k]))
        except StopIteration:
            finished.add(k)
        assert stream.active == len(started - finished)
    for k, it in enumerate(iterators):
        started.add(k)
        seen[k].extend(it)
        finished.add(k)
        assert stream.active == len(started - finished)
    assert all(s == items for s in seen)
    assert stream.active == 0


@SETTINGS
@given(items=ITEMS, n_iterators=st.integers(1, 4), stop_at=st.integers(0, 40))
def test_closing_interleaved_iterations_releases_each(items, n_iterators, stop_at):
    counter = Probe()
    stream = pescador.Streamer(counter.over, items)
    iterators = [stream.iterate() for _ in range(n_iterators)]
    for it in iterators:
        for _ in itertools.islice(it, stop_at):
            pass
    for it in iterators:
        it.close()
    assert stream.active == 0
    assert counter.finished == counter.calls
