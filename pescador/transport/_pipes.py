"""Framed messages on pipes: a worker's :class:`Outbox`, the consumer's :class:`Inbox` (private;
see :mod:`pescador.transport`).

A message is a pickle framed by a 4-byte length. Waking a process blocked on a pipe costs
the writer about as much as a small item's whole trip, so a worker writes several messages with
one ``os.write`` and the consumer takes every message that has arrived with one ``os.read``.
"""

from __future__ import annotations

import os
import pickle
import select
import threading
from typing import Any

_HEADER = 4
_dumps = pickle.dumps
_loads = pickle.loads
_PROTOCOL = pickle.HIGHEST_PROTOCOL


def frame(message: Any) -> bytes:
    """One message, pickled and framed."""
    body = _dumps(message, _PROTOCOL)
    return len(body).to_bytes(_HEADER, "little") + body


def write(fd: int, data: bytes) -> None:
    """Write all of ``data`` (blocking)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def send(fd: int, message: Any) -> None:
    """Write one framed message (blocking)."""
    write(fd, frame(message))


class Outbox:
    """A worker's messages to the consumer, written a few at a time.

    Waking a process blocked on a pipe costs the writer tens of microseconds on a virtual
    machine, as much as producing a small item; so messages are held until ``batch`` of them
    are waiting, or the first has waited ``max_delay`` seconds, or items come slower than
    that (then each goes at once), or :meth:`flush` is called (by the worker when it must
    wait for credit, and by another of its threads when the consumer asks: a generator that
    stalls never holds back an item it has produced).
    """

    __slots__ = ("batch", "fd", "first", "last", "lock", "max_delay", "pending")

    def __init__(self, fd: int, batch: int, max_delay: float) -> None:
        self.fd = fd
        self.batch = batch
        self.max_delay = max_delay
        self.pending: list[bytes] = []
        self.first = self.last = 0.0
        self.lock = threading.Lock()

    def put(self, message: Any, now: float) -> None:
        data = frame(message)
        with self.lock:
            pending = self.pending
            if not pending:
                self.first = now
            pending.append(data)
            slow = now - self.last >= self.max_delay
            self.last = now
            if slow or len(pending) >= self.batch or now - self.first >= self.max_delay:
                self._flush()

    def flush(self) -> None:
        with self.lock:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            data = b"".join(self.pending)
            self.pending.clear()
            write(self.fd, data)


class Inbox:
    """Framed messages from one pipe, read in bulk."""

    __slots__ = ("buffer", "fd", "poller", "pos")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()
        self.pos = 0
        self.poller = select.poll()
        self.poller.register(fd, select.POLLIN)

    def _end(self) -> int:
        """Where the next message ends in the buffer (0 if its header has not arrived)."""
        buffer, pos = self.buffer, self.pos
        if len(buffer) - pos < _HEADER:
            return 0
        return pos + _HEADER + int.from_bytes(buffer[pos : pos + _HEADER], "little")

    def pop(self) -> Any:
        """The next complete message, or ``None``."""
        buffer, end = self.buffer, self._end()
        if not end or len(buffer) < end:
            return None
        message = _loads(buffer[self.pos + _HEADER : end])
        if end == len(buffer):
            buffer.clear()
            self.pos = 0
        elif end > 1 << 16:
            del buffer[:end]
            self.pos = 0
        else:
            self.pos = end
        return message

    def complete(self) -> bool:
        """Whether a whole message is buffered."""
        end = self._end()
        return bool(end) and len(self.buffer) >= end

    def ready(self, timeout_ms: float) -> bool:
        """Whether bytes (or the end of the pipe) can be read within ``timeout_ms``."""
        return bool(self.poller.poll(timeout_ms))

    def fill(self) -> bool:
        """Read what has arrived (blocking if nothing has); False at the end of the pipe."""
        # Small reads, unless a large message is under way: ``os.read`` allocates its whole
        # size, and 1 MiB costs 15 µs where 64 KiB costs 1.
        buffer = self.buffer
        data = os.read(self.fd, max(1 << 16, self._end() - len(buffer)))
        buffer += data
        return bool(data)
