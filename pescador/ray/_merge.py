"""The consumer's side of a :class:`~pescador.ray.RayStreamer`: its handle on each actor and
the merge of their items (private; see :mod:`pescador.ray`).

The merge is :class:`pescador.parallel._merge.Merge`'s: each next item comes from an actor
drawn in proportion to the weight of its share (ordered), or from whichever actor has items
ready (unordered). Only where the items come from differs: an :class:`ActorHandle` keeps a
bounded number of calls in flight to its actor, and hands out the items of one answer at a time.
Like ``Merge``, it holds no reference to the iterator that runs it, so dropping the iterator
frees both by reference counting alone, and the finaliser kills the actors at once.
"""

from __future__ import annotations

import collections
import contextlib
import os
import time
from collections.abc import Iterator
from operator import length_hint
from typing import Any, cast

import ray
import ray.exceptions

from .. import transport as _transport
from ..exceptions import PescadorError, WorkerError
from ..mux._draws import Uniforms
from ..parallel._merge import _END, Merge
from ._actor import Batch

__all__ = ["ActorHandle", "RayMerge", "shutdown"]

#: Seconds between returns to Python while waiting for an answer.
_POLL = 0.2
_KEEP: Any = object()  # the position before an answer is the one the actor resumed from
_NONE: Any = object()


class ActorHandle:
    """The consumer's handle on one actor: its calls in flight, the items of the answer being
    delivered, and its exact position for the state (the actor's state after the last answer
    delivered in full, and the items delivered since)."""

    __slots__ = (
        "actor",
        "after",
        "args",
        "calls",
        "depth",
        "done",
        "error",
        "index",
        "items",
        "label",
        "last",
        "skip",
        "snapshot",
    )

    def __init__(self, index: int, label: str, args: tuple[int, int, float], depth: int) -> None:
        self.index = index
        self.label = label
        self.args = args  # next_batch's: items, bytes, seconds
        self.depth = depth  # calls in flight
        self.actor: Any = None
        self.calls: collections.deque[Any] = collections.deque()
        self.items: Iterator[Any] = iter(())
        self.snapshot: dict[str, Any] | None = None
        self.skip = 0
        self.done = False
        self.after: Any = _KEEP  # the actor's state after the answer being delivered
        self.last = False  # that answer ends the actor's share
        self.error: dict[str, Any] | None = None  # the error report that follows it

    def start(self, actor: Any) -> None:
        self.actor = actor
        for _ in range(self.depth):
            self.submit()

    def submit(self) -> None:
        self.calls.append(self.actor.next_batch.remote(*self.args))

    def ready(self) -> bool:
        """Whether an item (or the end, or the error) can be had without waiting."""
        return bool(length_hint(self.items)) or self.last or self.error is not None

    def fetch(self, timeout: float | None) -> None:
        """Wait for the oldest call's answer (up to ``timeout`` seconds) and take its items;
        keep ``depth`` calls in flight."""
        ref = self.calls[0]
        start = time.monotonic()
        while True:  # in slices, so that signals (Ctrl-C, timeouts) are handled meanwhile
            wait = _POLL if timeout is None else min(_POLL, start + timeout - time.monotonic())
            try:
                batch: Batch = ray.get(ref, timeout=max(wait, 0.0))
                break
            except ray.exceptions.GetTimeoutError:
                if timeout is not None and time.monotonic() - start >= timeout:
                    raise stalled(self.label, timeout) from None
            except ray.exceptions.RayError as exc:
                raise died(self.label, exc) from None
        self.calls.popleft()
        del ref  # the answer's arrays keep its object alive, and only they
        if self.after is not _KEEP:  # the previous answer was delivered in full
            self.snapshot, self.skip = self.after, 0
        items, state, ended, error = batch
        self.items = iter(items)
        self.after = state
        self.last = ended
        self.error = error
        if not ended:
            self.submit()


def stalled(who: str, timeout: float) -> WorkerError:
    return WorkerError(
        f"{who} sent nothing for {timeout} s (stall_timeout={timeout}): stopped, deadlocked, "
        "waiting for resources the cluster does not have, or slower than stall_timeout allows"
    )


def died(label: str, exc: BaseException) -> WorkerError:
    """The error for an actor that died or whose answer was lost (``exc``: Ray's)."""
    lines = str(exc).strip().splitlines()
    why = next((line.strip() for line in reversed(lines) if line.strip()), "")
    message = f"{label} died: {type(exc).__name__}"
    if why:
        message += f" ({why})"
    if isinstance(exc, ray.exceptions.RayTaskError):  # Ray failed on the answer (pickling)
        return WorkerError(f"{label} failed: {type(exc).__name__}", str(exc))
    return WorkerError(message)


class RayMerge(Merge):
    """:class:`~pescador.parallel._merge.Merge` over Ray actors; with ``endless`` (the parts
    of ``split(n, length=...)``, whose actors cycle), reaching the end is an error."""

    __slots__ = ("endless",)

    def __init__(
        self,
        handles: list[ActorHandle],
        shares: list[float],
        draws: Uniforms,
        ordered: bool,
        stall_timeout: float | None,
        endless: str | None,
    ) -> None:
        super().__init__(cast(Any, handles), shares, draws, ordered, stall_timeout)
        self.endless = endless

    def items(self) -> Iterator[Any]:
        yield from super().items()
        if self.endless is not None:
            raise PescadorError(self.endless)

    def _receive(self, w: Any) -> Any:
        """Actor ``w``'s next item (``_END`` when its share has ended)."""
        item = next(w.items, _NONE)
        while item is _NONE:
            if w.error is not None:
                w.done = True
                raise _transport.worker_error(w.error, w.label)
            if w.last:
                w.done = True
                w.snapshot, w.skip = w.after, 0
                return _END
            w.fetch(self.stall_timeout)
            item = next(w.items, _NONE)
        w.skip += 1
        return item

    def _unordered(self) -> Iterator[Any]:
        """Items from whichever actor has some ready: all of an answer, then the next."""
        live: list[ActorHandle] = [w for w in cast(Any, self.workers) if not w.done]
        receive = self._receive
        while live:
            w = next((w for w in live if w.ready()), None)
            if w is None:
                heads = [h.calls[0] for h in live]
                stall = self.stall_timeout
                start = time.monotonic()
                ready: list[Any] = []
                while not ready:  # in slices, as in fetch
                    ready, _ = ray.wait(heads, num_returns=1, timeout=_POLL)
                    if not ready and stall is not None and time.monotonic() - start >= stall:
                        raise stalled("no actor", stall)
                w = live[heads.index(ready[0])]  # (a failed call is ready: fetch raises)
            while True:
                item = receive(w)
                if item is _END:
                    live.remove(w)
                    break
                yield item
                if not length_hint(w.items):
                    break


def shutdown(handles: list[ActorHandle], owner: int) -> None:
    """Kill the actors (their calls in flight fail and their answers are freed)."""
    if os.getpid() != owner:
        return  # a forked child inherited this finaliser: the actors are not its own
    for w in handles:
        actor, w.actor = w.actor, None
        w.calls.clear()
        w.items = iter(())
        if actor is not None and ray.is_initialized():
            with contextlib.suppress(Exception):  # Ray is shutting down: the actor goes too
                ray.kill(actor, no_restart=True)
