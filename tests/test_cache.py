"""cache: items drawn from a cache of the input's items, refilled at random; its arguments, order,
seeds, statistics and state; and the :mod:`pescador.testing` conformance checks.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import pescador
import pescador.io
import pescador.maps
from conftest import (
    advance,
    assert_conforms,
    data,
    data_streams,
    endless,
    endless_data,
    pulled_generator,
    roundtrip,
)
from pescador import ShuffledMux, StochasticMux, Streamer
from pescador.maps import cache
from pescador.testing import assert_proportions, items_equal

# --------------------------------------------------------------------------- cache


@pytest.mark.parametrize("n_cache", [0, -1, 2.5, None, "3", True])
def test_cache_bad_n_cache_fails_at_call(n_cache):
    with pytest.raises(pescador.PescadorError, match=r"n_cache=.* must be a positive integer"):
        cache(range(5), n_cache)


@pytest.mark.parametrize("prob", [0, -0.5, 1.5, float("nan"), "0.5", None, True])
def test_cache_bad_prob_fails_at_call(prob):
    with pytest.raises(pescador.PescadorError, match=r"prob=.* must be a number in the range"):
        cache(range(5), 2, prob=prob)


@pytest.mark.parametrize("random_state", ["x", -1, 1.5])
def test_cache_bad_random_state_fails_at_call(random_state):
    with pytest.raises(pescador.PescadorError, match="random_state"):
        cache(range(5), 2, random_state=random_state)


@pytest.mark.parametrize("prob", [1, 1.0, np.float32(0.25), 1e-9])
def test_cache_valid_probs(prob):
    out = list(itertools.islice(cache(itertools.count(), 3, prob=prob, random_state=0), 50))
    assert out[:3] == [0, 1, 2]


@pytest.mark.parametrize(
    "source",
    [
        lambda: list(range(20)),
        lambda: range(20),
        lambda: iter(range(20)),
        lambda: (i for i in range(20)),
        lambda: pescador.Streamer(list(range(20))),
        lambda: pescador.Streamer(list(range(20))).iterate(),
    ],
    ids=["list", "range", "iterator", "generator", "Streamer", "StreamIterator"],
)
def test_cache_accepts_any_iterable(source):
    # pescador 3.0 raised TypeError for lists and Streamers.
    out = list(cache(source(), 4, random_state=1))
    assert out[:4] == [0, 1, 2, 3]
    assert sorted(set(out)) == list(range(20))
    assert len(out) >= 20


def test_cache_warm_up_passes_items_in_order():
    out = list(itertools.islice(cache(itertools.count(), 10, random_state=3), 10))
    assert out == list(range(10))


@pytest.mark.parametrize("seed", range(5))
def test_cache_first_appearances_in_input_order(seed):
    out = list(cache(range(200), 8, prob=0.3, random_state=seed))
    firsts = list(dict.fromkeys(out))
    assert firsts == list(range(200))
    assert len(out) > 200


@pytest.mark.parametrize("n_cache", [1, 3, 7])
def test_cache_holds_at_most_n_cache_items(n_cache):
    # An item yielded at t and again later was cached throughout, and an evicted item never
    # comes back; so at every step at most n_cache items are "live" (seen before, seen again).
    out = list(cache(range(400), n_cache, prob=0.4, random_state=n_cache))
    first = {v: out.index(v) for v in set(out)}
    last = {v: len(out) - 1 - out[::-1].index(v) for v in set(out)}
    live = np.zeros(len(out) + 1, dtype=int)
    for v in first:
        live[first[v]] += 1
        live[last[v]] -= 1
    assert np.cumsum(live).max() <= n_cache
    assert len(out) > 400


def test_cache_prob_one_reproduces_input():
    assert list(cache(range(50), 3, prob=1, random_state=0)) == list(range(50))


def test_cache_larger_than_input_reproduces_input():
    assert list(cache(range(10), 11, random_state=0)) == list(range(10))
    assert list(cache(range(10), 100)) == list(range(10))


def test_cache_exactly_input_length_starts_with_the_input():
    # The cache learns that the input ended at its first refill, after some repeats.
    out = list(cache(range(10), 10, prob=0.5, random_state=0))
    assert out[:10] == list(range(10))
    assert set(out[10:]) <= set(range(10))


def test_cache_empty_input():
    assert list(cache([], 3)) == []


def test_cache_yields_the_same_objects():
    items = [{"i": i} for i in range(30)]
    out = list(cache(items, 4, random_state=2))
    ids = {id(item) for item in items}
    assert all(id(o) in ids for o in out)
    assert len(out) > len(items)


def test_cache_pulls_only_refills():
    log = []
    it = cache(pulled_generator(range(10**6), log), 5, prob=0.25, random_state=4)
    out = list(itertools.islice(it, 1000))
    assert len(log) == len(set(out))  # every pulled item was yielded, nothing read ahead
    assert max(it._slot_positions) + 1 == len(log)


def test_cache_is_infinite_over_an_infinite_input():
    out = list(itertools.islice(cache(itertools.count(), 4, random_state=0), 5000))
    assert len(out) == 5000


def test_cache_int_seed_is_reproducible():
    first = list(cache(range(100), 5, random_state=42))
    assert list(cache(range(100), 5, random_state=42)) == first
    assert list(cache(range(100), 5, random_state=43)) != first


def test_cache_streamer_replays_a_seeded_sequence():
    stream = pescador.Streamer(cache, list(range(100)), 5, random_state=7)
    first = list(stream)
    assert list(stream) == first
    assert len(first) > 100


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.random.RandomState(5),
        lambda: np.random.default_rng(5),
        lambda: np.random.SeedSequence(5),
        lambda: np.int64(5),
    ],
    ids=["RandomState", "Generator", "SeedSequence", "np.int64"],
)
def test_cache_rng_objects_are_read_not_advanced(make):
    rng = make()
    before = rng.get_state()[1].tolist() if isinstance(rng, np.random.RandomState) else None
    if isinstance(rng, np.random.Generator):
        before = rng.bit_generator.state
    first = list(cache(range(100), 5, random_state=rng))
    assert list(cache(range(100), 5, random_state=rng)) == first
    if isinstance(rng, np.random.RandomState):
        assert rng.get_state()[1].tolist() == before
    if isinstance(rng, np.random.Generator):
        assert rng.bit_generator.state == before


def test_cache_unseeded_follows_numpy_global_seed():
    np.random.seed(123)
    first = list(cache(range(200), 5))
    second = list(cache(range(200), 5))
    np.random.seed(123)
    assert list(cache(range(200), 5)) == first
    assert second != first


def test_cache_inherits_a_parent_seed_when_unseeded():
    from pescador._seeds import Seed

    runs = []
    for _ in range(2):
        it = cache(range(200), 5)
        it._seed = Seed(99)  # what a seeded parent mux hands its children
        runs.append(list(it))
    assert runs[0] == runs[1]
    it = cache(range(200), 5, random_state=1)
    it._seed = Seed(99)  # an explicit random_state wins over the parent's seed
    assert list(it) == list(cache(range(200), 5, random_state=1))


def test_cache_refill_rate_matches_prob():
    # Refills among K post-warm-up steps ~ Binomial(K, p); Hoeffding:
    # P(|rate - p| >= 0.01) <= 2 exp(-2 K 0.01^2) = 4e-9 for K = 100_000.
    n, p, k = 10, 0.3, 100_000
    out = list(itertools.islice(cache(itertools.count(), n, prob=p, random_state=0), n + k))
    refills = len(set(out)) - n
    assert abs(refills / k - p) < 0.01


def test_cache_slot_choice_is_uniform():
    # With prob tiny, the warm-up contents stay put; repeats pick slots uniformly.
    # Chi-square on 100_000 draws over 8 slots at alpha = 1e-4.
    from scipy import stats

    out = list(itertools.islice(cache(itertools.count(), 8, prob=1e-12, random_state=5), 100_008))
    counts = np.bincount(out[8:], minlength=8)
    assert counts.size == 8
    assert stats.chisquare(counts).pvalue > 1e-4


def test_cache_state_lives_on_the_iterator():
    # What a checkpoint needs: slot contents with their input positions, the RNG state at the
    # start of the current block of draws and the position in it.
    from operator import length_hint

    from pescador.mux._draws import BLOCK

    n, prob = 6, 0.4
    it = cache(itertools.count(), n, prob=prob, random_state=8)
    out = [next(it) for _ in range(2500)]  # crosses two block boundaries
    assert it._slot_positions == it._slots  # count() yields its own positions
    assert max(it._slot_positions) + 1 == max(out) + 1
    consumed = BLOCK - length_hint(it._decisions)
    # A block is drawn when its first decision is needed: 1 .. BLOCK of the current one are used.
    assert consumed == (len(out) - n - 1) % BLOCK + 1
    # Replaying the block from the saved state gives the decisions still to come.
    replay = np.random.Generator(np.random.PCG64())
    replay.bit_generator.state = it._block_state
    index = replay.integers(0, n, BLOCK)
    refill = replay.random(BLOCK) < prob
    codes = np.where(refill, ~index, index).tolist()
    assert list(it._decisions) == codes[consumed:]


# --------------------------------------------------------------------------- conformance
# The pescador.testing checks, through assert_conforms (conftest.py): restartable, resumable
# at every position (JSON states), and, where the stream is random, the proportions of items.


def test_cache_resumes_at_every_position_including_its_warm_up():
    mux = StochasticMux(data_streams(), 3, 4, random_state=3)
    for prob in (0.5, 0.1, 1.0):
        # Checkpoints at every position: the warm-up (positions 1 .. 4) included.
        items = assert_conforms(Streamer(pescador.cache, mux, 5, prob, random_state=2), 60)
        assert len(items) == 60
    short = Streamer(data, "a", 3)  # fewer items than the cache holds
    assert_conforms(Streamer(pescador.cache, short, 5, random_state=0), 10)


def test_cache_over_a_long_run_crossing_blocks_of_decisions():
    mux = StochasticMux([Streamer(endless_data, t) for t in "abc"], 2, 4, random_state=3)
    assert_conforms(
        Streamer(pescador.cache, mux, 5, 0.05, random_state=2),
        2600,
        positions=[1, 2, 5, 6, 1023, 1024, 1025, 2047, 2048, 2049, 2600],
    )


def test_unseeded_cache_resumes_its_own_iteration():
    assert_conforms(Streamer(pescador.cache, Streamer(data, "a", 30), 5, 0.5), 80, seeded=False)
    assert_conforms(
        Streamer(pescador.cache, StochasticMux(data_streams(), 3, 4), 5), 80, seeded=False
    )


def test_cache_replays_its_input_from_the_start():
    """Documented cost: the cached items are data, not state; resume refetches them."""
    fetched = []

    def source():
        i = 0
        while True:
            fetched.append(i)
            yield {"i": i}
            i += 1

    stream = Streamer(pescador.cache, Streamer(source), 4, 0.5, random_state=0)
    it = stream.iterate()
    advance(it, 500)
    n_fetched = len(fetched)
    state = roundtrip(it.state_dict())
    expected = next(it)
    fetched.clear()
    assert items_equal(next(stream.iterate(state=state)), expected)
    assert n_fetched <= len(fetched) <= n_fetched + 1


def test_cache_item_shares_follow_its_input():
    """Each item is drawn from a uniformly chosen slot, and each slot holds the input item put
    there last (the input's are independent, 3/4 "a"), so the shares are the input's. A slot's
    item stays about ``n_cache / prob = 8`` draws: ``correlation=64`` counts 64 items as one
    independent draw, which leaves the allowed deviation (0.087) above 10 standard deviations
    of the shares."""
    source = ShuffledMux([Streamer(endless, t) for t in "ab"], weights=[3, 1], random_state=1)
    stream = Streamer(pescador.cache, source, 4, 0.5, random_state=2)
    assert_proportions(stream, None, {"a": 0.75, "b": 0.25}, n=64_000, correlation=64)
