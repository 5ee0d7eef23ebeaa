"""What each activation of a Streamer receives: the *same* argument objects, never copies, and a
fresh numpy Generator for each parameter that defaults to ACTIVATION_RNG.

Activation does not copy: a copy per activation was slow, broke arguments that cannot be copied
(open files, locks) and made seeded RNG arguments replay. So a ``RandomState`` argument advances
across activations, a one-shot iterator is consumed once, and mutations are visible.
"""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest

import pescador
from conftest import random_ints

# --------------------------------------------------------------------------- sources


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


# ------------------------------------------------------------------- arguments: shared, not copied


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


def test_pickle_with_random_state_argument_replays_from_the_pickled_state():
    stream = pescador.Streamer(rs_draws, np.random.RandomState(5), 3)
    data = pickle.dumps(stream)
    first = list(pickle.loads(data))
    assert first == list(pickle.loads(data))
    assert first == list(stream)


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


# --------------------------------------------------------------------------- ACTIVATION_RNG


def test_activation_rng_is_injected():
    (rng,) = list(pescador.Streamer(give_rng))
    assert isinstance(rng, np.random.Generator)
    (rng,) = list(pescador.Streamer(give_rng_kwonly))
    assert isinstance(rng, np.random.Generator)
    values = list(pescador.Streamer(random_ints, 5))
    assert len(values) == 5
    assert len(set(values)) == 5


def test_activation_rng_not_injected_when_supplied_positionally():
    mine = np.random.default_rng(0)
    assert list(pescador.Streamer(give_rng, mine)) == [mine]
    expected = [int(np.random.default_rng(1).integers(2**62))]
    assert list(pescador.Streamer(random_ints, 1, np.random.default_rng(1))) == expected


def test_activation_rng_not_injected_when_supplied_by_keyword():
    mine = np.random.default_rng(0)
    assert list(pescador.Streamer(give_rng, rng=mine)) == [mine]
    assert list(pescador.Streamer(give_rng_kwonly, rng=mine)) == [mine]
    assert list(pescador.Streamer(random_ints, n=1, rng=mine)) != []


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
    stream = pescador.Streamer(random_ints, 4)
    results = {tuple(stream) for _ in range(5)}
    assert len(results) == 5


def test_activation_rng_reproducible_under_global_seed(global_rng):
    stream = pescador.Streamer(random_ints, 4)
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
    streams = [pescador.Streamer(random_ints, 6), pescador.Streamer(random_ints, 6)]
    mux = make_mux(streams, 11)
    first = list(mux.iterate(max_iter=12))
    assert len(first) == 12
    assert first == list(mux.iterate(max_iter=12))
    assert first == list(make_mux(streams, 11).iterate(max_iter=12))
    assert first != list(make_mux(streams, 12).iterate(max_iter=12))


def test_activation_rng_differs_across_activations_inside_a_seeded_mux():
    stream = pescador.Streamer(random_ints, 3)
    items = list(pescador.ChainMux([stream, stream], random_state=0))
    assert len(items) == 6
    assert items[:3] != items[3:]
    cycled = list(pescador.ChainMux([stream], mode="cycle", random_state=0).iterate(9))
    assert len({tuple(cycled[i : i + 3]) for i in (0, 3, 6)}) == 3


def test_activation_rng_unseeded_mux_reproducible_under_global_seed(global_rng):
    mux = pescador.ShuffledMux(
        [pescador.Streamer(random_ints, 5), pescador.Streamer(random_ints, 5)]
    )
    np.random.seed(99)
    first = list(mux.iterate(max_iter=8))
    second = list(mux.iterate(max_iter=8))
    np.random.seed(99)
    assert list(mux.iterate(max_iter=8)) == first
    assert list(mux.iterate(max_iter=8)) == second
    assert first != second


def test_activation_rng_through_a_wrapping_streamer():
    inner = pescador.Streamer(random_ints, 10)
    values = list(pescador.Streamer(inner, 3))
    assert len(values) == 3
    mux = pescador.ChainMux([pescador.Streamer(inner, 3)], random_state=4)
    assert list(mux) == list(mux)


def test_activation_rng_placeholder_used_directly():
    with pytest.raises(AttributeError, match="placeholder"):
        pescador.ACTIVATION_RNG.integers(3)
    with pytest.raises(AttributeError, match="ACTIVATION_RNG"):
        next(random_ints(2))
    assert repr(pescador.ACTIVATION_RNG) == "pescador.ACTIVATION_RNG"
    assert pescador.core.ACTIVATION_RNG is pescador.ACTIVATION_RNG


def test_streamable_with_activation_rng_default_gets_a_generator():
    """A ``@streamable`` function whose parameter defaults to ACTIVATION_RNG gets a generator.

    ``streamable`` fills defaults in, so the placeholder itself reaches the Streamer's args;
    it must still be replaced at activation, as for ``Streamer(func, ...)``.
    """
    decorated = pescador.streamable(random_ints)
    values = list(decorated(3))
    assert len(values) == 3
    assert all(isinstance(v, int) for v in values)
    (rng,) = list(pescador.streamable(give_rng)())
    assert isinstance(rng, np.random.Generator)
