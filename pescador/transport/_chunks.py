"""Chunks of shared memory, framed pipes and the private directory (private; see
:mod:`pescador.transport`)."""

from __future__ import annotations

import collections
import contextlib
import mmap
import multiprocessing
import multiprocessing.connection
import os
import pickle
import select
import shutil
import sys
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

#: Alignment of arrays in shared memory, here and in ZMQStreamer's slots (a cache line;
#: enough for every dtype).
ALIGN = 64
#: Smallest chunk, and smallest file.
MIN_CHUNK = 256
FILE_BYTES = 1 << 20
#: Layouts a worker remembers (items whose shapes keep changing send theirs every time), and
#: cached write views.
MAX_LAYOUTS = 256
#: The items whose arrays travel through shared memory (others are pickled whole).
_CONTAINERS = {dict: "dict", tuple: "tuple", np.ndarray: "array"}
MAX_VIEWS = 4096

_HEADER = 4
_dumps = pickle.dumps
_loads = pickle.loads
_PROTOCOL = pickle.HIGHEST_PROTOCOL


def make_directory() -> str:
    """A private directory for chunk files: in RAM (``/dev/shm``) where available, named
    after the consumer's process id."""
    base = "/dev/shm" if sys.platform.startswith("linux") and os.path.isdir("/dev/shm") else None
    return tempfile.mkdtemp(prefix=f"pescador-{os.getpid()}-", dir=base)


def remove_directory(path: str) -> None:
    """Delete ``path``, trying again while another thread may still create files in it."""
    for _ in range(100):
        if not os.path.exists(path):
            return
        shutil.rmtree(path, ignore_errors=True)


def exit_with_consumer(directory: str | None) -> None:
    """In a worker process: a daemon thread that ends the process at once if its parent, the
    consumer, dies, after removing the consumer's directory (nobody else would)."""
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return
    sentinel = parent.sentinel

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        if directory is not None:
            remove_directory(directory)
        os._exit(3)

    threading.Thread(target=watch, name="pescador-watchdog", daemon=True).start()


def default_limit(directory: str, n_workers: int) -> int:
    """Bytes of chunk files per worker: half of the free space, shared among the workers."""
    try:
        stat = os.statvfs(directory)
        free = stat.f_bavail * stat.f_frsize
    except OSError:  # pragma: no cover - statvfs exists wherever /dev/shm does
        free = 1 << 30
    return max(FILE_BYTES, free // (2 * n_workers))


def aligned(n: int) -> int:
    """``n`` rounded up to a multiple of :data:`ALIGN`."""
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _chunk_size(n: int) -> int:
    return max(MIN_CHUNK, 1 << (n - 1).bit_length())


# ------------------------------------------------------------------------------ messages
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


# ------------------------------------------------------------------------------ the worker
class ChunkWriter:
    """The worker's side: files of chunks, reused once the consumer releases them."""

    def __init__(self, directory: str, worker: int, limit: int) -> None:
        self.directory = directory
        self.worker = worker
        self.limit = limit
        self.total = 0
        self.maps: list[mmap.mmap] = []  # file id -> mapping
        self.free: dict[int, list[tuple[int, int]]] = collections.defaultdict(list)
        self.size_of: dict[int, int] = {}  # file id -> its chunk size
        self.layouts: dict[Any, int] = {}  # signature -> layout id
        self.specs: list[tuple[list[Any], int]] = []  # layout id -> (entries, size)
        self.views: dict[tuple[int, int, int], list[np.ndarray]] = {}

    def release(self, chunks: list[tuple[int, int]]) -> None:
        for fid, offset in chunks:
            self.free[self.size_of[fid]].append((fid, offset))

    def _chunk(self, size: int) -> tuple[int, int] | None:
        chunk = _chunk_size(size)
        free = self.free[chunk]
        if free:
            return free.pop()
        file_bytes = max(chunk, FILE_BYTES)
        if self.total + file_bytes > self.limit:
            return None
        fid = len(self.maps)
        path = os.path.join(self.directory, f"w{self.worker}-{fid}")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            return None  # the directory is gone (the consumer is closing)
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, 0, file_bytes)
            else:  # pragma: no cover - macOS
                os.ftruncate(fd, file_bytes)
            mapping = mmap.mmap(fd, file_bytes)
        except OSError:  # no room in /dev/shm: this item goes through the pipe
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            return None
        os.close(fd)
        self.maps.append(mapping)
        self.size_of[fid] = chunk
        self.total += file_bytes
        free.extend((fid, offset) for offset in range(file_bytes - chunk, 0, -chunk))
        return fid, 0

    def _layout(self, item: Any) -> tuple[Any, ...] | None:
        """``(layout id, definition if new, entries, size, arrays, other values)``, or None
        for an item that is not a dict, tuple or array, or holds no array to share."""
        kind = type(item)
        if kind is dict:
            pairs: Iterable[tuple[Any, Any]] = item.items()
        elif kind is tuple:
            pairs = enumerate(item)
        elif kind is np.ndarray:
            pairs = ((None, item),)
        else:
            return None
        signature: list[tuple[Any, ...]] = [(kind,)]
        arrays = []
        rest = []
        for key, value in pairs:
            if type(value) is np.ndarray and value.nbytes and not value.dtype.hasobject:
                signature.append((key, type(key), value.dtype, value.shape))
                arrays.append(value)
            else:
                signature.append((key, type(key)))
                rest.append(value)
        if not arrays:
            return None
        sig = tuple(signature)
        lid = self.layouts.get(sig)
        if lid is not None:
            entries, size = self.specs[lid]
            return lid, None, entries, size, arrays, rest
        # The definition: the container, then per value (key,) or (key, dtype, shape, offset).
        entries = [_CONTAINERS[kind]]
        size = 0
        for entry in sig[1:]:
            if len(entry) == 2:
                entries.append((entry[0],))
            else:
                key, _, dtype, shape = entry
                entries.append((key, dtype, shape, size))
                size += aligned(dtype.itemsize * int(np.prod(shape, dtype=np.int64)))
        if len(self.specs) >= MAX_LAYOUTS:
            return -1, entries, entries, size, arrays, rest  # shapes vary: not remembered
        lid = len(self.specs)
        self.layouts[sig] = lid
        self.specs.append((entries, size))
        return lid, entries, entries, size, arrays, rest

    def pack(self, item: Any, make_room: Callable[[], None]) -> Any:
        """The message body for ``item``: its arrays copied into a chunk where they fit."""
        layout = self._layout(item)
        if layout is None:
            return ("p", item)
        lid, definition, entries, size, arrays, rest = layout
        if not self.free[_chunk_size(size)]:
            make_room()  # collect the chunks the consumer has released
        chunk = self._chunk(size)
        if chunk is None:
            return ("p", item)
        fid, offset = chunk
        key = (fid, offset, lid)
        targets = self.views.get(key) if lid >= 0 else None
        if targets is None:
            mapping = self.maps[fid]
            targets = [
                np.ndarray(e[2], e[1], mapping, offset + e[3]) for e in entries[1:] if len(e) == 4
            ]
            if lid >= 0 and len(self.views) < MAX_VIEWS:
                self.views[key] = targets
        for target, value in zip(targets, arrays, strict=True):
            np.copyto(target, value, casting="no")
        return ("s", lid, definition, fid, offset, size, rest)

    def close(self) -> None:
        self.views.clear()
        for mapping in self.maps:
            with contextlib.suppress(BufferError):
                mapping.close()
        self.maps.clear()


