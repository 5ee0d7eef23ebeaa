"""The ZMQStreamer worker process: it runs the wrapped stream and sends its items.

:func:`_worker_main` is the process's target. It connects to the consumer's socket and says
hello (with the consumer's token), opens the wrapped stream (resumed from a state if asked,
skipping the items delivered since that state) and sends its items within the read-ahead
window (:class:`_Window`): the items produced and not yet acknowledged by the consumer. It
never blocks on a full queue: with its window full it waits for acknowledgements, listening
for the stop message, and with the window open it checks for one every few milliseconds. At
most every ``snapshot_every`` seconds of its time, an item carries the wrapped stream's state.
An exception is sent as an error report. Ctrl-C is ignored (it is the consumer's to handle),
and a worker whose consumer process dies exits at once, removing the private directory
(:func:`pescador.transport.exit_with_consumer`).

:func:`zmq_worker` is pescador 3.0's worker for hand-built consumers (public as
``pescador.zmq_stream.zmq_worker``): no flow control, no shared memory.
"""

from __future__ import annotations

import collections
import contextlib
import json
import signal
import time
from array import array
from collections.abc import Mapping
from typing import Any

import numpy as np
import zmq

from .. import _state
from .. import transport as _transport
from .._iterator import load_state_of, state_of
from .._seeds import Seed
from ..core import Streamer
from ..transport import CREDIT, END, STOP
from ._wire import HELLO, ItemEncoder, error_message, send, zmq_send_data

#: The default read-ahead window: at most this many items, and beyond the fewest, no more
#: than this many bytes of arrays.
_AUTO_MAX_ITEMS, _AUTO_MIN_ITEMS, _AUTO_BYTES = 64, 4, float(16 << 20)


class _Stopped(Exception):
    """The consumer asked the worker to stop."""


def _open_inner(
    streamer: Any, max_iter: int | None, seed: Seed, resume: Mapping[str, Any] | None
) -> tuple[Any, int]:
    """The wrapped stream's iterator, resumed if asked, and how many items to skip."""
    skip = 0
    if isinstance(streamer, Streamer):
        it: Any = streamer._iterate(max_iter, seed, False)
        if resume is not None:
            skip = resume["n"] - resume["base"]
            if resume["inner"] is not None:
                load_state_of(it, resume["inner"])
            else:
                skip = resume["n"]
    else:
        it = streamer(max_iter=max_iter)  # the pescador 3.0 contract for any other callable
        skip = resume["n"] if resume is not None else 0
    return it, skip


def _control(sock: Any, window: _Window, chunks: _transport.ChunkFiles | None) -> None:
    """Read the consumer's messages; wait while the window is full; raise on stop."""
    while window.full() or sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
        message = sock.recv()
        tag = message[:1]
        if tag == STOP:
            raise _Stopped
        if tag == CREDIT:
            values = array("q")
            values.frombytes(message[1:])
            window.acked(values[0])
            if chunks is not None:
                released = values[1:]
                chunks.release(zip(released[::2], released[1::2], strict=True))


#: Seconds between the worker's checks for a stop message while its window is open (it
#: always reads them when the window is full).
_CHECK_S = 0.005


class _Window:
    """The worker's read-ahead: the sizes of the items sent and not yet acknowledged.

    The worker may produce an item unless ``max_items`` are in flight, or at least
    ``min_items`` are and they hold ``budget`` bytes or more.
    """

    __slots__ = ("budget", "max_items", "min_items", "nbytes", "sizes")

    def __init__(self, max_items: int, min_items: int, budget: float) -> None:
        self.max_items = max_items
        self.min_items = min_items
        self.budget = budget
        self.sizes: collections.deque[int] = collections.deque()
        self.nbytes = 0

    def full(self) -> bool:
        n = len(self.sizes)
        return n >= self.max_items or (n >= self.min_items and self.nbytes >= self.budget)

    def sent(self, nbytes: int) -> None:
        self.sizes.append(nbytes)
        self.nbytes += nbytes

    def acked(self, count: int) -> None:
        sizes = self.sizes
        for _ in range(min(count, len(sizes))):
            self.nbytes -= sizes.popleft()


