"""What a resume costs: a source with the state protocol resumes in constant time, a plain
generator is replayed (a mux replays at most ``n_active * rate`` items), numpy's global RNG is
not part of any state, and states stay small however many items were delivered.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from conftest import (
    MODES,
    Seekable,
    advance,
    letters,
    roundtrip,
    seekable,
    state_at,
)
from pescador import RoundRobinMux, ShuffledMux, StochasticMux, Streamer

# --------------------------------------------------------------------------- replay


def test_user_protocol_resumes_in_constant_time():
    stream = Streamer(seekable, 10**7)
    it = advance(stream.iterate(), 200_000)
    state = roundtrip(it.state_dict())
    assert state["source"] == {"i": 200_000}
    Seekable.produced = 0
    assert next(stream.iterate(state=state)) == 200_000
    assert Seekable.produced == 1  # nothing replayed


def test_a_plain_generator_is_replayed_and_skipped():
    produced = []

    def counting(n):
        for i in range(n):
            produced.append(i)
            yield i

    stream = Streamer(counting, 10**6)
    state = state_at(stream, 1000)
    produced.clear()
    assert next(stream.iterate(state=state)) == 1000
    assert len(produced) == 1001  # the 1000 delivered items are recomputed, then one more


def test_a_mux_replays_at_most_n_active_times_rate_items():
    produced = [0]

    def endless(i):
        while True:
            produced[0] += 1
            yield i

    for mode in ("with_replacement", "single_active"):
        mux = StochasticMux(
            [Streamer(endless, i) for i in range(100)],
            8,
            16,
            mode=mode,
            dist="constant",
            random_state=0,
        )
        for k in (1, 999, 10_000, 54_321):
            state = state_at(mux, k)
            produced[0] = 0
            next(mux.iterate(state=state))
            assert produced[0] <= 8 * 16, (mode, k, produced[0])


def test_a_global_rng_generator_resumes_only_approximately():
    """Documented limitation: numpy's global RNG is not part of any state."""

    def noisy():
        while True:
            yield int(np.random.randint(1 << 30))

    stream = Streamer(noisy)
    it = stream.iterate(max_iter=20)
    head = list(itertools.islice(it, 10))
    state = roundtrip(it.state_dict())
    expected = list(it)
    resumed = list(stream.iterate(max_iter=20, state=state))
    assert len(resumed) == len(expected) == 10 and len(head) == 10
    assert resumed != expected  # values differ (equal with probability 2**-300)


# --------------------------------------------------------------------------- size


def endless_item(i):
    item = {"x": i}
    while True:
        yield item


@pytest.mark.parametrize("mode", MODES)
def test_state_size_does_not_grow_with_items(mode):
    """Sampled after 1e3, 1e4 and 1e5 items: only counters gain digits."""
    streams = [Streamer(endless_item, i) for i in range(2000)]
    mux = StochasticMux(streams, 32, 16, mode=mode, random_state=0)
    it = mux.cycle() if mode == "exhaustive" else mux.iterate()  # exhaustive: ~32k per pass
    sizes, done = [], 0
    for n in (1000, 10_000, 100_000):
        advance(it, n - done)
        done = n
        sizes.append(len(json.dumps(it.state_dict())))
    assert max(sizes) < 4096, sizes
    assert sizes[2] - sizes[0] < 200, sizes


def test_shuffled_and_round_robin_states_do_not_grow_with_items():
    for mux in [
        ShuffledMux([Streamer(endless_item, i) for i in range(50)], random_state=0),
        RoundRobinMux([Streamer(letters, i, 7) for i in range(50)], "permuted_cycle", 0),
    ]:
        it = mux.iterate()
        sizes, done = [], 0
        for n in (1000, 10_000, 100_000):
            advance(it, n - done)
            done = n
            sizes.append(len(json.dumps(it.state_dict())))
        assert sizes[2] - sizes[0] < 200, sizes
