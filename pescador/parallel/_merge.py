"""The consumer's loop over its workers' messages (private; see :mod:`pescador.parallel`).

:class:`Merge` takes each next item from a worker drawn in proportion to its share (ordered) or
from whichever worker is ready first, credits and nudges the workers while it waits, and
raises :class:`~pescador.exceptions.WorkerError` for a worker that failed or died. It holds no
reference to the iterator that runs it: the iterator holds the loop's generator, so dropping
the iterator (``break``, ``del``, an exception) frees both by reference counting alone, and its
finaliser stops the workers at once, without waiting for the cyclic garbage collector.
"""

from __future__ import annotations

import select
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator
from itertools import accumulate
from typing import Any

from .. import transport as _transport
from ..exceptions import WorkerError
from ..mux._draws import Uniforms
from ._handle import WorkerHandle

__all__ = ["Merge"]

_END: Any = object()
#: After this long (milliseconds) without a message, the consumer nudges the workers.
_NUDGE_AFTER_MS = 5


def _nothing() -> None:
    pass


class Merge:
    """The merge of the workers' items; :meth:`items` runs it, then calls ``close`` (set by the
    iterator: it stops the workers)."""

    __slots__ = ("close", "draws", "ordered", "shares", "stall_timeout", "workers")

    def __init__(
        self,
        workers: list[WorkerHandle],
        shares: list[float],
        draws: Uniforms,
        ordered: bool,
        stall_timeout: float | None = None,
    ) -> None:
        self.workers = workers
        self.stall_timeout = stall_timeout
        self.shares = shares
        self.draws = draws
        self.ordered = ordered
        self.close: Callable[[], None] = _nothing

    def items(self) -> Iterator[Any]:
        try:
            yield from self._ordered() if self.ordered else self._unordered()
        finally:
            self.close()

    def _message(self, w: WorkerHandle) -> Any:
        """Worker ``w``'s next message (waiting for it)."""
        inbox = w.inbox
        assert inbox is not None
        message = inbox.pop()
        while message is None:
            self._wait(inbox.poller, {inbox.fd: w})
            if not inbox.fill():
                raise w.died()
            message = inbox.pop()
        return message

    def _wait(self, poller: Any, by_fd: dict[int, WorkerHandle]) -> list[int]:
        """The descriptors, among ``by_fd``'s, with bytes to read, waiting as long as it takes
        (up to ``stall_timeout``): first crediting the workers (one may be waiting for credit:
        its bytes in flight bound it), after 5 ms nudging them (one may hold messages), and
        checking every 100 ms that they are alive."""
        ready = poller.poll(0)
        if ready:
            return [fd for fd, _ in ready]
        start = time.monotonic()
        for w in by_fd.values():
            if w.delivered_since_credit:
                w.credit()
        ready = poller.poll(_NUDGE_AFTER_MS)
        if not ready:
            for w in by_fd.values():
                w.nudge()
        stall = self.stall_timeout
        while not ready:
            ready = poller.poll(100)
            if not ready:
                for w in by_fd.values():
                    assert w.inbox is not None
                    if not w.process.is_alive() and not w.inbox.ready(0):
                        raise w.died()
                waited = time.monotonic() - start
                if stall is not None and waited >= stall:
                    raise _stalled(sorted(w.index for w in by_fd.values()), waited, stall)
        return [fd for fd, _ in ready]

    def _receive(self, w: WorkerHandle) -> Any:
        """The next item of worker ``w`` (``_END`` when it has ended)."""
        kind, payload, snapshot = self._message(w)
        if kind == _transport.ITEM:
            if snapshot is not None:
                if type(snapshot) is tuple:  # watched: (state, the worker's counts)
                    snapshot, w.stats = snapshot
                w.snapshot, w.skip = snapshot, 0  # the worker's state right after this item
            else:
                w.skip += 1
            assert w.decoder is not None
            item = w.decoder.unpack(payload)
            w.delivered_since_credit += 1
            if w.delivered_since_credit >= w.half:
                w.credit()
            return item
        if kind == _transport.END:
            w.done = True
            if type(snapshot) is tuple:
                snapshot, w.stats = snapshot
            w.snapshot, w.skip = snapshot, 0
            return _END
        raise _transport.worker_error(payload, f"worker {w.index}")

    def _ordered(self) -> Iterator[Any]:
        """Items drawn from worker ``w`` with probability proportional to its share."""
        draws = self.draws
        receive = self._receive
        while True:
            live = [w for w in self.workers if not w.done and self.shares[w.index] > 0]
            if not live:
                return
            if len(live) == 1:  # nothing to draw: one worker left
                w = live[0]
                while (item := receive(w)) is not _END:
                    yield item
                continue
            cum = list(accumulate(self.shares[w.index] for w in live))
            total = cum[-1]
            last = len(live) - 1
            while True:
                w = live[min(bisect_right(cum, draws() * total), last)]
                item = receive(w)
                if item is _END:
                    break  # that worker has ended: draw again among the others
                yield item

    def _unordered(self) -> Iterator[Any]:
        """Items from whichever worker is ready first."""
        poller = select.poll()
        by_fd: dict[int, WorkerHandle] = {}
        for w in self.workers:
            if not w.done and w.inbox is not None:
                poller.register(w.inbox.fd, select.POLLIN)
                by_fd[w.inbox.fd] = w
        while by_fd:
            for fd in self._wait(poller, by_fd):
                w = by_fd[fd]
                inbox = w.inbox
                assert inbox is not None
                if not inbox.fill():
                    raise w.died()
                while inbox.complete():
                    item = self._receive(w)
                    if item is _END:
                        poller.unregister(fd)
                        del by_fd[fd]
                        break
                    yield item


def _stalled(indices: list[int], waited: float, stall: float) -> WorkerError:
    who = f"worker {indices[0]}" if len(indices) == 1 else f"workers {indices}"
    return WorkerError(
        f"{who} sent nothing for {waited:.1f} s (stall_timeout={stall}): stopped, deadlocked, "
        "swapping, or slower than stall_timeout allows"
    )
