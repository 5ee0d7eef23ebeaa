"""What the sampler did: exact per-streamer statistics of a running stream.

:func:`watch` a stream's iterator and take a :meth:`~Watch.snapshot` whenever you like: per
streamer of its mux, the items and activations, the realised share against the target share
(overall and per group of streamers), the streamers never reached, the mean items per
activation against ``rate``, the throughput, and for the window streamers of
:mod:`pescador.io` the bytes read per file. Nested muxes are counted per streamer of each; a
:class:`~pescador.ParallelStreamer`'s workers are merged.

>>> import pescador
>>> streams = [pescador.Streamer("a" * 50), pescador.Streamer("b" * 50)]
>>> mux = pescador.StochasticMux(streams, n_active=2, rate=4, weights=[3, 1], random_state=0)
>>> it = mux.iterate(max_iter=40)
>>> watched = pescador.stats.watch(it)
>>> items = list(it)
>>> stats = watched.snapshot()
>>> [s.items for s in stats.streamers] == [items.count("a"), items.count("b")]
True
>>> stats.targets().tolist()
[0.75, 0.25]

The counts are exact: they are those the mux loop keeps anyway (each activation's items), read
when an activation ends or a snapshot is taken, so an unwatched stream pays nothing and a
watched one nothing per item (docs/stats.md).
"""

from ._report import GroupStats, MuxStats, StreamerStats
from ._watch import Watch, watch

__all__ = ["GroupStats", "MuxStats", "StreamerStats", "Watch", "watch"]
