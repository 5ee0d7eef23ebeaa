"""Tests for pescador.core: Streamer, streamable, the iterator objects and ACTIVATION_RNG.

Covers api.md §3 (Streamer), §4 (streamable) and the Streamer rows of §13, as overridden by
Part A (A1: no deep copies; A6: nothing hangs; A7: no wasted pulls) and docs/compat.md. Only
the public API (``import pescador``) is used.
"""

from __future__ import annotations

import collections.abc
import copy
import functools
import gc
import inspect
import itertools
import pickle
import threading

import numpy as np
import pytest

import pescador

# --------------------------------------------------------------------------- helpers
# Module-level generator functions, so that Streamers of them pickle.


def count_up(n):
    """0, 1, ..., n - 1."""
    yield from range(n)


def naturals():
    """0, 1, 2, ... forever."""
    yield from itertools.count()


def empty_gen():
    return
    yield  # pragma: no cover


def needs_n(n):
    yield from range(n)


def gen_with_defaults(n, size=2, *, k=3):
    yield from range(n)


def draws(n, rng=pescador.ACTIVATION_RNG):
    """n random integers from the activation's generator."""
    for _ in range(n):
        yield int(rng.integers(2**62))


def give_rng(rng=pescador.ACTIVATION_RNG):
    yield rng


def give_rng_kwonly(*, rng=pescador.ACTIVATION_RNG):
    yield rng


def give_two_rngs(first=pescador.ACTIVATION_RNG, second=pescador.ACTIVATION_RNG):
    yield first
    yield second


def rs_draws(rs, n):
    for _ in range(n):
        yield int(rs.randint(2**30))


def gen_draws(generator, n):
    for _ in range(n):
        yield int(generator.integers(2**30))


class Probe:
    """Records how a generator function is used: calls, pulls, and finally-blocks run."""

    def __init__(self):
        self.calls = 0
        self.pulls = 0
        self.finished = 0
        self.received = []

    def infinite(self, *args, **kwargs):
        self.calls += 1
        self.received.append((args, kwargs))
        try:
            for i in itertools.count():
                self.pulls += 1
                yield i
        finally:
            self.finished += 1

    def finite(self, n):
        self.calls += 1
        try:
            for i in range(n):
                self.pulls += 1
                yield i
        finally:
            self.finished += 1

    def failing(self, n_good):
        self.calls += 1
        try:
            for i in range(n_good):
                self.pulls += 1
                yield i
            raise ValueError("boom")
        finally:
            self.finished += 1


@pytest.fixture
def probe():
    return Probe()


