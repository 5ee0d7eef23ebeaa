"""Shared-memory transport of items from a worker process to the consumer (private), for both
:class:`~pescador.ParallelStreamer` (over pipes) and
:class:`~pescador.zmq_stream.ZMQStreamer` (over a ZeroMQ socket).

A worker copies the arrays of an item (a dict, a tuple, or an array itself) once each into a
*chunk* of a memory-mapped file in a directory on ``/dev/shm`` (RAM) that the consumer owns,
and sends a small message: which chunk, the values that are not arrays, and the item's
*layout* (keys, dtypes, shapes, memory orders, offsets), which is sent once and named by a
number afterwards. The consumer maps each file once and builds the arrays as views of the
chunk: no copy on its side. Array data is never pickled on the way.

- ``_directory``: the private directory's life cycle (made by the consumer, which holds a lock
  in it; removed by it, by a worker whose consumer died or by the next consumer when nobody
  survived), the default limit.
- ``_processes``: starting the worker processes (the stream shipped to them) and stopping
  them, their watchdog (a dead consumer's directory removed, SIGTERM and SIGHUP), what to say
  when one dies.
- ``_chunks``: the chunk allocator (:class:`ChunkFiles`: power-of-two chunks in files
  allocated in full, at most ``limit`` bytes) and the consumer's mappings
  (:class:`ChunkMaps`: a chunk goes back to the worker once no array views it).
- ``_pool``: chunks for a producer whose consumer sends nothing back (a worker of PyTorch's
  DataLoader, which owns the pipes): :class:`Pool` (a private directory, chunk files, and a
  shared byte per chunk that the consumer clears on release), :class:`PoolMaps`.
- ``_layout``: items split into layouts, arrays and values (:class:`Encoder`), and rebuilt
  (:class:`Decoder`); the message bodies; frames and JSON for ZeroMQ.
- ``_pipes``: framed pickles on pipes, written a few at a time, read in bulk.
- ``_messages``: the tags of the messages, and error reports.

An item that finds no room in shared memory (the consumer holds many items, or ``/dev/shm``
is full) travels another way, slower and never lost: pickled through a pipe, or as frames on
a socket. Every file lives in the consumer's private directory, which is removed when the
consumer closes (by a worker if the consumer dies first, by the next consumer on the machine if
nobody survives), so no segment outlives them. Without room for the directory itself (no free
inode), the streamers use no shared memory at all.
"""

from ._chunks import ChunkFiles, ChunkMaps
from ._directory import default_limit, make_directory, reclaim, remove_directory, shm_available
from ._layout import MAX_LAYOUTS, Decoder, Encoder, as_frame, layout_from_json, layout_json
from ._messages import CREDIT, END, ERROR, ITEM, STOP, error_report, worker_error
from ._pipes import Inbox, Outbox, send
from ._pool import Pool, PoolMaps, pool
from ._processes import (
    DYING_WAIT,
    Shipped,
    Watchdog,
    check_seconds,
    death_message,
    exit_with_consumer,
    start_process,
    stop_processes,
)

__all__ = [
    "CREDIT",
    "DYING_WAIT",
    "END",
    "ERROR",
    "ITEM",
    "MAX_LAYOUTS",
    "STOP",
    "ChunkFiles",
    "ChunkMaps",
    "Decoder",
    "Encoder",
    "Inbox",
    "Outbox",
    "Pool",
    "PoolMaps",
    "Shipped",
    "Watchdog",
    "as_frame",
    "check_seconds",
    "death_message",
    "default_limit",
    "error_report",
    "exit_with_consumer",
    "layout_from_json",
    "layout_json",
    "make_directory",
    "pool",
    "reclaim",
    "remove_directory",
    "send",
    "shm_available",
    "start_process",
    "stop_processes",
    "worker_error",
]
