"""Shared-memory transport of items from a worker process to the consumer (private).

Array payloads are never pickled and never pass through a pipe. A worker copies the arrays of
an item (a dict, a tuple, or an array itself; other items are pickled whole) once each into a
*chunk* of a memory-mapped file in a directory on
``/dev/shm`` (RAM) that the consumer owns, and sends a small message: which chunk, the values
that are not arrays, and the item's *layout* (keys, dtypes, shapes, offsets), which is sent
once and named by a number afterwards. The consumer maps each file once and builds the arrays
as views of the chunk: no copy on its side.

- **Chunks.** A worker's files are split into chunks of one size each (a power of two, 256
  bytes or more), so small items share a file and a held item pins only its own chunk. Files
  are allocated in full when created (``posix_fallocate``): a full ``/dev/shm`` is an error at
  creation, never a ``SIGBUS`` on write.
- **Lifetime.** An item's arrays are views of one base array; when the consumer's last
  reference to them goes, a weak-reference callback queues the chunk, and the consumer returns
  it to the worker with its next credit. Arrays are writable: the chunk is the consumer's until
  then.
- **Bounded.** A worker's files total at most ``limit`` bytes. An item that does not fit (the
  consumer holds many items, or ``/dev/shm`` is full) is pickled through the pipe instead:
  slower, never lost.
- **Messages** are pickles framed by a 4-byte length, written with one ``os.write`` and read in
  bulk (one ``os.read`` takes every message that has arrived).

Every file lives in the consumer's private directory, which the consumer deletes when it
closes (a worker deletes it if the consumer dies first), so no segment outlives them.
"""

from ._chunks import (
    ALIGN,
    FILE_BYTES,
    MAX_LAYOUTS,
    MAX_VIEWS,
    MIN_CHUNK,
    ChunkReader,
    ChunkWriter,
    Inbox,
    Outbox,
    aligned,
    default_limit,
    exit_with_consumer,
    frame,
    make_directory,
    remove_directory,
    send,
    write,
)

__all__ = [
    "ALIGN",
    "FILE_BYTES",
    "MAX_LAYOUTS",
    "MAX_VIEWS",
    "MIN_CHUNK",
    "ChunkReader",
    "ChunkWriter",
    "Inbox",
    "Outbox",
    "aligned",
    "default_limit",
    "exit_with_consumer",
    "frame",
    "make_directory",
    "remove_directory",
    "send",
    "write",
]