# ------------------------------------------------------------------------------ the consumer
class _ChunkRef(weakref.ref):
    """A weak reference to an item's base array that remembers its chunk."""

    __slots__ = ("chunk",)
    chunk: tuple[int, int]


class ChunkReader:
    """The consumer's side of one worker: maps its files, rebuilds items as views."""

    def __init__(self, directory: str, worker: int) -> None:
        self.directory = directory
        self.worker = worker
        self.maps: dict[int, mmap.mmap] = {}
        self.layouts: list[tuple[list[Any], list[Any]]] = []  # (entries, keys) per layout
        # Chunks whose arrays died: appended by weak-reference callbacks (any thread, any
        # time), drained by the consumer and sent back with a credit.
        self.released: collections.deque[tuple[int, int]] = collections.deque()
        self.refs: dict[int, _ChunkRef] = {}  # keeps the references (and callbacks) alive
        refs, released = self.refs, self.released

        def on_release(ref: _ChunkRef) -> None:
            refs.pop(id(ref), None)
            released.append(ref.chunk)

        self._on_release = on_release

    def _mapping(self, fid: int) -> mmap.mmap:
        mapping = self.maps.get(fid)
        if mapping is None:
            path = os.path.join(self.directory, f"w{self.worker}-{fid}")
            with open(path, "r+b") as f:
                mapping = mmap.mmap(f.fileno(), 0)
            self.maps[fid] = mapping
        return mapping

    def unpack(self, body: Any) -> Any:
        if body[0] == "p":
            return body[1]
        _, lid, definition, fid, offset, size, rest = body
        if definition is None:
            entries, keys = self.layouts[lid]
        else:
            entries, keys = definition, [entry[0] for entry in definition[1:]]
            if lid >= 0:
                self.layouts.append((entries, keys))
        mapping = self.maps.get(fid) or self._mapping(fid)
        base = np.frombuffer(mapping, np.uint8, size, offset)
        ref = _ChunkRef(base, self._on_release)
        ref.chunk = (fid, offset)
        self.refs[id(ref)] = ref
        values = iter(rest)
        out = [
            np.ndarray(entry[2], entry[1], base, entry[3]) if len(entry) == 4 else next(values)
            for entry in entries[1:]
        ]
        container = entries[0]
        if container == "dict":
            return dict(zip(keys, out, strict=True))
        if container == "tuple":
            return tuple(out)
        return out[0]

    def drain(self) -> list[tuple[int, int]]:
        released = self.released
        out = []
        while released:
            out.append(released.popleft())
        return out

    def close(self) -> None:
        self.refs.clear()  # nobody to return chunks to any more
        for mapping in self.maps.values():
            with contextlib.suppress(BufferError):  # arrays still view it: unmapped with them
                mapping.close()
        self.maps.clear()
