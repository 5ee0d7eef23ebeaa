"""ParallelStreamer under the :mod:`pescador.testing` checks: restartable, resumable (the items
delivered, exactly, whatever the workers had produced), and the proportions of its mux.

Each iteration and each resume starts the workers, so the streams are short and the checkpoints
few.
"""

from __future__ import annotations

import itertools

import pescador
import pescador.io
import pescador.maps
from conftest import assert_conforms, data, draws, endless, letters, roundtrip
from pescador import ChainMux, ParallelStreamer, ShuffledMux, StochasticMux, Streamer
from pescador.testing import assert_proportions

# --------------------------------------------------------------------------- conformance
# The pescador.testing checks, through assert_conforms (conftest.py): restartable, resumable
# at every position (JSON states), and, where the stream is random, the proportions of items.


def test_parallel_streamer_resumes_delivered_items_exactly():
    streams = [Streamer(data, c, n) for c, n in zip("abcde", (7, 3, 9, 0, 5), strict=True)]
    batches = Streamer(pescador.buffer_stream, ChainMux(streams), 3, partial=True)
    stream = ParallelStreamer(batches, 2, random_state=0)
    assert_conforms(stream, 20, positions=[1, 3, 5, 8])
    mux = StochasticMux([Streamer(letters, t, 10**6) for t in "abcdef"], 3, 5, random_state=2)
    assert_conforms(ParallelStreamer(mux, 2, snapshot_every=0.0), 60, positions=[1, 17, 59, 60])


def test_parallel_streamer_resumes_activation_rngs_exactly():
    """The workers' shares of a mux resume with their own seeds (not a re-derived one)."""
    mux = StochasticMux([Streamer(draws, t) for t in "abcdef"], 3, 5, random_state=2)
    assert_conforms(ParallelStreamer(mux, 2, snapshot_every=0.0), 60, positions=[1, 17, 59])
    assert_conforms(ParallelStreamer(mux, 1, snapshot_every=0.0), 30, positions=[5])


def test_unordered_parallel_streamer_neither_loses_nor_repeats_items():
    streams = [Streamer(letters, c, n) for c, n in zip("abcde", (30, 10, 25, 0, 15), strict=True)]
    stream = ParallelStreamer(ChainMux(streams), 2, ordered=False, prefetch=3)
    full = sorted(stream.iterate())
    for k in (1, 33, len(full)):
        it = stream.iterate()
        head = list(itertools.islice(it, k))
        state = roundtrip(it.state_dict())
        it.close()
        assert sorted(head + list(stream.iterate(state=state))) == full


def test_parallel_streamer_keeps_the_proportions_of_its_mux():
    """Each worker runs a share of the mux's streamers, and the consumer takes the next item
    from a worker with probability proportional to its share's weight, so the item shares are
    the mux's. ShuffledMux draws are independent: P(false failure) <= alpha = 1e-6."""
    streams = [Streamer(endless, t) for t in "abcd"]
    mux = ShuffledMux(streams, weights=[1, 2, 3, 2], random_state=1)
    expected = {"a": 1, "b": 2, "c": 3, "d": 2}
    assert_proportions(ParallelStreamer(mux, 2, random_state=0), None, expected, n=6000)
