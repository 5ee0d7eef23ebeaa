"""What a watched mux iteration counts: per streamer, its activations and their items (private).

A :class:`Recorder` is attached to the slot table of a mux iteration
(:class:`pescador.mux._slots.SlotTable`, its ``stats``). It is a list: the *log* of the
activations that ended, to which the table appends ``(streamer, tally)`` when an activation
ends (the tally is the child iterator's C-level counter, whose length says how many items it
delivered), a C-level append, once per *activation*, never per item; when the log holds
:data:`pescador.mux._slots.LOG_FLUSH` entries the table asks the recorder to add them up
(:meth:`Recorder.flush`, numpy, in bulk). The running activations are read from the live
tables when a snapshot is taken. So the loop's per-item path is the same, watched or not, and
an unwatched table pays one ``is None`` test per activation.

Some streamers need more than counting (``slow``): a streamer that is itself a mux gets a
recorder of its own (one per streamer, shared by all its activations), attached to each of its
iterations as it opens, a tree of recorders; a window streamer of :mod:`pescador.io` is asked
for its ``bytes_read`` when its activation ends; an activation adopted running has its earlier
items subtracted. The table calls :meth:`Recorder.started` and :meth:`Recorder.ending` for
those only, when the recipe has such streamers.
"""

from __future__ import annotations

import weakref
from operator import itemgetter, length_hint
from typing import Any

import numpy as np

from .._iterator import _BIG
from .._passes import _StreamerIterator
from ..io._windows import WindowIterator
from ..mux._slots import LOG_FLUSH

_STREAMER = itemgetter(0)
_TALLY = itemgetter(1)


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


class Recorder(list[Any]):
    """The counts of one mux (over all the iterations of it that it was attached to).

    The list itself is the log of the activations that ended since the last :meth:`flush`:
    ``(streamer, tally)`` pairs. Arrays indexed by streamer (they grow for a ChainMux over a
    generator of streams): ``done``, the activations that ended, and ``items`` they delivered;
    ``bytes`` read by the window streamers whose activations ended. An activation has ended or
    is running in a watched table, so the activations opened are ``done`` plus those running.

    ``slow``: whether the table must call :meth:`started` and :meth:`ending`: ``special``
    streamers (:func:`_special`), or activations adopted running that have not ended.
    ``tables``: the slot tables watched (for their running activations); ``base``: the items
    an adopted activation had delivered before; ``files``: the running activations of window
    streamers and their window iterators; ``children``: the recorders of the streamers that
    are muxes.
    """

    __slots__ = (
        "base",
        "bytes",
        "children",
        "done",
        "files",
        "items",
        "recipe",
        "slow",
        "special",
        "tables",
    )

    def __init__(self) -> None:
        super().__init__()
        self.done = np.zeros(0, np.int64)
        self.items = np.zeros(0, np.int64)
        self.bytes = np.zeros(0, np.int64)
        self.slow = False
        self.special = False  # some streamers are muxes or window streamers
        self.recipe: Any = None  # the streamers of the tables adopted (checked once)
        self.tables: weakref.WeakSet[Any] = weakref.WeakSet()
        self.base: dict[Any, int] = {}
        self.files: dict[Any, WindowIterator] = {}
        self.children: dict[int, Recorder] = {}

    def __eq__(self, other: object) -> bool:  # (a recorder is not a value: identity)
        return self is other

    __hash__ = object.__hash__  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Recorder of {len(self.done)} streamers, {len(self)} activations to add up>"

    # -- the slot table's hooks ---------------------------------------------------------------
    def ended(self, i: int, child: Any) -> None:
        """A slot closed: its activation ``child`` of streamer ``i`` ended (the table's
        :meth:`~pescador.mux._slots.SlotTable.open` logs replaced activations itself)."""
        self.append((i, child._tally))
        if self.slow:
            self.ending(i, child)
        if len(self) >= LOG_FLUSH:
            self.flush()

    def flush(self) -> None:
        """Add up the activations logged since the last flush."""
        n_log = len(self)
        if not n_log:
            return
        ids = np.fromiter(map(_STREAMER, self), np.intp, n_log)
        # (each tally's length is _BIG less the items its activation delivered)
        counts = _BIG - np.fromiter(map(length_hint, map(_TALLY, self)), np.int64, n_log)
        self.clear()
        self._grow(int(ids.max()) + 1)
        n = len(self.items)
        if n <= 16 * n_log:  # a dense count is cheaper than scattered adds
            self.items += np.bincount(ids, counts, n).astype(np.int64)
            self.done += np.bincount(ids, minlength=n)
        else:
            np.add.at(self.items, ids, counts)
            np.add.at(self.done, ids, 1)

    def _grow(self, n: int) -> None:
        more = n - len(self.done)
        if more > 0:
            pad = np.zeros(more, np.int64)
            self.done = np.concatenate([self.done, pad])
            self.items = np.concatenate([self.items, pad])
            self.bytes = np.concatenate([self.bytes, pad])

    # -- the long path: window streamers, nested muxes, adopted activations -------------------
    def started(self, i: int, child: Any) -> None:
        """Activation ``child`` of streamer ``i`` started (only when ``slow``)."""
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

    def ending(self, i: int, child: Any) -> None:
        """Activation ``child`` of streamer ``i`` ended (only when ``slow``; it is logged)."""
        if self.base:
            base = self.base.pop(child, 0)
            if base:
                self._grow(i + 1)
                self.items[i] -= base
                if not self.base:  # the adopted activations have all ended
                    self.slow = self.special
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
            self.special = self.special or any(map(_special, streamers))
            self.slow = self.slow or self.special
        self.tables.add(table)
        for child, i in zip(table.children, table.streamer_ids, strict=False):
            if child is not None:
                done = child.items_delivered
                if done:
                    self.base[child] = done
                    self.slow = True
                if self.slow:
                    self.started(i, child)
        table.stats = self

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
