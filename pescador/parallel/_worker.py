"""The worker process of a :class:`~pescador.parallel.ParallelStreamer` (private).

A worker runs its share of the stream and sends each item to the consumer: arrays through a
shared-memory chunk (:mod:`pescador.transport`), the rest as a framed pickle through its data
pipe, written a few at a time (:class:`~pescador.transport.Outbox`). It stops producing when
the consumer has not yet taken ``prefetch`` of its items (or about 64 MiB of their arrays),
until a credit comes back through the control pipe with the chunks the consumer has released.
Every ``snapshot_every`` seconds an item carries the stream's state, so the consumer can
describe exactly what it has delivered.

A thread answers the consumer's nudges (send held messages now); another ends the worker,
removing the consumer's directory, if the consumer's process dies.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import threading
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

from .. import transport as _transport
from .._seeds import Seed
from .._sharding import WorkerInfo, set_worker

__all__ = ["worker_main"]


class _Stopped(Exception):
    """The consumer asked the worker to stop."""


class _Gone(Exception):
    """The consumer closed its end of the control pipe: it has stopped, or died."""


class _Control:
    """The worker's side of the control pipe: credits, released chunks, stop; and the items
    and bytes sent but not yet delivered."""

    __slots__ = ("chunks", "credit", "inbox", "inflight", "sizes")

    def __init__(self, fd: int, credit: int, chunks: _transport.ChunkFiles | None) -> None:
        self.inbox = _transport.Inbox(fd)
        self.credit = credit
        self.chunks = chunks
        self.sizes: collections.deque[int] = collections.deque()
        self.inflight = 0

    def sent(self, body: Any) -> None:
        size = body[3] if body[0] == "s" else 0
        self.sizes.append(size)
        self.inflight += size
        self.credit -= 1

    def collect(self, wait: bool = False) -> None:
        """Apply the consumer's messages; with ``wait``, block until one comes."""
        inbox = self.inbox
        while True:
            message = inbox.pop()
            if message is not None:
                if message[0] == _transport.STOP:
                    raise _Stopped
                self.credit += message[1]
                sizes = self.sizes
                for _ in range(min(message[1], len(sizes))):
                    self.inflight -= sizes.popleft()
                if self.chunks is not None:
                    self.chunks.release(message[2])
                wait = False
            elif not wait and not inbox.ready(0):
                return
            elif not inbox.fill():
                raise _Gone

    def blocked(self, budget: int) -> bool:
        """Whether the worker must wait: no credit, or too many bytes undelivered."""
        return self.credit <= 0 or (self.inflight >= budget and len(self.sizes) > 1)


def _answer_nudges(nudges: int, outbox: _transport.Outbox) -> None:
    """A daemon thread that sends held messages when the consumer asks (it is waiting)."""

    def answer() -> None:
        try:
            while os.read(nudges, 64):
                outbox.flush()
        except OSError:
            pass  # the consumer closed its end: it is stopping

    threading.Thread(target=answer, name="pescador-nudges", daemon=True).start()


class Job(NamedTuple):
    """What a worker is to do: its share (``worker`` of ``n_workers``) of ``stream`` with
    ``seed``, its items' chunks in ``directory`` (None: pickle every item), where to resume."""

    worker: int
    n_workers: int
    stream: _transport.Shipped  # unpickled by the worker (spawn, forkserver)
    seed: Seed
    directory: str | None
    options: Mapping[str, Any]
    resume: Mapping[str, Any] | None


def _watched(it: Any) -> Any:
    """The recorder of the share's mux (pescador.stats), attached before the first item."""
    from ..stats._watch import attach

    return attach(it)[1]


def worker_main(job: Job, pipes: tuple[Connection, Connection, Connection]) -> None:
    index, count, stream, seed, directory, options, resume = job
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the consumer handles Ctrl-C
    data, control, nudges = pipes
    prefetch = options["prefetch"]
    half = options["half"]  # the consumer credits this many items at once
    outbox = _transport.Outbox(data.fileno(), half, options["max_delay"])
    # Its own thread: it must act even while the main thread is blocked on a full pipe.
    watchdog = _transport.exit_with_consumer(directory)
    _answer_nudges(nudges.fileno(), outbox)
    set_worker(WorkerInfo(index, count))
    # No directory (no room in /dev/shm even for one): every item is pickled through the pipe.
    chunks = (
        None if directory is None else _transport.ChunkFiles(directory, index, options["limit"])
    )
    encoder = _transport.Encoder(chunks)
    snapshot_every = options["snapshot_every"]
    budget = options["prefetch_bytes"]
    inbox = _Control(control.fileno(), prefetch, chunks)
    collect = inbox.collect
    pack = encoder.pack
    put = outbox.put
    item_tag = _transport.ITEM
    clock = time.perf_counter
    it = None
    gone = False
    try:
        it = stream.open()._iterate(None, seed.child(index))
        skip = 0
        if resume is not None:
            if resume.get("state") is not None:
                it._load(resume["state"])
            skip = resume.get("skip", 0)
        # Watched: each snapshot carries the share's counts too (pescador.stats).
        counts = _watched(it) if options.get("stats") else None
        last_snapshot = 0.0
        for item in it:
            if skip:
                skip -= 1
                continue
            if inbox.credit <= half or inbox.inflight >= budget:
                collect()
                if inbox.blocked(budget):
                    outbox.flush()  # the consumer needs these to send more credit
                    while inbox.blocked(budget):
                        collect(wait=True)
            snapshot = None
            now = clock()
            if now - last_snapshot >= snapshot_every:
                snapshot = it._state_dict()
                if counts is not None:
                    snapshot = (snapshot, counts.export())
                last_snapshot = now
            body = pack(item, collect)
            put((item_tag, body, snapshot), now)
            inbox.sent(body)
        final: Any = it._state_dict()
        if counts is not None:
            final = (final, counts.export())
        outbox.put((_transport.END, None, final), clock())
        outbox.flush()
    except _Stopped:
        pass  # the consumer stopped us
    except (_Gone, BrokenPipeError, ConnectionResetError):
        gone = True  # the consumer went away: it may have died
    except BaseException as exc:
        with contextlib.suppress(Exception):
            outbox.put((_transport.ERROR, _transport.error_report(exc), None), 0.0)
            outbox.flush()
    finally:
        if it is not None:  # the stream's generators run their own clean-up now
            with contextlib.suppress(Exception):
                it.close()
        encoder.close()
        # A consumer that died may not be seen dead yet: give it a moment.
        watchdog.leave(_transport.DYING_WAIT if gone else 0.0)
