"""Watching a stream iterator: :func:`watch` and the live :class:`Watch` it returns (private)."""

from __future__ import annotations

import time
from typing import Any

from .._passes import _StreamerIterator
from ..exceptions import PescadorError
from ..maps._iterator import _MapIterator
from ..mux._loop import _MuxIterator
from ._recorder import Recorder
from ._report import MuxStats, build, merge_shares

__all__ = ["Watch", "attach", "watch"]


def _mux_iterator(it: Any, depth: int = 0) -> _MuxIterator | None:
    """The outermost mux iteration of a started pipeline: ``it`` itself, or the one a map or
    a Streamer over a map iterates."""
    if isinstance(it, _MuxIterator):
        return it
    if depth > 16:
        return None
    if isinstance(it, _MapIterator):
        return _mux_iterator(it._input, depth + 1)
    if isinstance(it, _StreamerIterator):
        return _mux_iterator(it._source, depth + 1)
    return None


def attach(it: Any) -> tuple[_MuxIterator, Recorder]:
    """Start ``it`` (pulling nothing) and attach a recorder to its outermost mux iteration."""
    iter(it)
    found = _mux_iterator(it)
    if found is None or found.policy is None:
        raise PescadorError(
            f"cannot watch {it!r}: its pipeline has no mux (watch the iterator of a mux, of a "
            "map over a mux, or of a ParallelStreamer)"
        )
    table = found.policy.table
    if table.stats is not None:
        return found, table.stats
    recorder = Recorder()
    recorder.adopt(table)
    return found, recorder


class Watch:
    """A watched iteration: ask it for a :meth:`snapshot` whenever you like.

    Made by :func:`watch`. Holds the iteration's recorder (and the iterator), nothing else.
    """

    __slots__ = ("_iterator", "_mux_iterator", "_recorder", "_start")

    def __init__(self, iterator: Any) -> None:
        from ..parallel._consumer import _ParallelIterator

        self._iterator = iterator
        self._mux_iterator: _MuxIterator | None = None
        self._recorder: Recorder | None = None
        if isinstance(iterator, _ParallelIterator):
            if iterator.started:
                raise PescadorError(
                    "watch a ParallelStreamer's iterator before its first item: its workers "
                    "count from their start"
                )
            from .._sharding import outermost_mux

            if outermost_mux(iterator._owner.stream) is None:
                raise PescadorError(
                    f"cannot watch {iterator!r}: the ParallelStreamer's stream has no mux"
                )
            iterator._stats = True
        else:
            self._mux_iterator, self._recorder = attach(iterator)
        self._start = time.perf_counter()

    def snapshot(self) -> MuxStats:
        """The statistics now: exact counts of what the mux delivered since the watch began.

        Cost: O(number of streamers + running activations), nothing on the stream's own path.
        """
        elapsed = time.perf_counter() - self._start
        it = self._mux_iterator
        if it is not None:
            assert self._recorder is not None
            weights = getattr(it.policy, "weights", None)
            return build(self._recorder.export(), it._mux, weights, elapsed)
        return _parallel_snapshot(self._iterator, elapsed)


def _parallel_snapshot(it: Any, elapsed: float) -> MuxStats:
    """A ParallelStreamer's: its workers' last reports, merged (see MuxStats.unattributed)."""
    from .._sharding import outermost_mux

    mux = outermost_mux(it._owner.stream)
    if mux is None:
        raise PescadorError("cannot watch a ParallelStreamer whose stream has no mux")
    workers = it._workers
    exports = [getattr(w, "stats", None) for w in workers]
    n = mux.n_streams
    counts = merge_shares(exports, n)
    unattributed = max(0, it.items_delivered - sum(counts["items"]))
    return build(counts, mux, None, elapsed, unattributed)


def watch(iterator: Any) -> Watch:
    """Count what a running stream delivers, per streamer of its mux; see :class:`MuxStats`.

    ``iterator``: the iterator of a mux (``mux.iterate()``), of a map over one
    (``buffer_stream(mux, 32)``), or of a :class:`~pescador.ParallelStreamer` (watch it before
    its first item: the counts of its workers are merged). Watching starts the iterator if it
    had not started (pulling nothing); watched before its first item, every item is counted,
    watched later, the items from then on.

    Costs nothing until called: the mux's loop is the same watched or not. Watched, the
    counting is per *activation* (a few dictionary operations when one opens and ends), none
    per item. Nested muxes are counted too, per streamer of each, over all their
    activations; the window streamers of :mod:`pescador.io` count the bytes they read.

    Examples
    --------
    >>> import pescador
    >>> mux = pescador.StochasticMux(["ab", "xyz"], n_active=2, rate=None, mode="exhaustive")
    >>> it = mux.iterate()
    >>> watched = pescador.stats.watch(it)
    >>> sorted(it)
    ['a', 'b', 'x', 'y', 'z']
    >>> stats = watched.snapshot()
    >>> [(s.items, s.activations) for s in stats.streamers]
    [(2, 1), (3, 1)]
    >>> stats.shares().tolist(), stats.unreached()
    ([0.4, 0.6], [])
    """
    return Watch(iterator)
