"""Stream in a background process: :class:`ZMQStreamer` (needs ``pip install pescador[zmq]``).

Each iteration of a :class:`ZMQStreamer` starts one worker process that runs the wrapped stream
and sends its items (dicts of numpy arrays) to the consumer over ZeroMQ (``DEALER`` to
``ROUTER``), on loopback TCP (``tcp://127.0.0.1``, never all interfaces) or an ``ipc://`` path
in a private directory; the worker's routing id is a secret token, and messages from any other
local process that connects are dropped unread. The consumer yields them as they arrive, while
the worker computes the next ones.

**Wire format.** One message per item. Items whose arrays total 32 KiB or more travel through
shared memory where available (Linux ``/dev/shm``), as they do in
:class:`~pescador.ParallelStreamer` (:mod:`pescador.transport`): the worker copies them once
into a *chunk* of a memory-mapped file in a private directory and sends which chunk; the
consumer builds the arrays on that memory: no copy on its side, no trip through the kernel's
socket buffers. A chunk is reused once the consumer has dropped every array of its item. Other
items (smaller ones, or when there is no room) go as one frame per array, sent and received
without copies (pyzmq copies frames under 64 KiB). C- and Fortran-ordered arrays keep their
layout; other arrays are sent as C-ordered copies. Every dtype without Python objects works
(structured, datetime, strings, big-endian included).

**Read-ahead.** The worker runs at most a bounded window ahead of the consumer: items produced
and not yet delivered. With ``prefetch=k``, the window is ``k`` items. By default it is at
most 64 items and, beyond 4 items, at most 16 MiB of arrays: 4 items of 16 MiB, 16 of 1 MiB,
64 small ones. (The consumer acknowledges items every half window; a deeper window for small
items amortises the cost of waking the other process.)

**Failures.** An exception in the worker (in the stream, or an item that is not a dict of
arrays) is re-raised in the consumer as :class:`~pescador.exceptions.WorkerError` carrying the
remote traceback; a worker that dies without a word (a signal, ``os._exit``) raises it too, and
so does one that sends nothing for ``stall_timeout`` seconds (off by default). A stream that
cannot be pickled (``spawn``, ``forkserver``) raises its own error with a note; one the worker
cannot unpickle raises ``WorkerError``. Without room in ``/dev/shm`` (not even an inode), items
travel through the socket.

**Shutdown.** Closing the iterator (``close()``, ``break``, ``del``, the end of the stream,
``max_iter``, an error, Ctrl-C) sends the worker a stop message, waits up to ``timeout``
seconds for it to exit, then kills it; the socket, the ZeroMQ context and the private directory
go with it. Dropping the iterator does this at once (reference counting, no cyclic garbage
collection needed). The worker never blocks on a full queue (with its window full it waits for
acknowledgements, listening for the stop message), so this takes milliseconds unless the
stream itself is stuck inside one item. A worker whose consumer process dies (killed alone, or
with its process group by SIGTERM or SIGHUP) exits and removes the private directory; if
nobody survives, the next ZMQStreamer or ParallelStreamer on the machine removes it.

**Checkpoints.** ``state_dict()`` describes the items *delivered* to the consumer: the wrapped
stream's state as the worker saw it at a recent item (taken at most every ``snapshot_every``
seconds of the worker's time) and the number of items delivered since. Resuming restarts the
worker from that state and skips those few items in the worker.

**Modules.** ``_streamer`` holds :class:`ZMQStreamer`, its iterator and the receiving loop;
``_wire`` the message format (:func:`zmq_send_data`, :func:`zmq_recv_data`,
:class:`WorkerDataError`); ``_worker`` the worker process and its read-ahead window
(:func:`zmq_worker`); ``_link`` the consumer's handle on one worker (process, socket,
directory, shutdown). Shared memory, layouts, the directory's life cycle and the error reports
are :mod:`pescador.transport`'s, shared with ParallelStreamer.
"""

from __future__ import annotations

try:
    import zmq  # noqa: F401  (fail here, with the extra to install, if pyzmq is missing)
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "pescador.zmq_stream needs pyzmq, which is not installed: pip install pescador[zmq]"
    ) from exc

from ._streamer import ZMQStreamer
from ._wire import SHM_MIN_BYTES, WorkerDataError, zmq_recv_data, zmq_send_data
from ._worker import zmq_worker

__all__ = [
    "SHM_MIN_BYTES",
    "WorkerDataError",
    "ZMQStreamer",
    "zmq_recv_data",
    "zmq_send_data",
    "zmq_worker",
]

for _public in (ZMQStreamer, WorkerDataError, zmq_recv_data, zmq_send_data, zmq_worker):
    _public.__module__ = __name__  # pickles and reprs name the public module
del _public
