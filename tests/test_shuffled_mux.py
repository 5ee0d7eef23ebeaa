"""ShuffledMux: each item is drawn from streamer ``i`` with probability ``w_i / sum(w)``, ended
streamers restart at once, one empty since its restart is dropped; and the
:mod:`pescador.testing` conformance checks.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import (
    WEIGHTS,
    Tracker,
    assert_conforms,
    endless,
    finite_streams,
    letters,
    random_streams,
    take,
    tracked_streams,
)
from pescador import ShuffledMux, Streamer
from pescador.testing import assert_proportions

# --------------------------------------------------------------------------- ShuffledMux


def test_zero_weight_never_started_in_shuffled_mux():
    tracker = Tracker()
    mux = ShuffledMux(tracked_streams(3, tracker, n=2), weights=[0, 1, 3], random_state=0)
    items = list(mux.iterate(max_iter=200))
    assert 0 not in tracker.starts and 0 not in items
    assert set(items) == {1, 2}


def test_shuffled_integer_weights_same_as_float_weights():
    """As in pescador 3.0: integer weights give the same sequence as the equivalent floats."""
    streams = [Streamer(letters, c, 50) for c in "abc"]
    a = list(ShuffledMux(streams, weights=[1, 2, 3], random_state=9).iterate(max_iter=100))
    b = list(ShuffledMux(streams, weights=[1.0, 2.0, 3.0], random_state=9).iterate(max_iter=100))
    assert a == b


def test_shuffled_restarts_ended_streams():
    mux = ShuffledMux([Streamer("ab"), Streamer("xyz")], random_state=0)
    items = "".join(take(mux, 600))
    first = "".join(c for c in items if c in "ab")
    second = "".join(c for c in items if c in "xyz")
    assert first == ("ab" * 600)[: len(first)]
    assert second == ("xyz" * 600)[: len(second)]
    assert len(first) > 100 and len(second) > 100  # P(fail) < 1e-40


def test_shuffled_drops_streamer_empty_since_its_restart():
    """As in pescador 3.0: dropped for the rest of the iteration, even if it gave data earlier."""

    def once(log):
        log.append(1)
        if len(log) == 1:
            yield from "xy"

    log = []
    mux = ShuffledMux([Streamer(once, log), Streamer("ab")], random_state=0)
    items = "".join(take(mux, 300))
    assert items.count("x") == 1 and items.count("y") == 1
    assert len(log) == 2  # ran once with data, once empty, then never again
    assert len(items) == 300


def test_shuffled_drops_empty_streams_pinned():
    """As in pescador 3.0: seed 1234, after 30 samples the empty streams' weights are 0."""
    mux = ShuffledMux([Streamer(x) for x in ["a", "b", [], [], "c"]], random_state=1234)
    with mux as active:
        assert len(active.streams_) == 5
        np.testing.assert_allclose(active.stream_weights_, [0.2] * 5)
        np.testing.assert_array_equal(active.stream_counts_, [0] * 5)
        out = list(active.iterate(max_iter=30))
        assert len(out) == 30 and set(out) == {"a", "b", "c"}
        weights = np.asarray(active.stream_weights_)
        assert weights[2] == 0 and weights[3] == 0
        assert np.all(weights[[0, 1, 4]] > 0)


def test_shuffled_ends_only_when_all_streams_empty():
    mux = ShuffledMux([Streamer([]), Streamer("a"), Streamer([])], random_state=0)
    assert take(mux, 100) == ["a"] * 100
    assert list(ShuffledMux([Streamer(iter("ab")), Streamer([])])) == ["a", "b"]


def test_shuffled_context_manager_attributes():
    mux = ShuffledMux([Streamer("ab"), Streamer("cd")], weights=[3, 1], random_state=0)
    with mux as active:
        assert active.is_activated_copy
        assert len(active.streams_) == 2
        np.testing.assert_allclose(active.stream_weights_, [0.75, 0.25])
        np.testing.assert_array_equal(active.stream_counts_, [0, 0])
    assert mux.active == 0


# --------------------------------------------------------------------------- conformance
# The pescador.testing checks, through assert_conforms (conftest.py): restartable, resumable
# at every position (JSON states), and the proportions of items.


@pytest.mark.parametrize("weighted", [False, True])
def test_shuffled_mux_resumes_at_every_position(weighted):
    mux = ShuffledMux(finite_streams(), weights=WEIGHTS if weighted else None, random_state=3)
    assert_conforms(mux, 80)
    mux = ShuffledMux(
        random_streams(), weights=[1, 2, 3, 4, 5, 6, 7] if weighted else None, random_state=3
    )
    assert_conforms(mux, 1500, positions=range(1, 1501, 37))


def test_shuffled_mux_item_shares_follow_the_weights():
    """Each item is an independent draw: P(false failure) <= alpha = 1e-6 (Hoeffding)."""
    mux = ShuffledMux([Streamer(endless, t) for t in "abc"], weights=[1, 2, 1], random_state=0)
    assert_proportions(mux, None, {"a": 0.25, "b": 0.5, "c": 0.25}, n=20_000)
