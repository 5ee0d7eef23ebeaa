"""The consumer's handle on one :class:`~pescador.parallel.ParallelStreamer` worker process
(private; see :mod:`pescador.parallel`).

A handle starts its worker with three one-way pipes: data (the worker's framed messages, read
by an :class:`~pescador.transport.Inbox`), control (credits and the chunks released with them,
and stop) and nudges (send what you hold). It keeps the worker's position for the state: the
last snapshot and the items delivered since. :func:`shutdown` stops every worker and removes
the private directory.
"""

from __future__ import annotations

import contextlib
import os
from multiprocessing.connection import Connection
from typing import Any

from .. import transport as _transport
from ..exceptions import WorkerError
from ._worker import Job, worker_main


class WorkerHandle:
    """The consumer's handle on one worker process."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: Any = None
        self.data: Connection | None = None
        self.control: Connection | None = None
        self.nudges: Connection | None = None
        self.inbox: _transport.Inbox | None = None
        self.decoder: _transport.Decoder | None = None
        self.done = False
        self.delivered_since_credit = 0
        self.half = 1  # credit the worker after this many items
        # Exact position: the worker's state after `base` of its items, and items since.
        self.snapshot: dict[str, Any] | None = None
        self.skip = 0
        # Watched (pescador.stats): the worker's counts, as of its last snapshot delivered.
        self.stats: dict[str, Any] | None = None

    def start(self, context: Any, job: Job) -> None:
        """Start the worker that does ``job``, with its pipes."""
        data_recv, data_send = context.Pipe(duplex=False)
        control_recv, control_send = context.Pipe(duplex=False)
        nudge_recv, nudge_send = context.Pipe(duplex=False)
        process = context.Process(
            target=worker_main,
            args=(job, (data_send, control_recv, nudge_recv)),
            daemon=True,
            name=f"pescador-worker-{self.index}",
        )
        _transport.start_process(
            process, f"ParallelStreamer worker {self.index}", context.get_start_method()
        )
        self.process = process
        data_send.close()
        control_recv.close()
        nudge_recv.close()
        self.data, self.control, self.nudges = data_recv, control_send, nudge_send
        self.inbox = _transport.Inbox(data_recv.fileno())
        directory = job.directory
        maps = None if directory is None else _transport.ChunkMaps(directory, self.index)
        self.decoder = _transport.Decoder(maps)
        self.half = job.options["half"]

    def credit(self) -> None:
        """Credit the worker with the items delivered, and return the chunks released."""
        assert self.control is not None and self.decoder is not None
        maps = self.decoder.maps
        with contextlib.suppress(OSError):
            released = [] if maps is None else maps.drain()
            message = (_transport.CREDIT, self.delivered_since_credit, released)
            _transport.send(self.control.fileno(), message)
        self.delivered_since_credit = 0

    def nudge(self) -> None:
        """Ask the worker to send the messages it holds."""
        assert self.nudges is not None
        with contextlib.suppress(OSError):
            os.write(self.nudges.fileno(), b"!")

    def died(self) -> WorkerError:
        """The error for a worker whose pipe ended without its end message."""
        self.process.join(1.0)
        return WorkerError(_transport.death_message(f"worker {self.index}", self.process.exitcode))


def shutdown(
    workers: list[WorkerHandle], directory: str | None, owner: int, timeout: float = 0.5
) -> None:
    """Stop every worker (politely, then by force) and delete the shared memory."""
    if os.getpid() != owner:
        return  # a forked child inherited this finaliser: the workers are not its own
    for w in workers:
        if w.control is not None:
            with contextlib.suppress(OSError, ValueError):
                _transport.send(w.control.fileno(), (_transport.STOP,))
    try:
        _transport.stop_processes(
            [w.process for w in workers if w.process], timeout, force=("kill",)
        )
    finally:
        for w in workers:
            for conn in (w.data, w.control, w.nudges):
                if conn is not None:
                    conn.close()
            w.data = w.control = w.nudges = w.process = None
        if directory is not None:
            _transport.remove_directory(directory)
