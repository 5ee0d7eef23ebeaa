"""What a watched mux iteration counts: per streamer, its activations and their items (private).

A :class:`Recorder` is attached to the slot table of a mux iteration
(:class:`pescador.mux._slots.SlotTable`, its ``stats``). The table calls :meth:`Recorder.swap`
when a slot's activation ends and another starts in it, and :meth:`Recorder.ended` when a
slot closes: once per *activation*, never per item. The items come from what the iteration
counts already, each child iterator's count of items delivered: those of the activations that
ended are added up as they end; those of the running ones are read from the live tables when
a snapshot is taken. So the loop's per-item path is the same, watched or not, and an unwatched
table pays one ``is None`` test per activation.

A streamer that is itself a mux gets a recorder of its own (one per streamer, shared by all its
activations), attached to each of its iterations as it opens: a tree of recorders. A window
streamer of :mod:`pescador.io` is asked for its ``bytes_read`` when its activation ends.
Plain streamers take the short path: after their first activation, a flag says there is
nothing more to do for them.
"""

from __future__ import annotations

import weakref
from operator import length_hint
from typing import Any

import numpy as np

from .._iterator import _BIG
from .._passes import _StreamerIterator
from ..io._windows import WindowIterator


def _special(stream: Any) -> bool:
    """Whether the activations of ``stream`` need more than counting: a mux (counted per
    streamer of its own), a window streamer of :mod:`pescador.io` (bytes read), or a stream
    that a ChainMux's generator gives (unknown)."""
    from ..io._streamers import npy_windows, npz_windows
    from ..mux._base import BaseMux

    if isinstance(stream, BaseMux):
        return True
    func = getattr(stream, "streamer", None)
    return func is npz_windows or func is npy_windows or not hasattr(stream, "streamer")


#: Ended activations are added up in bulk, this many at a time (and at each snapshot).
_FLUSH = 2048


