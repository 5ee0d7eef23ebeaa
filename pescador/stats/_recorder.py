"""What a watched mux iteration counts: per streamer, its activations and their items (private).

A :class:`Recorder` is attached to the slot table of a mux iteration
(:class:`pescador.mux._slots.SlotTable`, its ``stats``). The table calls :meth:`Recorder.opened`
when a slot starts an activation and :meth:`Recorder.ended` when one is closed or replaced:
once per *activation*, never per item. The items come from what the iteration counts already,
each child iterator's ``items_delivered``: those of the activations that ended are added up
when they end, those of the running ones are read when a snapshot is taken. So the loop's
per-item path is the same, watched or not, and an unwatched table pays one ``is None`` test
per activation.

A streamer that is itself a mux gets a recorder of its own (one per streamer, shared by all its
activations), attached to each of its iterations as it opens: a tree of recorders. A window
streamer of :mod:`pescador.io` is asked for its ``bytes_read`` when its activation ends.
"""

from __future__ import annotations

from typing import Any

from .._passes import _StreamerIterator
from ..io._windows import WindowIterator


class Recorder:
    """The counts of one mux (over all the iterations of it that it was attached to).

    Lists indexed by streamer (they grow for a ChainMux over a generator of streams):
    ``activations`` opened, ``done``: activations that ended, and the ``items`` they delivered;
    ``bytes`` read by the window streamers whose activations ended. ``live`` maps each running
    activation (a child iterator) to its streamer, ``base`` the items it had delivered when
    the recorder was attached (a running iteration watched late, or a restored one).
    """

    __slots__ = ("activations", "base", "bytes", "children", "done", "files", "items", "live")

    def __init__(self, n: int = 0) -> None:
        self.activations = [0] * n
        self.done = [0] * n
        self.items = [0] * n
        self.bytes = [0] * n
        self.live: dict[Any, int] = {}
        self.base: dict[Any, int] = {}
        self.files: dict[Any, WindowIterator] = {}
        self.children: dict[int, Recorder] = {}

    def _grow(self, i: int) -> None:
        more = i + 1 - len(self.activations)
        for column in (self.activations, self.done, self.items, self.bytes):
            column.extend([0] * more)

    # -- the slot table's hooks (once per activation) -----------------------------------------
    def opened(self, i: int, child: Any) -> None:
        """Slot activation ``child`` of streamer ``i`` started (nothing delivered yet)."""
        try:
            self.activations[i] += 1
        except IndexError:
            self._grow(i)
            self.activations[i] += 1
        self.live[child] = i
        if type(child) is _StreamerIterator:
            source = child._source
            if type(source) is WindowIterator:
                self.files[child] = source
        else:
            self._nest(i, child)

    def ended(self, child: Any) -> None:
        """Slot activation ``child`` ended (closed, or replaced in its slot)."""
        i = self.live.pop(child, None)
        if i is None:  # (not seen opening: opened before the recorder was attached, and gone)
            return
        n = child.items_delivered
        if self.base:
            n -= self.base.pop(child, 0)
        self.items[i] += n
        self.done[i] += 1
        if self.files:
            source = self.files.pop(child, None)
            if source is not None:
                self.bytes[i] += source.bytes_read

    def _nest(self, i: int, child: Any) -> None:
        """A child that is a mux iteration: its own recorder counts its streamers."""
        policy = getattr(child, "policy", None)
        if policy is None:
            return
        sub = self.children.get(i)
        if sub is None:
            sub = self.children[i] = Recorder(len(policy.table.streamers))
        sub.adopt(policy.table)

    # -- attaching ----------------------------------------------------------------------------
    def adopt(self, table: Any) -> None:
        """Watch ``table`` from now on, with the activations it runs already (their items so
        far are not counted)."""
        table.stats = self
        for child, i in zip(table.children, table.streamer_ids, strict=False):
            if child is not None:
                self.opened(i, child)
                done = child.items_delivered
                if done:
                    self.base[child] = done

    # -- reading ------------------------------------------------------------------------------
    def export(self) -> dict[str, Any]:
        """The counts now, as JSON types: the ended activations' plus the running ones'.

        ``{"activations", "ended", "items", "bytes"}`` (lists by streamer) and ``"children"``
        (``[streamer, export]`` pairs for the streamers that are muxes).
        """
        items = list(self.items)
        nbytes = list(self.bytes)
        base = self.base
        files = self.files
        for child, i in self.live.items():
            items[i] += child.items_delivered - (base.get(child, 0) if base else 0)
            if files:
                source = files.get(child)
                if source is not None:
                    nbytes[i] += source.bytes_read
        return {
            "activations": list(self.activations),
            "ended": list(self.done),
            "items": items,
            "ended_items": list(self.items),
            "bytes": nbytes,
            "children": [[i, sub.export()] for i, sub in sorted(self.children.items())],
        }