def _window_items(nbytes: int, max_items: int, min_items: int, budget: float) -> int:
    """How many items of ``nbytes`` bytes the window holds (the consumer's estimate)."""
    if budget == float("inf"):
        return max_items
    return int(min(max_items, max(min_items, budget // max(1, nbytes))))


def _serve(sock: Any, it: Any, skip: int, options: dict[str, Any], encoder: ItemEncoder) -> None:
    """Send the items of ``it`` (after skipping ``skip``) within the window, then the end."""
    source = iter(it)
    _state.skip(source, skip, "the stream wrapped by ZMQStreamer")  # delivered since the state
    copy = options["copy"]
    every = options["snapshot_every"]
    snapshots = every is not None and state_of(it) is not None
    window = _Window(*options["window"])
    chunks = encoder.encoder.chunks
    encode = encoder.encode

    def make_room() -> None:  # collect the chunks released by the consumer
        _control(sock, window, chunks)

    clock = time.perf_counter
    last_check = last_snapshot = -np.inf
    while True:
        try:
            item = next(source)
        except StopIteration:
            break
        now = clock()
        state = None
        if snapshots and now - last_snapshot >= every:
            last_snapshot = now
            try:
                state = json.dumps({"state": state_of(it)})
            except Exception as exc:  # the position cannot be described: say so, once
                state = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
                snapshots = False
        frames, nbytes = encode(item, make_room, state)
        send(sock, frames, copy)
        window.sent(nbytes)
        if window.full() or now - last_check >= _CHECK_S:
            last_check = now
            _control(sock, window, chunks)
    sock.send(END)


def _worker_main(
    address: str,
    token: bytes,
    streamer: _transport.Shipped,
    max_iter: int | None,
    seed: Seed,
    resume: Mapping[str, Any] | None,
    options: dict[str, Any],
) -> None:
    """The worker process: connect, send the stream's items, report an error, stop on request."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the consumer's to handle
    directory = options["directory"]
    watchdog = _transport.exit_with_consumer(directory)
    # Each pass draws other numbers from numpy's global RNG (forked workers would replay it).
    np.random.seed(int(seed.generator(0x7A4D).integers(2**32)))
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.ROUTING_ID, token)  # how the consumer tells this worker's messages
    sock.connect(address)
    limit = options["limit"]
    chunks = None if limit is None else _transport.ChunkFiles(directory, 0, limit)
    encoder = ItemEncoder(chunks)
    it = None
    try:
        sock.send(HELLO + token)
        try:
            it, skip = _open_inner(streamer.open(), max_iter, seed, resume)
            _serve(sock, it, skip, options, encoder)
        except _Stopped:
            return
        except BaseException as exc:
            sock.send(error_message(exc))
        # Wait for the consumer's stop: disconnecting earlier could drop unread messages.
        while sock.recv()[:1] != STOP:
            pass
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()
        encoder.close()
        sock.close(linger=0)
        context.term()
        watchdog.leave()


def zmq_worker(
    port: int,
    streamer: Any,
    terminate_event: Any,
    copy: bool = False,
    max_iter: int | None = None,
) -> None:
    """Send ``streamer(max_iter=max_iter)``'s items to ``tcp://127.0.0.1:port`` (3.0 API).

    Kept for compatibility with pescador 3.0 code that builds its own consumer with
    :func:`zmq_recv_data`. It connects a ``PAIR`` socket, sends every item with
    :func:`zmq_send_data`, stops early when ``terminate_event`` is set, and ends with an
    end-of-stream message; an exception is sent as an error message (re-raised by
    :func:`zmq_recv_data`) instead of ending the stream quietly. It then waits (up to 10 s)
    for ``terminate_event`` before disconnecting, so the consumer can read everything.
    :class:`ZMQStreamer` does not use it: it adds flow control and shared memory.
    """
    context = zmq.Context()
    sock = context.socket(zmq.PAIR)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.connect(f"tcp://127.0.0.1:{port}")
    try:
        try:
            for data in streamer(max_iter=max_iter):
                zmq_send_data(sock, data, copy=copy)
                if terminate_event.is_set():
                    break
            sock.send(END)
        except Exception as exc:
            sock.send(error_message(exc))
        terminate_event.wait(10)
    finally:
        sock.close()
        context.term()
