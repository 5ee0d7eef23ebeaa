"""RoundRobinMux: one item from each streamer in turn, in each mode (``exhaustive``, ``cycle``,
``permuted_cycle``); and the :mod:`pescador.testing` conformance checks in every mode.
"""

from __future__ import annotations

import collections
import itertools

import pytest

from conftest import assert_conforms, finite_streams, letters
from pescador import RoundRobinMux, Streamer
from pescador.testing import assert_proportions

# --------------------------------------------------------------------------- RoundRobinMux


def test_roundrobin_pinned_example():
    mux = RoundRobinMux([Streamer(x) for x in ["aa", "bb", [], [], [], "cccc"]])
    assert "".join(mux) == "abcabccc"
    assert "".join(mux) == "abcabccc"  # restartable


def test_roundrobin_cycle_restarts_all_when_all_ended():
    mux = RoundRobinMux([Streamer("a"), Streamer("bb"), Streamer("c")], mode="cycle")
    assert "".join(mux.iterate(max_iter=12)) == "abcb" * 3


def test_roundrobin_permuted_cycle_pinned_counts():
    mux = RoundRobinMux(
        [Streamer("a"), Streamer("bb"), Streamer("c")], "permuted_cycle", random_state=0
    )
    out = "".join(mux.iterate(max_iter=12))
    assert collections.Counter(out) == {"a": 3, "b": 6, "c": 3}
    assert out[:4] == "abcb"


def test_roundrobin_permuted_cycle_passes_are_permutations():
    """First pass in order; every later pass visits all streamers in some order.

    With 300 later passes, each of the 6 orders is missed with probability (5/6)**300, so a
    correct library fails this with probability < 6 * (5/6)**300 < 1e-22.
    """
    words = ["a", "b", "c"]
    for seed in range(3):
        mux = RoundRobinMux([Streamer(w) for w in words], "permuted_cycle", random_state=seed)
        out = "".join(mux.iterate(max_iter=3 * 301))
        passes = [out[k : k + 3] for k in range(0, len(out), 3)]
        assert passes[0] == "abc"
        assert all(sorted(p) == words for p in passes)
        assert {p for p in passes[1:]} == {"".join(p) for p in itertools.permutations("abc")}


def test_roundrobin_concurrent_iterations_independent():
    mux = RoundRobinMux([Streamer("ab"), Streamer("cd")])
    a, b = mux.iterate(), mux.iterate()
    assert [next(a), next(a), next(b), next(a), next(b), next(b), next(b)] == list("acabcbd")


# --------------------------------------------------------------------------- conformance
# The pescador.testing checks, through assert_conforms (conftest.py): restartable, resumable
# at every position (JSON states), and the proportions of items.


@pytest.mark.parametrize("mode", ["exhaustive", "cycle", "permuted_cycle"])
def test_round_robin_mux_resumes_at_every_position(mode):
    assert_conforms(RoundRobinMux(finite_streams(), mode=mode, random_state=2), 120)


def test_unseeded_permuted_round_robin_resumes_its_own_permutations():
    assert_conforms(RoundRobinMux(finite_streams(), mode="permuted_cycle"), 120, seeded=False)


def test_permuted_round_robin_item_shares_follow_the_lengths():
    """Every pass gives each streamer's items once, the streamers in a random order: over whole
    passes the shares are exactly the streamers' shares of the items."""
    streams = [Streamer(letters, t, n) for t, n in zip("abc", (1, 2, 1), strict=True)]
    mux = RoundRobinMux(streams, mode="permuted_cycle", random_state=3)
    shares = assert_proportions(mux, lambda item: item[0], {"a": 1, "b": 2, "c": 1}, n=4000)
    assert shares == {"a": 0.25, "b": 0.5, "c": 0.25}