class Recorder:
    """The counts of one mux (over all the iterations of it that it was attached to).

    Arrays indexed by streamer (they grow for a ChainMux over a generator of streams):
    ``done``, the activations that ended, and ``items`` they delivered; ``bytes`` read by the
    window streamers whose activations ended. An activation has ended or is running in a
    watched table, so the activations opened are ``done`` plus those running.

    Per activation, the hooks only append to two lists: ``finished`` (the tallies of the
    activations that ended, whose lengths say how many items each delivered) and ``ended_ids``
    (their streamers); :meth:`flush` adds them up in bulk. ``slow``: whether some activations
    need more than that (see :func:`_special`, and the activations adopted running).
    ``tables``: the slot tables watched (for their running activations); ``base``: the items an
    adopted activation had delivered before; ``files``: the running activations of window
    streamers and their window iterators.
    """

    __slots__ = (
        "add_ended",
        "add_tally",
        "base",
        "bytes",
        "children",
        "done",
        "ended_ids",
        "files",
        "finished",
        "items",
        "recipe",
        "slow",
        "tables",
    )

    def __init__(self, n: int = 0) -> None:
        self.done = np.zeros(n, np.int64)
        self.items = np.zeros(n, np.int64)
        self.bytes = np.zeros(n, np.int64)
        self.slow = False
        self.recipe: Any = None  # the streamers of the tables adopted (checked once)
        self.finished: list[Any] = []
        self.ended_ids: list[int] = []
        self.add_tally = self.finished.append
        self.add_ended = self.ended_ids.append
        self.tables: weakref.WeakSet[Any] = weakref.WeakSet()
        self.base: dict[Any, int] = {}
        self.files: dict[Any, WindowIterator] = {}
        self.children: dict[int, Recorder] = {}

    # -- the slot table's hooks (once per activation) -----------------------------------------
    def swap(self, old_i: int, old: Any, i: int, child: Any) -> None:
        """A slot's activation ``old`` of streamer ``old_i`` (None: the slot was closed) ended,
        and activation ``child`` of streamer ``i`` started in it."""
        if old is not None:  # (as ended(), inline: this runs once per activation)
            self.add_tally(old._tally)
            self.add_ended(old_i)
            if self.slow:
                self._end(old_i, old)
            if len(self.finished) >= _FLUSH:
                self.flush()
        if self.slow:
            self._start(i, child)

    def ended(self, i: int, child: Any) -> None:
        """A slot's activation ``child`` of streamer ``i`` ended."""
        self.add_tally(child._tally)
        self.add_ended(i)
        if self.slow:
            self._end(i, child)
        if len(self.finished) >= _FLUSH:
            self.flush()

    def flush(self) -> None:
        """Add up the activations that ended since the last flush."""
        ended, ids = self.finished, self.ended_ids
        if not ended:
            return
        # (C-level: each tally's length is _BIG less the items its activation delivered)
        counts = _BIG - np.fromiter(map(length_hint, ended), np.int64, len(ended))
        ended_ids = np.array(ids, np.intp)
        ended.clear()  # (in place: the hooks hold their append methods)
        ids.clear()
        self._grow(int(ended_ids.max()) + 1)
        n = len(self.items)
        if n <= 16 * _FLUSH:  # a dense count is cheaper than scattered adds
            self.items += np.bincount(ended_ids, counts, n).astype(np.int64)
            self.done += np.bincount(ended_ids, minlength=n)
        else:
            np.add.at(self.items, ended_ids, counts)
            np.add.at(self.done, ended_ids, 1)

    def _grow(self, n: int) -> None:
        more = n - len(self.done)
        if more > 0:
            pad = np.zeros(more, np.int64)
            self.done = np.concatenate([self.done, pad])
            self.items = np.concatenate([self.items, pad])
            self.bytes = np.concatenate([self.bytes, pad])

    # -- the long path: window streamers, nested muxes, adopted activations -------------------
    def _start(self, i: int, child: Any) -> None:
        if type(child) is _StreamerIterator:
            source = child._source
            if type(source) is WindowIterator:
                self.files[child] = source
            return
        policy = getattr(child, "policy", None)  # a mux iteration (started)
        if policy is None:
            return
        sub = self.children.get(i)
        if sub is None:
            sub = self.children[i] = Recorder()
        sub.adopt(policy.table)

    def _end(self, i: int, child: Any) -> None:
        if self.base:
            base = self.base.pop(child, 0)
            if base:
                self._grow(i + 1)
                self.items[i] -= base
        if self.files:
            source = self.files.pop(child, None)
            if source is not None:
                self._grow(i + 1)
                self.bytes[i] += source.bytes_read

    # -- attaching ----------------------------------------------------------------------------
    def adopt(self, table: Any) -> None:
        """Watch ``table`` from now on, with the activations it runs already (the items they
        delivered before are not counted)."""
        streamers = table.streamers
        if streamers is not self.recipe:  # (a nested mux's: the same list at every activation)
            self.recipe = streamers
            self._grow(len(streamers))
            self.slow = self.slow or any(map(_special, streamers))
        table.stats = self
        self.tables.add(table)
        for child, i in zip(table.children, table.streamer_ids, strict=False):
            if child is not None:
                done = child.items_delivered
                if done:
                    self.base[child] = done
                    self.slow = True
                self.swap(i, None, i, child)

    # -- reading ------------------------------------------------------------------------------
    def export(self) -> dict[str, Any]:
        """The counts now, as JSON types: the ended activations' plus the running ones'.

        ``{"activations", "ended", "items", "ended_items", "bytes"}`` (lists by streamer) and
        ``"children"`` (``[streamer, export]`` pairs for the streamers that are muxes).
        """
        self.flush()
        items = self.items.tolist()
        nbytes = self.bytes.tolist()
        activations = self.done.tolist()  # (those that ended, and those running)
        base = self.base
        for table in list(self.tables):
            for child, i in zip(table.children, table.streamer_ids, strict=False):
                if child is None:
                    continue
                if i >= len(items):  # (a ChainMux's stream not seen ending yet)
                    more = [0] * (i + 1 - len(items))
                    items, nbytes, activations = items + more, nbytes + more, activations + more
                activations[i] += 1
                items[i] += child.items_delivered - base.get(child, 0)
                source = self.files.get(child)
                if source is not None:
                    nbytes[i] += source.bytes_read
        return {
            "activations": activations,
            "ended": self.done.tolist(),
            "items": items,
            "ended_items": self.items.tolist(),
            "bytes": nbytes,
            "children": [[i, sub.export()] for i, sub in sorted(self.children.items())],
        }
