"""Seeds of the muxes: a seeded mux is a recipe that replays every iteration, one seed at the top
makes a whole tree reproducible, unseeded muxes follow numpy's global seed, a caller's RNG object
is only read (never advanced), and every mux pickles, also through ``spawn``.
"""

from __future__ import annotations

import multiprocessing
import pickle

import numpy as np
import pytest

from conftest import endless, letters, take
from pescador import ChainMux, RoundRobinMux, ShuffledMux, StochasticMux, Streamer

# --------------------------------------------------------------------------- recipes


def abc_source():
    yield Streamer("ab")
    yield Streamer("cd")
    yield Streamer("e")


SEEDS = [
    0,
    12345,
    2**40 + 3,
    np.int64(7),
    np.uint32(8),
    lambda: np.random.RandomState(3),
    lambda: np.random.default_rng(4),
    lambda: np.random.SeedSequence(5),
    lambda: np.random.SeedSequence([0, 1]),  # entropy as a list, as numpy allows
    lambda: np.random.SeedSequence(np.array([5, 6, 7, 8, 9, 0])),  # long, ending in zeros
]


def seed_value(seed):
    return seed() if callable(seed) else seed


def sample_streams():
    return [Streamer(letters, c, 7) for c in "abcd"] + [Streamer(endless, "z")]


MUX_FACTORIES = {
    "stochastic-wr": lambda rs: StochasticMux(sample_streams(), 2, 3, random_state=rs),
    "stochastic-single": lambda rs: StochasticMux(
        sample_streams(), 2, 3, mode="single_active", dist="poisson", random_state=rs
    ),
    "stochastic-exhaustive": lambda rs: StochasticMux(
        [Streamer(letters, c, 30) for c in "abcd"], 2, None, mode="exhaustive", random_state=rs
    ),
    "shuffled": lambda rs: ShuffledMux(sample_streams(), weights=[1, 2, 3, 4, 1], random_state=rs),
    "roundrobin-permuted": lambda rs: RoundRobinMux(
        sample_streams()[:4], mode="permuted_cycle", random_state=rs
    ),
    "chain-cycle": lambda rs: ChainMux(sample_streams()[:4], mode="cycle", random_state=rs),
    "tree": lambda rs: ShuffledMux(
        [
            StochasticMux(sample_streams(), 2, 2),
            RoundRobinMux(sample_streams()[:3], mode="permuted_cycle"),
            StochasticMux(sample_streams(), 1, 4, dist="constant"),
        ],
        random_state=rs,
    ),
}


RANDOM_MUXES = sorted(set(MUX_FACTORIES) - {"chain-cycle"})  # ChainMux is deterministic


# --------------------------------------------------------------------------- seeds


@pytest.mark.parametrize("name", sorted(MUX_FACTORIES))
@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: type(seed_value(s)).__name__)
def test_seeded_mux_replays_every_iteration(name, seed):
    mux = MUX_FACTORIES[name](seed_value(seed))
    first = take(mux)
    assert take(mux) == first
    assert list(mux.iterate(max_iter=60)) == first
    # an identical recipe built separately gives the same sequence
    assert take(MUX_FACTORIES[name](seed_value(seed))) == first


@pytest.mark.parametrize("name", RANDOM_MUXES)
def test_different_seeds_differ(name):
    """600 items hold enough random choices that two seeds coincide with P < 1e-20."""
    outputs = {tuple(take(MUX_FACTORIES[name](seed), 600)) for seed in (1, 2, 3)}
    assert len(outputs) == 3


def test_tree_seeded_only_at_the_top_is_reproducible():
    def build(seed):
        inner = [
            StochasticMux([Streamer(letters, c, 3) for c in "abc"], 2, 2),
            StochasticMux([Streamer(letters, c, 3) for c in "xyz"], 1, 3, mode="single_active"),
            ShuffledMux([Streamer(letters, c, 5) for c in "pq"]),
        ]
        middle = StochasticMux(inner, 2, 5, mode="with_replacement")
        return ShuffledMux(
            [middle, RoundRobinMux(inner, mode="permuted_cycle")], random_state=seed
        )

    a = take(build(21), 300)
    assert take(build(21), 300) == a
    mux = build(21)
    assert take(mux, 300) == a and take(mux, 300) == a
    assert take(build(22), 300) != a


def test_unseeded_children_of_a_seeded_parent_are_not_clones():
    """Two identical unseeded children get different seeds from their parent."""
    children = [ShuffledMux([Streamer(endless, c) for c in "ab"]) for _ in range(2)]
    mux = RoundRobinMux(children, random_state=3)
    items = take(mux, 400)
    first, second = items[0::2], items[1::2]  # P(equal) = 2**-200
    assert first != second


