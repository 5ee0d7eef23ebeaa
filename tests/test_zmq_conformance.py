"""ZMQStreamer under the :mod:`pescador.testing` checks: restartable, resumable, and the
proportions of the stream it runs.

Each iteration and each resume starts a worker process, so the streams are short and the
checkpoints few. Items are dicts of arrays, as ZMQStreamer requires.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import endless
from pescador import ACTIVATION_RNG, ShuffledMux, StochasticMux, Streamer
from pescador.testing import assert_proportions, assert_restartable, assert_resumable

pytest.importorskip("zmq")
from pescador.zmq_stream import ZMQStreamer


def numbered(tag, n, rng=ACTIVATION_RNG):
    for i in range(n):
        yield {"tag": np.array(tag), "i": np.array(i), "r": rng.random(2)}


def test_zmq_streamer_over_a_seeded_mux_is_restartable_and_resumable():
    streams = [Streamer(numbered, t, n) for t, n in zip("abcd", (6, 0, 9, 4), strict=True)]
    mux = StochasticMux(streams, 2, None, mode="exhaustive", random_state=5)
    stream = ZMQStreamer(mux)
    items = assert_restartable(stream, n=25)
    assert len(items) == 19  # exhaustive: every item of the four streamers, then the end
    assert_resumable(stream, n=25, positions=[0, 1, 8, 19, 25])


def test_zmq_streamer_keeps_the_proportions_of_its_stream():
    """ShuffledMux draws are independent: P(false failure) <= alpha = 1e-6 (Hoeffding)."""
    streams = [Streamer(endless, {"tag": np.array(t)}) for t in "ab"]
    stream = ZMQStreamer(ShuffledMux(streams, weights=[3, 1], random_state=2))
    assert_proportions(stream, "tag", {"a": 0.75, "b": 0.25}, n=4000)
