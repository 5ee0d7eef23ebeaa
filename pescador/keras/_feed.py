"""The stream as Keras reads it: batches counted in order, the stream's state kept at chosen
counts, and batches read ahead kept for the next ``fit`` (private; see :mod:`pescador.keras`).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .._state import field, integer
from ..exceptions import PescadorError, StateError

__all__ = ["Feed"]


def _never(count: int) -> bool:
    return False


class Feed:
    """One stream, read batch after batch by a :class:`~pescador.keras.StreamDataset`.

    Counts are global: batch ``c`` is the ``c``-th batch since the stream started (a resumed
    feed continues the count of the state it was loaded from). The stream's state after batch
    ``c`` is kept (a *snapshot*) when ``want(c)`` says so, and can be rebuilt for any later
    count by replaying the stream from the snapshot before it.

    When a training loop confirms what it has trained (``tracked``), the batches handed out but
    not yet confirmed are kept; :meth:`rewind` puts them back in front of the stream, so the
    next ``fit`` starts with the first batch that was not trained.
    """

    def __init__(self, stream: Any, make: Callable[[Any], Any]) -> None:
        self.stream = stream
        self.make = make
        self.lock = threading.RLock()
        self.iterator: Any = None
        self.start_state: Any = None
        self.produced = 0  # batches the stream has produced (the live iterator's count)
        self.position = 0  # the count of the last batch handed out
        self.trained = 0  # the last count confirmed trained (tracked feeds)
        self.snapshots: dict[int, Any] = {}
        self.want: Callable[[int], bool] = _never
        self.tracked = False
        self.pending: deque[tuple[int, Any]] = deque()  # handed out, not confirmed trained
        self.requeued: deque[tuple[int, Any]] = deque()  # handed out again before the stream

    # -- reading ---------------------------------------------------------------------------
    def next(self) -> Any:
        """The next batch (as a Keras tuple); PescadorError if the stream has ended."""
        with self.lock:
            if self.requeued:
                count, batch = self.requeued.popleft()
            else:
                if self.iterator is None:
                    self._open()
                try:
                    item = next(self.iterator)
                except StopIteration:
                    raise PescadorError(
                        f"the stream ended after {self.produced} batches"
                    ) from None
                self.produced = count = self.produced + 1
                if self.want(count):
                    self.snapshots[count] = self.iterator.state_dict()
                batch = self.make(item)
            if self.tracked:
                self.pending.append((count, batch))
            self.position = count
            return batch

    def _open(self) -> None:
        self.iterator = self.stream.iterate(state=self.start_state)
        if self.produced not in self.snapshots:
            # The base of every replay: the state the stream starts from.
            self.snapshots[self.produced] = (
                self.start_state if self.start_state is not None else self.iterator.state_dict()
            )

    def restart(self) -> None:
        """Start the stream again from its beginning (a pass of a StreamDataset with steps)."""
        with self.lock:
            self.close()
            self.start_state = None
            self.produced = self.position = self.trained = 0
            self.snapshots.clear()
            self.pending.clear()
            self.requeued.clear()

    def close(self) -> None:
        with self.lock:
            iterator, self.iterator = self.iterator, None
            if iterator is not None:
                iterator.close()

    # -- training --------------------------------------------------------------------------
    def confirm(self, trained: int) -> None:
        """Batches up to ``trained`` have been trained: forget what only an earlier count
        needed."""
        with self.lock:
            if trained > self.position:
                raise PescadorError(
                    f"{trained} batches trained, but the dataset has handed out only "
                    f"{self.position}: was the dataset read outside this fit?"
                )
            self.trained = trained
            while self.pending and self.pending[0][0] <= trained:
                self.pending.popleft()
            older = [c for c in self.snapshots if c <= trained]
            for c in older:
                if c != max(older):
                    del self.snapshots[c]

    def rewind(self) -> None:
        """The batches handed out after the last trained one come first in the next reads."""
        with self.lock:
            self.requeued = deque([*self.pending, *self.requeued])
            self.pending.clear()
            self.position = self.trained

    # -- state -----------------------------------------------------------------------------
    def state_at(self, count: int) -> dict[str, Any]:
        """The state after batch ``count`` (``count >= `` the last confirmed count)."""
        with self.lock:
            state = self.snapshots.get(count)
            if state is None and count == self.produced:
                if self.iterator is None:
                    self._open()
                state = self.snapshots[count] = self.iterator.state_dict()
            if state is None:
                state = self.snapshots[count] = self._replay(count)
            return {"batches": count, "stream": state}

    def _replay(self, count: int) -> Any:
        bases = [c for c in self.snapshots if c <= count]
        if not bases or count > self.produced:
            raise PescadorError(
                f"no state for batch {count}: the stream has produced {self.produced} "
                f"batches and keeps states from batch {min(self.snapshots, default=0)} on"
            )
        base = max(bases)
        replay = self.stream.iterate(state=self.snapshots[base])
        try:
            for _ in range(count - base):
                next(replay)
            return replay.state_dict()
        finally:
            replay.close()

    def load(self, state: Any) -> None:
        """Continue from ``state`` (a dict from :meth:`state_at`) at the next read."""
        if not isinstance(state, dict):
            raise StateError(f"a StreamDataset state is a dict, not {type(state).__name__}")
        where = "StreamDataset state"
        count = integer(field(state, "batches", where), where, "batches")
        stream_state = field(state, "stream", where)
        with self.lock:
            self.close()
            self.start_state = stream_state
            self.produced = self.position = self.trained = count
            self.snapshots = {count: stream_state}
            self.pending.clear()
            self.requeued.clear()