@pytest.mark.parametrize("name", RANDOM_MUXES)
def test_unseeded_mux_differs_across_iterations(name, global_rng):
    mux = MUX_FACTORIES[name](None)
    np.random.seed(0)
    outputs = {tuple(take(mux, 600)) for _ in range(3)}  # P(coincidence) < 1e-20
    assert len(outputs) == 3


@pytest.mark.parametrize("name", sorted(MUX_FACTORIES))
def test_unseeded_mux_reproducible_under_global_seed(name, global_rng):
    mux = MUX_FACTORIES[name](None)
    np.random.seed(1234)
    a = [take(mux), take(mux)]
    np.random.seed(1234)
    b = [take(mux), take(mux)]
    assert a == b
    np.random.seed(1234)
    assert [take(MUX_FACTORIES[name](None)), take(mux)] == a


def test_callers_random_state_never_advanced():
    rs = np.random.RandomState(17)
    before = rs.get_state()
    gen = np.random.default_rng(18)
    gen_before = gen.bit_generator.state
    seq = np.random.SeedSequence(19)
    spawned = seq.n_children_spawned
    for random_state in (rs, gen, seq):
        for factory in MUX_FACTORIES.values():
            mux = factory(random_state)
            take(mux)
            pickle.loads(pickle.dumps(mux))
    after = rs.get_state()
    assert np.array_equal(after[1], before[1]) and after[2:] == before[2:]
    assert gen.bit_generator.state == gen_before
    assert seq.n_children_spawned == spawned


def test_random_state_object_snapshot_taken_at_iteration():
    """A RandomState is a recipe: its *current* state seeds each iteration, never advanced."""
    rs = np.random.RandomState(5)
    mux = ShuffledMux([Streamer(endless, c) for c in "abcd"], random_state=rs)
    a = take(mux)
    assert take(mux) == a


# --------------------------------------------------------------------------- pickles


@pytest.mark.parametrize("name", sorted(MUX_FACTORIES))
@pytest.mark.parametrize("seed", [None, *SEEDS], ids=lambda s: type(seed_value(s)).__name__)
def test_every_mux_pickles(name, seed, global_rng):
    mux = MUX_FACTORIES[name](seed_value(seed))
    clone = pickle.loads(pickle.dumps(mux, protocol=pickle.HIGHEST_PROTOCOL))
    assert type(clone) is type(mux)
    if seed is None:
        np.random.seed(99)
        expected = take(mux)
        np.random.seed(99)
        assert take(clone) == expected
    else:
        assert take(clone) == take(mux)


def test_chain_of_generator_function_pickles():
    mux = ChainMux(abc_source, mode="cycle", random_state=1)
    clone = pickle.loads(pickle.dumps(mux))
    assert "".join(take(clone, 7)) == "".join(take(mux, 7)) == "abcdeab"


def test_activated_mux_pickles_after_iteration():
    mux = StochasticMux(sample_streams(), 2, 3, random_state=1)
    take(mux)  # iterating leaves the recipe picklable
    clone = pickle.loads(pickle.dumps(mux))
    assert take(clone) == take(mux)


def _run_in_child(mux):
    return list(mux.iterate(max_iter=50))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [None, 3, np.random.SeedSequence(4)], ids=["None", "int", "seq"])
def test_mux_round_trips_through_spawn(seed):
    mux = MUX_FACTORIES["tree"](seed)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        child = pool.apply(_run_in_child, (mux,))
    assert len(child) == 50
    if seed is not None:
        assert child == _run_in_child(mux)


# --------------------------------------------------------------------------- SeedSequence


@pytest.mark.parametrize(
    "entropy",
    [5, [0, 1], (1, 0), np.array([3, 4]), [2**40, 3], [7, 0, 0, 0], list(range(1, 9))],
    ids=str,
)
def test_seed_sequence_is_numpys_own(entropy):
    """Every SeedSequence works; where an int can hold its entropy, the generators are those of
    numpy's own sequence (``spawn_key`` extended by the stream number)."""
    from pescador._seeds import resolve_seed

    seq = np.random.SeedSequence(entropy, spawn_key=(2,))
    seed = resolve_seed(seq)
    own = np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy, spawn_key=(2, 0))))
    assert seed.generator(0).random(4).tolist() == own.random(4).tolist()


def test_seed_sequences_with_list_entropy_iterate_and_differ():
    def run(seq):
        return take(StochasticMux(sample_streams(), 2, 3, random_state=seq), 40)

    a = run(np.random.SeedSequence([0, 1]))
    assert a == run(np.random.SeedSequence([0, 1]))  # a recipe that replays
    assert a != run(np.random.SeedSequence([0, 2]))
    long = [5, 6, 7, 8, 9, 0]  # hashed: distinct from the sequence without its last zero
    assert run(np.random.SeedSequence(long)) != run(np.random.SeedSequence(long[:-1]))
