"""Streamer: what it accepts, its attributes, ``with`` activation, nesting, copies and pickles,
``streamable``, and the :mod:`pescador.testing` conformance checks of a Streamer over a generator
function and over an iterable.

Iterating is in test_iterate.py, cycling in test_cycle.py, and what an activation receives
(the same argument objects, ACTIVATION_RNG) in test_activation.py. Only the public API
(``import pescador``) is used.
"""

from __future__ import annotations

import copy
import functools
import inspect
import pickle

import numpy as np
import pytest

import pescador
from conftest import (
    assert_conforms,
    count_up,
    draws,
    finite_streams,
    letters,
    naturals,
    random_ints,
    state_at,
)
from pescador import ACTIVATION_RNG, StochasticMux, Streamer
from pescador.testing import assert_proportions

# --------------------------------------------------------------------------- construction


def needs_n(n):
    yield from range(n)


def gen_with_defaults(n, size=2, *, k=3):
    yield from range(n)


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


# --------------------------------------------------------------------------- attributes


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


# --------------------------------------------------------------------------- with-activation


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
        # Truncation pulled no item it did not deliver: "c" is still there (3.0 lost it: []).
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
    stream = pescador.Streamer(random_ints, 3)
    with stream as active:
        values = list(active)
    assert len(values) == 3
    assert all(isinstance(v, int) for v in values)


# --------------------------------------------------------------------------- nesting


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


# --------------------------------------------------------------------------- copy, pickle


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


def test_pickle_of_an_activation_rng_streamer():
    stream = pescador.Streamer(random_ints, 3)
    clone = pickle.loads(pickle.dumps(stream))
    assert len(list(clone)) == 3
    assert pickle.loads(pickle.dumps(pescador.ACTIVATION_RNG)) is pescador.ACTIVATION_RNG


def test_streamer_has_no_len_or_eq():
    stream = pescador.Streamer([1, 2])
    with pytest.raises(TypeError):
        len(stream)
    assert stream != pescador.Streamer([1, 2])
    assert stream == stream


# --------------------------------------------------------------------------- streamable


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


# --------------------------------------------------------------------------- conformance
# The pescador.testing checks (restartable, resumable at every position, proportions), run
# through assert_conforms (conftest.py) on Streamers over generator functions and iterables.
# Cycles are checked in test_cycle.py.


def coin_flips(n, rng=ACTIVATION_RNG):
    for _ in range(n):
        yield int(rng.integers(2))


def test_streamer_over_a_generator_function():
    assert_conforms(Streamer(letters, "a", 12), 20)


def test_streamer_over_an_activation_rng_function_records_its_seed():
    stream = Streamer(draws, "a", 30)
    assert_conforms(stream, 40, seeded=False)  # unseeded: fresh entropy per iteration
    state = state_at(stream, 5)
    assert "seed" in state


def test_streamer_over_an_iterable():
    assert_conforms(Streamer(["x", "y", "z"]), 5)
    assert_conforms(Streamer(range(30)), 30)


def test_nested_streamer_with_a_limit_and_cycle():
    inner = Streamer(letters, "a", 5)
    assert_conforms(Streamer(inner, 3), 10)
    assert_conforms(Streamer(inner, 12, True), 20)
    assert_conforms(Streamer(StochasticMux(finite_streams(), 2, 3, random_state=0), 40), 60)


def test_streamer_over_an_activation_rng_function_draws_in_proportion():
    """Independent fair coin flips: P(false failure) <= alpha = 1e-6 (Hoeffding)."""
    shares = assert_proportions(Streamer(coin_flips, 20_000), None, [0.5, 0.5], n=20_000)
    assert set(shares) == {0, 1}