@pytest.fixture
def global_rng():
    """Save and restore numpy's global RNG around a test that seeds it."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


class Iterable3:
    """An object with ``__iter__`` only."""

    def __iter__(self):
        return iter([7, 8, 9])


class WithGenMethod:
    def __init__(self, n):
        self.n = n

    def items(self):
        yield from range(self.n)


class NoDeepCopy:
    """An iterable that refuses to be deep-copied (like a file or an h5py handle)."""

    def __iter__(self):
        return iter("xyz")

    def __deepcopy__(self, memo):
        raise TypeError("cannot deep-copy this")

    def __reduce__(self):
        raise TypeError("cannot pickle this")


# --------------------------------------------------------------------------- §3.1 construction

ACCEPTED = [
    pytest.param(lambda: pescador.Streamer(count_up, 3), [0, 1, 2], id="generator-function"),
    pytest.param(lambda: pescador.Streamer([1, 2, 3]), [1, 2, 3], id="list"),
    pytest.param(lambda: pescador.Streamer((1, 2)), [1, 2], id="tuple"),
    pytest.param(lambda: pescador.Streamer("abc"), ["a", "b", "c"], id="str"),
    pytest.param(lambda: pescador.Streamer(range(4)), [0, 1, 2, 3], id="range"),
    pytest.param(lambda: pescador.Streamer({"a": 1, "b": 2}), ["a", "b"], id="dict"),
    pytest.param(lambda: pescador.Streamer({5}), [5], id="set"),
    pytest.param(lambda: pescador.Streamer(np.arange(3)), [0, 1, 2], id="ndarray"),
    pytest.param(lambda: pescador.Streamer(iter([4, 5])), [4, 5], id="list-iterator"),
    pytest.param(lambda: pescador.Streamer(x for x in [6, 7]), [6, 7], id="generator-object"),
    pytest.param(lambda: pescador.Streamer(Iterable3()), [7, 8, 9], id="object-with-iter"),
    pytest.param(lambda: pescador.Streamer(functools.partial(count_up, 2)), [0, 1], id="partial"),
    pytest.param(lambda: pescador.Streamer(WithGenMethod(2).items), [0, 1], id="bound-method"),
    pytest.param(lambda: pescador.Streamer(pescador.Streamer("ab")), ["a", "b"], id="streamer"),
    pytest.param(
        lambda: pescador.Streamer(
            pescador.ChainMux([pescador.Streamer("ab"), pescador.Streamer("c")])
        ),
        ["a", "b", "c"],
        id="mux",
    ),
    pytest.param(
        lambda: pescador.Streamer(NoDeepCopy()), ["x", "y", "z"], id="uncopyable-iterable"
    ),
]


@pytest.mark.parametrize(("make", "expected"), ACCEPTED)
def test_accepted_streamer_values(make, expected):
    stream = make()
    assert isinstance(stream, pescador.Streamer)
    assert [x.item() if isinstance(x, np.generic) else x for x in stream] == expected


def _plain_function():
    return iter([1])


class NotIterableClass:
    def __iter__(self):
        return iter([1])


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(1, id="int"),
        pytest.param(None, id="None"),
        pytest.param(2.5, id="float"),
        pytest.param(lambda: iter([1]), id="lambda-returning-iterator"),
        pytest.param(_plain_function, id="plain-function"),
        pytest.param(NotIterableClass, id="class-object"),
        pytest.param(pescador.streamable(count_up), id="streamable-function"),
    ],
)
def test_rejected_streamer_values_raise_at_construction(bad):
    with pytest.raises(pescador.PescadorError, match="must be an iterable or callable"):
        pescador.Streamer(bad)


class CallableIterable:
    def __iter__(self):
        return iter("it")

    def __call__(self, *args, **kwargs):
        return iter("call")


def test_callability_wins_over_iterability():
    assert list(pescador.Streamer(CallableIterable())) == ["c", "a", "l", "l"]


def test_core_exports_pescador_error():
    assert pescador.core.PescadorError is pescador.PescadorError
    assert pescador.core.Streamer is pescador.Streamer
    assert pescador.core.streamable is pescador.streamable


def test_args_and_kwargs_are_stored_unchanged():
    a, b = [1], {"x": 2}
    stream = pescador.Streamer(count_up, a, key=b)
    assert stream.args == (a,)
    assert stream.args[0] is a
    assert stream.kwargs == {"key": b}
    assert stream.kwargs["key"] is b
    assert stream.streamer is count_up


def test_args_are_ignored_for_an_iterable():
    stream = pescador.Streamer([1, 2], 5, cycle=True)
    assert list(stream) == [1, 2]
    assert list(stream.iterate()) == [1, 2]


def test_wrong_generator_arguments_fail_at_first_next_not_construction():
    stream = pescador.Streamer(needs_n)  # missing n: not detected here
    it = stream.iterate()  # nor here
    assert stream.active == 0
    with pytest.raises(TypeError):
        next(it)
    assert stream.active == 0  # a failed activation does not count


def test_construction_and_iterate_do_not_call_the_generator_function(probe):
    stream = pescador.Streamer(probe.infinite)
    it = stream.iterate(max_iter=3)
    assert probe.calls == 0
    assert stream.active == 0
    assert next(it) == 0
    assert probe.calls == 1
    assert stream.active == 1


# --------------------------------------------------------------------------- §3.2 attributes


def test_initial_attributes():
    stream = pescador.Streamer(count_up, 3)
    assert stream.active_count_ == 0
    assert stream.active == 0
    assert type(stream.active) is int
    assert stream.stream_ is None
    assert stream.is_activated_copy is False


def test_active_is_an_int_count():
    stream = pescador.Streamer(naturals)
    its = [stream.iterate() for _ in range(3)]
    for i, it in enumerate(its, start=1):
        next(it)
        assert stream.active == i
        assert type(stream.active) is int
    for i, it in enumerate(its, start=1):
        it.close()
        assert stream.active == 3 - i


# --------------------------------------------------------------------------- A1 no deep copies


def test_generator_receives_the_same_argument_objects_every_activation(probe):
    arg, kwarg = [1, 2], {"k": np.zeros(3)}
    stream = pescador.Streamer(probe.infinite, arg, option=kwarg)
    for _ in range(3):
        assert list(stream.iterate(max_iter=2)) == [0, 1]
    assert probe.calls == 3
    for args, kwargs in probe.received:
        assert args[0] is arg
        assert kwargs["option"] is kwarg


def test_mutating_an_argument_inside_the_generator_is_visible_outside():
    def appender(log):
        log.append("started")
        yield len(log)

    log = []
    stream = pescador.Streamer(appender, log)
    assert list(stream) == [1]
    assert list(stream) == [2]
    assert log == ["started", "started"]


def test_random_state_argument_advances_across_activations():
    rs = np.random.RandomState(0)
    stream = pescador.Streamer(rs_draws, rs, 4)
    first, second = list(stream), list(stream)
    assert first != second
    reference = np.random.RandomState(0)
    assert first + second == [int(reference.randint(2**30)) for _ in range(8)]


def test_generator_argument_advances_across_activations():
    rng = np.random.default_rng(3)
    stream = pescador.Streamer(gen_draws, rng, 4)
    first, second = list(stream), list(stream)
    assert first != second
    reference = np.random.default_rng(3)
    assert first + second == [int(reference.integers(2**30)) for _ in range(8)]


def test_open_file_argument_works(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("a\nb\nc\n")

    def read_lines(handle):
        handle.seek(0)
        for line in handle:
            yield line.strip()

    with open(path) as handle:
        stream = pescador.Streamer(read_lines, handle)
        assert list(stream) == ["a", "b", "c"]
        assert list(stream) == ["a", "b", "c"]
        assert list(stream.cycle(max_iter=5)) == ["a", "b", "c", "a", "b"]


def test_lock_argument_works():
    lock = threading.Lock()
    seen = []

    def guarded(guard, n):
        seen.append(guard)
        for i in range(n):
            with guard:
                value = i
            yield value

    stream = pescador.Streamer(guarded, lock, 3)
    assert list(stream) == [0, 1, 2]
    assert list(stream.iterate(max_iter=2)) == [0, 1]
    assert all(guard is lock for guard in seen)
    with stream as active:
        assert list(active) == [0, 1, 2]


def test_generator_object_argument_is_shared_not_copied():
    def drain(source):
        yield from source

    source = (i for i in range(3))
    stream = pescador.Streamer(drain, source)
    assert list(stream) == [0, 1, 2]
    assert list(stream) == []  # the one-shot argument was consumed, not copied


@pytest.mark.parametrize(
    "make",
    [lambda: iter([1, 2, 3]), lambda: (x for x in [1, 2, 3])],
    ids=["list-iterator", "generator-object"],
)
def test_one_shot_iterator_is_consumed_once(make):
    stream = pescador.Streamer(make())
    assert list(stream) == [1, 2, 3]
    assert list(stream) == []
    assert list(stream.iterate()) == []
    assert stream.active == 0


def test_one_shot_iterator_shared_between_concurrent_iterations():
    stream = pescador.Streamer(iter(range(6)))
    a, b = stream.iterate(), stream.iterate()
    got = [next(a), next(b), next(a), next(b)]
    assert got == [0, 1, 2, 3]


def test_cycle_of_a_one_shot_iterator_ends_after_its_items():
    stream = pescador.Streamer(iter([1, 2]))
    assert list(stream.cycle()) == [1, 2]


def test_mutations_of_a_wrapped_list_are_visible():
    data = [1, 2]
    stream = pescador.Streamer(data)
    assert list(stream) == [1, 2]
    data.append(3)
    assert list(stream) == [1, 2, 3]


def test_large_array_argument_is_passed_by_reference():
    big = np.zeros(10_000_000, dtype=np.uint8)

    def first_byte_address(array):
        yield array.__array_interface__["data"][0]

    stream = pescador.Streamer(first_byte_address, big)
    address = big.__array_interface__["data"][0]
    assert list(stream) == [address]
    assert list(stream) == [address]


# --------------------------------------------------------------------------- §3.3 with-activation


def test_context_manager_activation():
    stream = pescador.Streamer(count_up, 3)
    with stream as active:
        assert active is not stream
        assert active.is_activated_copy is True
        assert stream.is_activated_copy is False
        assert stream.stream_ is None
        assert active.stream_ is not None
        assert stream.active == 1
        assert active.active == 0
        assert active.streamer == stream.streamer
        assert active.args == stream.args
        assert active.kwargs == stream.kwargs
        assert list(active) == [0, 1, 2]
        assert list(active) == []  # iterating the activated copy consumes its stream_
    assert stream.active == 0


def test_context_manager_activation_of_a_list():
    stream = pescador.Streamer(["a", "b", "c"])
    with stream as active:
        assert active.streamer == stream.streamer
        assert list(active.iterate(max_iter=2)) == ["a", "b"]
        # A7: truncation pulled no extra item, so "c" is still there (3.0 lost it: []).
        assert list(active) == ["c"]
    assert stream.active == 0


def test_nested_with_on_an_activated_copy_returns_it():
    stream = pescador.Streamer(count_up, 3)
    with stream as active:
        with active as again:
            assert again is active
            assert stream.active == 1
            assert active.active == 0
        assert stream.active == 1
        assert active.active == 0
    assert stream.active == 0


def test_concurrent_with_activations_count():
    stream = pescador.Streamer(count_up, 3)
    with stream as a, stream as b:
        assert a is not b
        assert stream.active == 2
        assert list(a) == list(b) == [0, 1, 2]
    assert stream.active == 0


def test_exit_below_zero_raises():
    stream = pescador.Streamer(count_up, 3)
    with pytest.raises(pescador.PescadorError, match="Active stream count passed below 0"):
        stream.__exit__(None, None, None)
    assert stream.active == -1


def test_exit_does_not_suppress_exceptions():
    stream = pescador.Streamer(count_up, 3)
    with pytest.raises(KeyError):
        with stream:
            raise KeyError("inside")
    assert stream.active == 0


def test_failed_activation_does_not_count():
    stream = pescador.Streamer(needs_n)  # wrong arguments
    with pytest.raises(TypeError):
        with stream:
            pass  # pragma: no cover
    assert stream.active == 0


def test_with_activation_of_a_generator_function_with_activation_rng():
    stream = pescador.Streamer(draws, 3)
    with stream as active:
        values = list(active)
    assert len(values) == 3
    assert all(isinstance(v, int) for v in values)


# --------------------------------------------------------------------------- §3.5 iterate


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
    assert probe.pulls == expected  # A7: never an extra pull
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


# --------------------------------------------------------------------------- §3.6 cycle


def test_cycle_restarts_the_stream():
    stream = pescador.Streamer(count_up, 3)
    assert list(stream.cycle(max_iter=8)) == [0, 1, 2, 0, 1, 2, 0, 1]
    assert list(itertools.islice(stream.cycle(), 7)) == [0, 1, 2, 0, 1, 2, 0]


def test_cycle_calls_the_generator_function_once_per_pass(probe):
    stream = pescador.Streamer(probe.finite, 3)
    assert list(stream.cycle(max_iter=7)) == [0, 1, 2, 0, 1, 2, 0]
    assert probe.calls == 3
    assert probe.pulls == 7
    assert probe.finished == 3
    assert stream.active == 0


@pytest.mark.parametrize("max_iter", [None, 5])
def test_cycle_of_an_empty_stream_ends(max_iter):
    assert list(pescador.Streamer(empty_gen).cycle(max_iter)) == []
    assert list(pescador.Streamer([]).cycle(max_iter)) == []
    assert list(pescador.Streamer([])(max_iter, cycle=True)) == []


def test_cycle_ends_after_a_pass_that_yields_nothing():
    passes = []

    def shrinking():
        passes.append(None)
        yield from range(3 - len(passes))

    assert list(pescador.Streamer(shrinking).cycle()) == [0, 1, 0]


def test_cycle_zero_pulls_nothing(probe):
    stream = pescador.Streamer(probe.infinite)
    assert list(stream.cycle(0)) == []
    assert probe.pulls == 0
    assert stream.active == 0


def test_cycle_counts_one_activation_at_a_time(probe):
    stream = pescador.Streamer(probe.finite, 2)
    c = stream.cycle()
    for _ in range(5):
        next(c)
        assert stream.active == 1


def test_cycle_close_ends_the_running_pass(probe):
    stream = pescador.Streamer(probe.infinite)
    c = stream.cycle()
    next(c)
    assert stream.active == 1
    c.close()
    assert stream.active == 0
    assert probe.finished == 1
    with pytest.raises(StopIteration):
        next(c)


def test_dropped_cycle_releases_its_pass(probe):
    stream = pescador.Streamer(probe.infinite)
    c = stream.cycle()
    next(c)
    del c
    gc.collect()
    assert stream.active == 0
    assert probe.finished == 1


def test_cycle_max_iter_never_pulls_an_extra_item(probe):
    stream = pescador.Streamer(probe.finite, 3)
    assert len(list(stream.cycle(max_iter=4))) == 4
    assert probe.pulls == 4
    assert probe.finished == 2


# --------------------------------------------------------------------------- §3.7 call and iter


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


# --------------------------------------------------------------------------- §3.4 nesting


def test_streamer_of_a_streamer_with_max_iter():
    inner = pescador.Streamer(count_up, 5)
    outer = pescador.Streamer(inner, 3)
    assert list(outer) == [0, 1, 2]
    assert list(outer) == [0, 1, 2]
    assert list(pescador.Streamer(inner, max_iter=2)) == [0, 1]
    assert list(pescador.Streamer(inner)) == [0, 1, 2, 3, 4]


def test_streamer_of_a_streamer_cycles():
    inner = pescador.Streamer(count_up, 5)
    assert list(pescador.Streamer(inner, 12, True)) == [0, 1, 2, 3, 4] * 2 + [0, 1]
    assert list(pescador.Streamer(inner, max_iter=7, cycle=True)) == [0, 1, 2, 3, 4, 0, 1]
    assert list(pescador.Streamer(inner, 0, True)) == []


def test_streamer_of_a_streamer_pulls_exactly(probe):
    inner = pescador.Streamer(probe.infinite)
    assert list(pescador.Streamer(inner, 3)) == [0, 1, 2]
    assert probe.pulls == 3
    assert probe.finished == 1  # released as soon as the outer iteration ended
    assert list(pescador.Streamer(inner, 4, True)) == [0, 1, 2, 3]
    assert probe.pulls == 7
    assert probe.finished == 2


def test_streamer_of_a_streamer_counts_only_the_outer():
    inner = pescador.Streamer(naturals)
    outer = pescador.Streamer(inner, 10)
    it = outer.iterate()
    next(it)
    assert outer.active == 1
    assert inner.active == 0  # docs/compat.md: a wrapping Streamer does not count in inner
    it.close()
    assert outer.active == 0
    assert inner.active == 0


def test_streamer_of_a_mux():
    mux = pescador.ShuffledMux([pescador.Streamer("ab")], random_state=0)
    wrapped = pescador.Streamer(mux, 5)
    assert list(wrapped) == ["a", "b", "a", "b", "a"]
    assert list(wrapped) == ["a", "b", "a", "b", "a"]
    assert list(pescador.Streamer(mux, max_iter=3)) == ["a", "b", "a"]


def test_streamer_of_a_mux_pulls_exactly_and_releases(probe):
    mux = pescador.ShuffledMux(
        [pescador.Streamer(probe.infinite), pescador.Streamer(probe.infinite)], random_state=1
    )
    assert len(list(pescador.Streamer(mux, 5))) == 5
    assert probe.pulls == 5
    assert probe.finished == probe.calls  # every child activation was closed
    assert mux.active == 0


def test_streamers_inside_a_mux_do_not_count():
    a, b = pescador.Streamer(naturals), pescador.Streamer(naturals)
    mux = pescador.ChainMux([a, b])
    it = mux.iterate()
    next(it)
    assert mux.active == 1
    assert a.active == b.active == 0
    it.close()
    assert mux.active == 0


def test_streamer_accepts_the_maps():
    items = pescador.Streamer([{"X": np.full(2, i)} for i in range(4)])
    batches = pescador.Streamer(pescador.buffer_stream, items, 2)
    got = [b["X"].tolist() for b in batches]
    assert got == [[[0, 0], [1, 1]], [[2, 2], [3, 3]]]
    assert len(list(batches)) == 2


# --------------------------------------------------------------------------- §3.8 copy, pickle


def test_shallow_copy_shares_everything():
    streamer, kwarg = [1, 2, 3], {"k": [1]}
    stream = pescador.Streamer(streamer, 1, kw=kwarg)
    clone = copy.copy(stream)
    assert clone is not stream
    assert clone.streamer is stream.streamer
    assert clone.args is stream.args
    assert clone.kwargs is stream.kwargs
    assert clone.active_count_ == stream.active_count_
    assert clone.stream_ is stream.stream_
    assert list(clone) == [1, 2, 3]


def test_shallow_copy_of_an_activated_copy_shares_its_stream():
    stream = pescador.Streamer(count_up, 3)
    with stream as active:
        clone = copy.copy(active)
        assert clone.stream_ is active.stream_
        assert clone.is_activated_copy


def test_deep_copy():
    stream = pescador.Streamer([1, 2, 3], 1, 2, k=[5])
    clone = copy.deepcopy(stream)
    assert clone.streamer == stream.streamer
    assert clone.streamer is not stream.streamer
    assert clone.args is stream.args  # an all-immutable tuple keeps its identity
    assert clone.kwargs == stream.kwargs
    assert clone.kwargs is not stream.kwargs
    assert clone.active_count_ == stream.active_count_
    assert clone.stream_ == stream.stream_
    assert list(clone) == [1, 2, 3]


def test_deep_copy_keeps_the_active_count():
    stream = pescador.Streamer([1, 2, 3])
    with stream:
        clone = copy.deepcopy(stream)
        assert clone.active_count_ == 1
    assert stream.active_count_ == 0


def test_deep_copy_of_a_generator_streamer():
    arg = [3]
    stream = pescador.Streamer(gen_with_defaults, 3, 2, k=arg)
    clone = copy.deepcopy(stream)
    assert clone.streamer is stream.streamer  # functions deep-copy to themselves
    assert clone.kwargs["k"] == arg
    assert clone.kwargs["k"] is not arg
    assert list(clone) == list(stream) == [0, 1, 2]


@pytest.mark.parametrize(
    "make",
    [
        lambda: pescador.Streamer(count_up, 4),
        lambda: pescador.Streamer(gen_with_defaults, 4, size=3, k=1),
        lambda: pescador.Streamer([0, 1, 2, 3]),
        lambda: pescador.Streamer(range(4)),
        lambda: pescador.Streamer(pescador.Streamer(count_up, 10), 4),
        lambda: pescador.Streamer(pescador.ChainMux([pescador.Streamer(count_up, 4)])),
        lambda: pescador.Streamer(
            pescador.ShuffledMux([pescador.Streamer(count_up, 4)], random_state=None), 4, True
        ),
    ],
    ids=["gen", "gen-kwargs", "list", "range", "nested", "mux", "unseeded-mux-cycle"],
)
def test_pickle_round_trip(make):
    stream = make()
    clone = pickle.loads(pickle.dumps(stream))
    assert type(clone) is type(stream)
    assert clone.args == stream.args
    assert list(clone) == list(stream) == [0, 1, 2, 3]


def test_pickle_with_random_state_argument_replays_from_the_pickled_state():
    stream = pescador.Streamer(rs_draws, np.random.RandomState(5), 3)
    data = pickle.dumps(stream)
    first = list(pickle.loads(data))
    assert first == list(pickle.loads(data))
    assert first == list(stream)


def test_pickle_of_an_activation_rng_streamer():
    stream = pescador.Streamer(draws, 3)
    clone = pickle.loads(pickle.dumps(stream))
    assert len(list(clone)) == 3
    assert pickle.loads(pickle.dumps(pescador.ACTIVATION_RNG)) is pescador.ACTIVATION_RNG


def test_streamer_has_no_len_or_eq():
    stream = pescador.Streamer([1, 2])
    with pytest.raises(TypeError):
        len(stream)
    assert stream != pescador.Streamer([1, 2])
    assert stream == stream


# --------------------------------------------------------------------------- §4 streamable


def test_streamable_returns_a_streamer():
    original = gen_with_defaults
    decorated = pescador.streamable(original)
    stream = decorated(4)
    assert isinstance(stream, pescador.Streamer)
    assert stream.streamer is original
    assert list(stream) == [0, 1, 2, 3]
    assert list(stream) == [0, 1, 2, 3]


def test_streamable_keeps_name_doc_and_signature():
    def documented(a, b=1):
        """Some documentation."""
        yield a + b

    decorated = pescador.streamable(documented)
    assert decorated.__name__ == "documented"
    assert decorated.__doc__ == "Some documentation."
    assert inspect.signature(decorated) == inspect.signature(documented)


def test_streamable_binds_and_fills_defaults():
    decorated = pescador.streamable(gen_with_defaults)
    stream = decorated(2)
    assert stream.args == (2, 2)
    assert stream.kwargs == {"k": 3}
    stream = decorated(n=4, k=1)
    assert stream.args == (4, 2)
    assert stream.kwargs == {"k": 1}
    stream = decorated(1, 5)
    assert stream.args == (1, 5)
    assert stream.kwargs == {"k": 3}


def test_streamable_var_args():
    @pescador.streamable
    def flexible(*values, **options):
        yield from values
        yield from sorted(options)

    stream = flexible(1, 2, b=0, a=0)
    assert stream.args == (1, 2)
    assert stream.kwargs == {"b": 0, "a": 0}
    assert list(stream) == [1, 2, "a", "b"]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, 2, 3), {}), ((1,), {"bogus": 2}), ((), {"max_iter": 3}), ((1,), {"n": 1})],
    ids=["missing", "too-many", "unknown-kw", "max_iter", "duplicate"],
)
def test_streamable_wrong_arguments_raise_at_call(args, kwargs):
    decorated = pescador.streamable(gen_with_defaults)
    with pytest.raises(TypeError):
        decorated(*args, **kwargs)


def test_streamable_decorator_syntax():
    @pescador.streamable
    def letters(word, times=1):
        for _ in range(times):
            yield from word

    stream = letters("ab", times=2)
    assert stream.args == ("ab", 2)
    assert "".join(stream) == "abab"
    with pytest.raises(pescador.PescadorError):
        pescador.Streamer(letters)


def test_streamable_with_activation_rng_default_gets_a_generator():
    """A ``@streamable`` function whose parameter defaults to ACTIVATION_RNG gets a generator.

    ``streamable`` fills defaults in, so the placeholder itself reaches the Streamer's args;
    it must still be replaced at activation, as for ``Streamer(func, ...)``.
    """
    decorated = pescador.streamable(draws)
    values = list(decorated(3))
    assert len(values) == 3
    assert all(isinstance(v, int) for v in values)
    (rng,) = list(pescador.streamable(give_rng)())
    assert isinstance(rng, np.random.Generator)


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


# --------------------------------------------------------------------------- ACTIVATION_RNG


def test_activation_rng_is_injected():
    (rng,) = list(pescador.Streamer(give_rng))
    assert isinstance(rng, np.random.Generator)
    (rng,) = list(pescador.Streamer(give_rng_kwonly))
    assert isinstance(rng, np.random.Generator)
    values = list(pescador.Streamer(draws, 5))
    assert len(values) == 5
    assert len(set(values)) == 5


def test_activation_rng_not_injected_when_supplied_positionally():
    mine = np.random.default_rng(0)
    assert list(pescador.Streamer(give_rng, mine)) == [mine]
    expected = [int(np.random.default_rng(1).integers(2**62))]
    assert list(pescador.Streamer(draws, 1, np.random.default_rng(1))) == expected


def test_activation_rng_not_injected_when_supplied_by_keyword():
    mine = np.random.default_rng(0)
    assert list(pescador.Streamer(give_rng, rng=mine)) == [mine]
    assert list(pescador.Streamer(give_rng_kwonly, rng=mine)) == [mine]
    assert list(pescador.Streamer(draws, n=1, rng=mine)) != []


def test_activation_rng_several_parameters_are_independent():
    first, second = list(pescador.Streamer(give_two_rngs))
    assert isinstance(first, np.random.Generator)
    assert isinstance(second, np.random.Generator)
    assert first is not second
    assert first.integers(2**62, size=4).tolist() != second.integers(2**62, size=4).tolist()
    mine = np.random.default_rng(0)
    first, second = list(pescador.Streamer(give_two_rngs, second=mine))
    assert isinstance(first, np.random.Generator)
    assert second is mine


def test_activation_rng_differs_across_unseeded_activations():
    stream = pescador.Streamer(draws, 4)
    results = {tuple(stream) for _ in range(5)}
    assert len(results) == 5


def test_activation_rng_reproducible_under_global_seed(global_rng):
    stream = pescador.Streamer(draws, 4)
    np.random.seed(1234)
    first = [list(stream), list(stream)]
    np.random.seed(1234)
    second = [list(stream), list(stream)]
    assert first == second
    assert first[0] != first[1]


@pytest.mark.parametrize(
    "make_mux",
    [
        lambda streams, seed: pescador.ShuffledMux(streams, random_state=seed),
        lambda streams, seed: pescador.ChainMux(streams, random_state=seed),
        lambda streams, seed: pescador.RoundRobinMux(streams, random_state=seed),
        lambda streams, seed: pescador.StochasticMux(streams, 2, 3, random_state=seed),
    ],
    ids=["shuffled", "chain", "roundrobin", "stochastic"],
)
def test_activation_rng_reproducible_under_a_seeded_mux(make_mux):
    streams = [pescador.Streamer(draws, 6), pescador.Streamer(draws, 6)]
    mux = make_mux(streams, 11)
    first = list(mux.iterate(max_iter=12))
    assert len(first) == 12
    assert first == list(mux.iterate(max_iter=12))
    assert first == list(make_mux(streams, 11).iterate(max_iter=12))
    assert first != list(make_mux(streams, 12).iterate(max_iter=12))


def test_activation_rng_differs_across_activations_inside_a_seeded_mux():
    stream = pescador.Streamer(draws, 3)
    items = list(pescador.ChainMux([stream, stream], random_state=0))
    assert len(items) == 6
    assert items[:3] != items[3:]
    cycled = list(pescador.ChainMux([stream], mode="cycle", random_state=0).iterate(9))
    assert len({tuple(cycled[i : i + 3]) for i in (0, 3, 6)}) == 3


def test_activation_rng_unseeded_mux_reproducible_under_global_seed(global_rng):
    mux = pescador.ShuffledMux([pescador.Streamer(draws, 5), pescador.Streamer(draws, 5)])
    np.random.seed(99)
    first = list(mux.iterate(max_iter=8))
    second = list(mux.iterate(max_iter=8))
    np.random.seed(99)
    assert list(mux.iterate(max_iter=8)) == first
    assert list(mux.iterate(max_iter=8)) == second
    assert first != second


def test_activation_rng_through_a_wrapping_streamer():
    inner = pescador.Streamer(draws, 10)
    values = list(pescador.Streamer(inner, 3))
    assert len(values) == 3
    mux = pescador.ChainMux([pescador.Streamer(inner, 3)], random_state=4)
    assert list(mux) == list(mux)


def test_activation_rng_placeholder_used_directly():
    with pytest.raises(AttributeError, match="placeholder"):
        pescador.ACTIVATION_RNG.integers(3)
    with pytest.raises(AttributeError, match="ACTIVATION_RNG"):
        next(draws(2))
    assert repr(pescador.ACTIVATION_RNG) == "pescador.ACTIVATION_RNG"
    assert pescador.core.ACTIVATION_RNG is pescador.ACTIVATION_RNG
