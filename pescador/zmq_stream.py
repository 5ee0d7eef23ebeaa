"""Stream in a background process: :class:`ZMQStreamer` (needs ``pip install pescador[zmq]``).

Each iteration of a :class:`ZMQStreamer` starts one worker process that runs the wrapped stream
and sends its items (dicts of numpy arrays) to the consumer over a ZeroMQ ``PAIR`` socket, on
loopback TCP (``tcp://127.0.0.1``, never all interfaces) or an ``ipc://`` path in a private
directory. The consumer yields them as they arrive, while the worker computes the next ones.

**Wire format.** One message per item: a header frame (for each array, in sorted key order:
key, dtype, shape, memory order, and where its bytes are), then one frame per array, sent and
received without copies (pyzmq copies frames under 64 KiB). Items whose arrays total 32 KiB or
more travel through shared memory instead where available (Linux ``/dev/shm``): the worker
copies them once into a *slot* of a private memory-mapped file and the consumer builds its
arrays on that memory: no copy on its side, no trip through the kernel's socket buffers. A
slot is reused once the consumer has dropped every array of its item. C- and Fortran-ordered
arrays keep their layout; other arrays are sent as C-ordered copies. Every dtype without
Python objects works (structured, datetime, strings, big-endian included).

**Read-ahead.** The worker runs at most a bounded window ahead of the consumer: items produced
and not yet delivered. With ``prefetch=k``, the window is ``k`` items. By default it is at
most 64 items and, beyond 4 items, at most 16 MiB of arrays: 4 items of 16 MiB, 16 of 1 MiB,
64 small ones. (The consumer acknowledges items every half window; a deeper window for small
items amortises the cost of waking the other process.)

**Failures.** An exception in the worker (in the stream, or an item that is not a dict of
arrays) is re-raised in the consumer as :class:`~pescador.exceptions.WorkerError` carrying the
remote traceback; a worker that dies without a word (a signal, ``os._exit``) raises it too.

**Shutdown.** Closing the iterator (``close()``, ``break`` then garbage collection, the end of
the stream, ``max_iter``, an error, Ctrl-C) sends the worker a stop message, waits up to
``timeout`` seconds for it to exit, then terminates it (and kills it if it must); the socket,
the ZeroMQ context and the private directory go with it. The worker never blocks on a full
queue (with its window full it waits for acknowledgements, listening for the stop message), so
this takes milliseconds unless the stream itself is stuck inside one item. A worker whose
consumer process dies exits at once, and removes the private directory.

**Checkpoints.** ``state_dict()`` describes the items *delivered* to the consumer: the wrapped
stream's state as the worker saw it at a recent item (taken at most every ``snapshot_every``
seconds of the worker's time) and the number of items delivered since. Resuming restarts the
worker from that state and skips those few items in the worker.
"""

from __future__ import annotations

import ast
import collections
import contextlib
import copy as copy_module
import hmac
import inspect
import json
import mmap
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time
import traceback
import weakref
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

try:
    import zmq
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "pescador.zmq_stream needs pyzmq, which is not installed: pip install pescador[zmq]"
    ) from exc

from . import _state
from ._iterator import StreamIterator, load_state_of, state_of
from ._rng import InheritedSeed, Seed, resolve_seed
from .core import Streamer
from .exceptions import DataError, PescadorError, StateError, WorkerError

__all__ = ["ZMQStreamer"]

# Message tags: the first byte of a message's first frame.
_HELLO, _ITEM, _END, _ERROR = b"H", b"D", b"X", b"E"  # worker -> consumer
_CREDIT, _STOP = b"C", b"S"  # consumer -> worker
_ITEM_BYTE = _ITEM[0]

#: Items whose arrays total at least this many bytes travel through shared memory.
SHM_MIN_BYTES = 32 << 10
#: Alignment of arrays inside a shared-memory slot (a cache line; enough for every dtype).
_ALIGN = 64
#: The default read-ahead window: at most this many items, and beyond the fewest, no more
#: than this many bytes of arrays.
_AUTO_MAX_ITEMS, _AUTO_MIN_ITEMS, _AUTO_BYTES = 64, 4, float(16 << 20)
#: How often the consumer checks that a silent worker is still alive (seconds).
_POLL_S = 0.1
#: The shared-memory directory, where there is one.
_SHM_DIR = "/dev/shm"


class WorkerDataError(WorkerError, DataError):
    """A worker's item was not a dict of numpy arrays (a :class:`DataError` in the worker).

    Both a :class:`~pescador.exceptions.WorkerError` (it carries the remote traceback) and a
    :class:`~pescador.exceptions.DataError`.
    """


# ---------------------------------------------------------------------------- wire format
def _dtype_token(dtype: np.dtype[Any]) -> str:
    """A dtype as text: ``dtype.str``, or a structured dtype's description as a literal."""
    if dtype.fields is None:
        return dtype.str
    return repr(npy_format.dtype_to_descr(dtype))  # read back with ast.literal_eval


_DTYPES: dict[str, np.dtype[Any]] = {}


def _dtype_of(token: str) -> np.dtype[Any]:
    dtype = _DTYPES.get(token)
    if dtype is None:
        if token.startswith("["):
            dtype = npy_format.descr_to_dtype(ast.literal_eval(token))
        else:
            dtype = np.dtype(token)
        if dtype.hasobject:
            raise PescadorError(f"received an array of dtype {token!r}, which holds objects")
        if len(_DTYPES) > 256:
            _DTYPES.clear()
        _DTYPES[token] = dtype
    return dtype


def _arrays(data: Any) -> list[tuple[Any, np.ndarray, str]]:
    """``(key, array, order)`` for each value of ``data``, checked, in sorted key order.

    ``order`` is ``"F"`` for a Fortran-ordered array (sent as is), else ``"C"`` (a
    non-contiguous array is replaced by a C-ordered copy).
    """
    if not isinstance(data, dict):
        raise DataError(
            f"ZMQStreamer sends dicts of numpy arrays; got an item of type {type(data).__name__}"
        )
    try:
        keys = sorted(data)
    except TypeError:  # keys of mixed types: keep the producer's order
        keys = list(data)
    out = []
    for key in keys:
        value = data[key]
        if not isinstance(key, (str, int)):
            raise DataError(f"ZMQStreamer sends str or int keys; got the key {key!r}")
        if not isinstance(value, np.ndarray) or isinstance(value, np.ma.MaskedArray):
            raise DataError(
                f"ZMQStreamer sends numpy arrays only; item[{key!r}] is a "
                f"{type(value).__name__} (wrap scalars and lists with np.asarray)"
            )
        if value.dtype.hasobject:
            raise DataError(
                f"item[{key!r}] has dtype {value.dtype}: arrays holding Python objects cannot "
                "be sent to another process (convert them to a fixed-width dtype)"
            )
        if type(value) is not np.ndarray:
            value = value.view(np.ndarray)
        flags = value.flags
        if flags.c_contiguous:
            out.append((key, value, "C"))
        elif flags.f_contiguous:
            out.append((key, value, "F"))
        else:
            out.append((key, np.ascontiguousarray(value), "C"))
    return out


def _raw(array_: np.ndarray, order: str) -> Any:
    """The bytes of a contiguous array as a flat uint8 view (no copy)."""
    if not array_.nbytes:
        return b""
    return (array_.T if order == "F" else array_).reshape(-1).view(np.uint8)


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


#: Flags (second byte of a data message's header frame): what follows the flags.
_HAS_SLOT, _HAS_EVICT, _HAS_STATE = 1, 2, 4
_FLAG_BYTES = [bytes([flags]) for flags in range(8)]
#: A shared-memory item's slot id and slot size, right after the flags.
_SLOT = struct.Struct("<qq")


class _Encoder:
    """The worker's side of the wire format, with a cache of headers (items repeat them).

    A data message starts with the header frame ``b"D" + flags [+ slot] + JSON``: the slot
    (two int64: id and size) if the item is in shared memory, then a JSON list of
    ``[key, dtype, shape, order, offset]`` per array (``offset`` -1: the array is in the next
    data frame; otherwise at that offset of the item's slot). If flagged, an evict frame
    (int64 ids of slots the consumer should unmap) and a state frame (JSON) follow; then one
    data frame per array not in shared memory.
    """

    def __init__(self, slots: _SlotWriter | None) -> None:
        self.slots = slots
        self.headers: dict[tuple[Any, ...], tuple[bytes, list[int]]] = {}
        #: The number of bytes of arrays in the last item encoded.
        self.nbytes = 0

    def header(
        self, arrays: list[tuple[Any, np.ndarray, str]], shm: bool
    ) -> tuple[bytes, list[int]]:
        signature = (shm, *[(k, a.dtype, a.shape, o) for k, a, o in arrays])
        cached = self.headers.get(signature)
        if cached is None:
            entries = []
            offsets = []
            offset = 0
            for key, value, order in arrays:
                if shm and value.nbytes:
                    where = offset
                    offset += _aligned(value.nbytes)
                else:
                    where = -1
                offsets.append(where)
                token = _dtype_token(value.dtype)
                entries.append([key, token, list(value.shape), order, where])
            cached = (json.dumps(entries).encode(), offsets)
            if len(self.headers) > 64:
                self.headers.clear()
            self.headers[signature] = cached
        return cached

    def encode(self, data: Any, state: bytes | None = None) -> list[Any]:
        """The frames of one item (``state``: the JSON of a state frame to attach)."""
        arrays = _arrays(data)
        slots = self.slots
        sid = None
        total = 0
        for _, value, _ in arrays:
            total += _aligned(value.nbytes)
        self.nbytes = total
        if slots is not None and total >= SHM_MIN_BYTES:
            sid = slots.acquire(total)
        body, offsets = self.header(arrays, sid is not None)
        if sid is None:
            head = _ITEM + _FLAG_BYTES[0 if state is None else _HAS_STATE] + body
            frames = [head] if state is None else [head, state]
            frames.extend([_raw(value, order) for _, value, order in arrays])
            return frames
        assert slots is not None
        flags = _HAS_SLOT
        frames = [b""]
        if slots.evicted:
            flags |= _HAS_EVICT
            frames.append(array("q", slots.evicted).tobytes())
            slots.evicted.clear()
        if state is not None:
            flags |= _HAS_STATE
            frames.append(state)
        frames[0] = _ITEM + _FLAG_BYTES[flags] + _SLOT.pack(sid, slots.sizes[sid]) + body
        for target, (_, value, _) in zip(
            slots.targets(sid, body, arrays, offsets), arrays, strict=True
        ):
            if target is None:
                frames.append(b"")  # an empty array: no bytes to place
            else:
                np.copyto(target, value, casting="no")
        return frames


class _Layout:
    """A parsed header: per array, key, dtype, shape, order, element count, slot offset."""

    __slots__ = ("entries", "nbytes")

    def __init__(self, body: bytes) -> None:
        entries = []
        self.nbytes = 0  # as the worker counts them (see _Encoder.encode)
        for key, token, shape, order, where in json.loads(body):
            dtype = _dtype_of(token)
            shape = tuple(int(s) for s in shape)
            if min(shape, default=0) < 0 or order not in ("C", "F"):
                raise PescadorError(f"malformed ZMQStreamer header entry for key {key!r}")
            count = int(np.prod(shape))
            entries.append((key, dtype, shape, order, count, int(where)))
            self.nbytes += _aligned(count * dtype.itemsize)
        self.entries = entries


_LAYOUTS: dict[bytes, _Layout] = {}


def _layout(body: bytes) -> _Layout:
    layout = _LAYOUTS.get(body)
    if layout is None:
        layout = _Layout(body)
        if len(_LAYOUTS) > 256:
            _LAYOUTS.clear()
        _LAYOUTS[body] = layout
    return layout


def _frame_array(
    frame: Any, dtype: np.dtype[Any], shape: tuple[int, ...], order: str, count: int
) -> np.ndarray:
    if not count or not dtype.itemsize:
        out = np.empty(shape, dtype, order=order)  # type: ignore[call-overload]
    else:
        flat = np.frombuffer(frame, dtype, count)
        out = flat.reshape(shape[::-1]).T if order == "F" else flat.reshape(shape)
        if not out.flags.aligned:  # small frames may sit at any offset of a receive buffer
            out = out.copy(order="A")
    out.flags.writeable = False
    return out


def _bytes(frame: Any) -> bytes:
    return frame if isinstance(frame, bytes) else frame.bytes


def _decode(
    head: bytes, parts: list[Any], reader: _SlotReader | None
) -> tuple[dict[Any, Any], bytes | None, int]:
    """The item of a data message (``head`` is ``parts[0]``'s bytes), its state frame (or
    None) and its size in bytes."""
    flags = head[1]
    k = 1  # the next frame to read
    base = None
    if flags & _HAS_SLOT:
        if reader is None:
            raise PescadorError("received a shared-memory item without a shared-memory reader")
        sid, size = _SLOT.unpack_from(head, 2)
        layout = _layout(head[2 + _SLOT.size :])
        if flags & _HAS_EVICT:
            evicted = array("q")
            evicted.frombytes(_bytes(parts[k]))
            reader.evict(evicted)
            k += 1
        base = reader.base(sid, size)
    else:
        layout = _layout(head[2:])
    state = None
    if flags & _HAS_STATE:
        state = _bytes(parts[k])
        k += 1
    item = {}
    for key, dtype, shape, order, count, where in layout.entries:
        if where >= 0:
            if base is None:
                raise PescadorError("received a shared-memory array without its slot")
            value = np.ndarray(shape, dtype, base, where, order=order)
            value.flags.writeable = False
        else:
            value = _frame_array(parts[k], dtype, shape, order, count)
            k += 1
        item[key] = value
    return item, state, layout.nbytes


def _send(sock: Any, frames: list[Any], copy: bool) -> None:
    """Send ``frames`` as one message (cheaper than ``send_multipart`` per frame)."""
    send = sock.send
    more = zmq.SNDMORE
    last = len(frames) - 1
    send(frames[0], more if last else 0, copy=True)
    for i in range(1, last + 1):
        send(frames[i], more if i < last else 0, copy=copy)


def zmq_send_data(
    socket: Any, data: Mapping[Any, Any], flags: int = 0, copy: bool = True, track: bool = False
) -> Any:
    """Send a dict of numpy arrays as one multipart message (the module's wire format).

    Parameters
    ----------
    socket : zmq.Socket
        Where to send.
    data : dict
        Keys ``str`` or ``int``; values numpy arrays of any non-object dtype and layout.
    flags, copy, track
        As for ``socket.send_multipart``; ``copy=False`` sends the arrays without copying
        them (do not modify them until the message is sent).

    Returns
    -------
    zmq.MessageTracker or None
        The tracker when ``track`` is true.

    Raises
    ------
    DataError
        If ``data`` is not a dict of numpy arrays.
    """
    frames = _Encoder(None).encode(data)
    return socket.send_multipart(frames, flags=flags, copy=copy, track=track)


def zmq_recv_data(socket: Any, flags: int = 0, copy: bool = True, track: bool = False) -> Any:
    """Receive one message sent by :func:`zmq_send_data` (or by a ZMQStreamer worker).

    Returns
    -------
    dict or None
        The dict of (read-only) arrays; ``None`` for an end-of-stream message (an empty dict
        is a legitimate item, unlike in pescador 3.0).

    Raises
    ------
    WorkerError
        For an error message sent by a worker (:class:`WorkerDataError` for a bad item).
    """
    frames = socket.recv_multipart(flags=flags, copy=copy, track=track)
    head = _bytes(frames[0])
    tag = head[:1]
    if tag == _ITEM:
        return _decode(head, frames, None)[0]
    if tag == _END:
        return None
    if tag == _ERROR:
        raise _remote_error(head[1:])
    raise PescadorError(f"unexpected message on a pescador ZMQ socket (tag {tag!r})")


def _error_message(exc: BaseException) -> bytes:
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the error
        text = "<unprintable>"
    kind = type(exc)
    return (
        _ERROR
        + json.dumps(
            {
                "type": f"{kind.__module__}.{kind.__qualname__}",
                "message": text,
                "traceback": "".join(traceback.format_exception(kind, exc, exc.__traceback__)),
                "data_error": isinstance(exc, DataError),
            }
        ).encode()
    )


def _remote_error(payload: bytes) -> WorkerError:
    try:
        info = json.loads(payload)
        name = str(info["type"]).removeprefix("builtins.")
        message = f"the ZMQStreamer worker failed: {name}: {info['message']}"
        cls = WorkerDataError if info.get("data_error") else WorkerError
        return cls(message, str(info["traceback"]))
    except (ValueError, KeyError, TypeError):
        return WorkerError("the ZMQStreamer worker failed (unreadable error report)")


# ---------------------------------------------------------------------- shared memory
def _shm_available() -> bool:
    return (
        sys.platform.startswith("linux")
        and os.path.isdir(_SHM_DIR)
        and os.access(_SHM_DIR, os.W_OK)
        and hasattr(os, "posix_fallocate")
    )


class _SlotWriter:
    """The worker's pool of shared-memory slots: one file each, reused once released.

    At most ``limit`` slots exist; when all are in use the item goes through the socket.
    A slot file is created in the consumer's private directory; the consumer deletes the
    name as soon as it has mapped it. A free slot too small for an item is evicted (the
    consumer is told, and unmaps it). Released slots are reused last-in first-out: the most
    recent one is still in the CPU caches.
    """

    def __init__(self, directory: str, limit: int) -> None:
        self.directory = directory
        self.limit = limit
        self.maps: dict[int, mmap.mmap] = {}
        self.sizes: dict[int, int] = {}
        self.free: list[int] = []
        self.evicted: list[int] = []
        #: Per slot and header, the arrays to copy an item's arrays into.
        self.views: dict[int, dict[bytes, list[np.ndarray | None]]] = {}
        self.next_id = 0
        self.broken = False

    def acquire(self, size: int) -> int | None:
        free = self.free
        if free and size <= self.sizes[free[-1]] <= 4 * size:
            return free.pop()
        best = None
        for sid in free:
            capacity = self.sizes[sid]
            if capacity >= size and (best is None or capacity < self.sizes[best]):
                best = sid
        if best is not None and (self.sizes[best] <= 4 * size or len(self.maps) >= self.limit):
            free.remove(best)
            return best
        if self.broken:
            return None
        if len(self.maps) >= self.limit:
            if not free:
                return None
            victim = max(free, key=self.sizes.__getitem__)
            free.remove(victim)
            self.drop(victim)
            self.evicted.append(victim)
        return self.create(size)

    def create(self, size: int) -> int | None:
        sid = self.next_id
        self.next_id += 1
        capacity = -(-size // mmap.PAGESIZE) * mmap.PAGESIZE
        path = os.path.join(self.directory, str(sid))
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            # Reserve the memory now: on a full /dev/shm (small in containers) a plain
            # ftruncate would succeed and the first write would kill us with SIGBUS.
            os.posix_fallocate(fd, 0, capacity)
            self.maps[sid] = mmap.mmap(fd, capacity)
        except OSError:
            os.unlink(path)
            self.broken = True  # no more shared memory for this iteration: use the socket
            return None
        finally:
            os.close(fd)
        self.sizes[sid] = capacity
        self.views[sid] = {}
        return sid

    def targets(
        self,
        sid: int,
        body: bytes,
        arrays: list[tuple[Any, np.ndarray, str]],
        offsets: list[int],
    ) -> list[np.ndarray | None]:
        """Arrays on slot ``sid`` laid out as ``body`` says (built once per slot and layout)."""
        views = self.views[sid]
        found = views.get(body)
        if found is None:
            mapping = self.maps[sid]
            found = [
                None
                if where < 0
                else np.ndarray(
                    value.shape,
                    value.dtype,
                    mapping,
                    where,
                    order=order,  # type: ignore[arg-type]
                )
                for (_, value, order), where in zip(arrays, offsets, strict=True)
            ]
            if len(views) > 8:
                views.clear()
            views[body] = found
        return found

    def release(self, ids: Iterable[int]) -> None:
        for sid in ids:
            if sid in self.maps and sid not in self.free:
                self.free.append(sid)

    def drop(self, sid: int) -> None:
        del self.views[sid]
        mapping = self.maps.pop(sid)
        del self.sizes[sid]
        with contextlib.suppress(BufferError):
            mapping.close()

    def close(self) -> None:
        for sid in list(self.maps):
            self.drop(sid)


class _SlotRef(weakref.ref):
    """A weak reference to the base array of an item, knowing the slot it lives in."""

    __slots__ = ("sid",)
    sid: int


class _SlotReader:
    """The consumer's side: maps slot files once and builds items as views of them.

    Each item's arrays are views of one base array; when the last of them is gone, a weak
    reference callback queues the slot for release (sent to the worker with the next credit).
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.maps: dict[int, mmap.mmap] = {}
        self.refs: dict[int, _SlotRef] = {}
        self.released: collections.deque[int] = collections.deque()
        append = self.released.append

        def on_release(ref: _SlotRef) -> None:  # any thread, at any time: only append
            append(ref.sid)

        self.on_release = on_release

    def evict(self, ids: Iterable[int]) -> None:
        for sid in ids:
            self.maps.pop(sid, None)  # unmapped when no array views it any more
            self.refs.pop(sid, None)

    def base(self, sid: int, size: int) -> np.ndarray:
        """The memory of an item in slot ``sid`` (``size`` bytes, the whole slot)."""
        mapping = self.maps.get(sid)
        if mapping is None:
            path = os.path.join(self.directory, str(sid))
            fd = os.open(path, os.O_RDWR)
            try:
                mapping = self.maps[sid] = mmap.mmap(fd, size)
            finally:
                os.close(fd)
                os.unlink(path)
        base = np.frombuffer(mapping, np.uint8, size)
        ref = _SlotRef(base, self.on_release)
        ref.sid = sid
        self.refs[sid] = ref
        return base

    def drain(self) -> list[int]:
        released = self.released
        return [released.popleft() for _ in range(len(released))]

    def close(self) -> None:
        self.refs.clear()  # no more releases to report: there is no worker any more
        self.maps.clear()  # mappings still viewed by arrays live on with them


# ------------------------------------------------------------------------------ the worker
class _Stopped(Exception):
    """The consumer asked the worker to stop."""


def _watch_parent(directory: str | None) -> None:
    """Exit at once if the consumer's process dies (and remove its directory)."""
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return
    sentinel = parent.sentinel

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        # The main thread may create a slot file while the tree is removed: try again.
        for _ in range(100):
            if directory is None or not os.path.exists(directory):
                break
            shutil.rmtree(directory, ignore_errors=True)
        os._exit(3)

    threading.Thread(target=watch, name="pescador-zmq-watchdog", daemon=True).start()


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


def _control(sock: Any, window: _Window, slots: _SlotWriter | None) -> None:
    """Read the consumer's messages; wait while the window is full; raise on stop."""
    while window.full() or sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
        message = sock.recv()
        tag = message[:1]
        if tag == _STOP:
            raise _Stopped
        if tag == _CREDIT:
            values = array("q")
            values.frombytes(message[1:])
            window.acked(values[0])
            if slots is not None:
                slots.release(values[1:])


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


def _serve(
    sock: Any, it: Any, skip: int, options: dict[str, Any], slots: _SlotWriter | None
) -> None:
    """Send the items of ``it`` (after skipping ``skip``) within the window, then the end."""
    source = iter(it)
    _state.skip(source, skip, "the stream wrapped by ZMQStreamer")  # delivered since the state
    encoder = _Encoder(slots)
    encode = encoder.encode
    copy = options["copy"]
    every = options["snapshot_every"]
    snapshots = every is not None and state_of(it) is not None
    window = _Window(*options["window"])
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
                state = json.dumps({"state": state_of(it)}).encode()
            except Exception as exc:  # the position cannot be described: say so, once
                state = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
                snapshots = False
        _send(sock, encode(item, state), copy)
        window.sent(encoder.nbytes)
        if window.full() or now - last_check >= _CHECK_S:
            last_check = now
            _control(sock, window, slots)
    sock.send(_END)


def _worker_main(
    address: str,
    token: bytes,
    streamer: Any,
    max_iter: int | None,
    seed: Seed,
    resume: Mapping[str, Any] | None,
    options: dict[str, Any],
) -> None:
    """The worker process: connect, send the stream's items, report an error, stop on request."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the consumer's to handle
    directory = options["directory"]
    _watch_parent(directory)
    # Each pass draws other numbers from numpy's global RNG (forked workers would replay it).
    np.random.seed(int(seed.generator(0x7A4D).integers(2**32)))
    context = zmq.Context()
    sock = context.socket(zmq.PAIR)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    slots = _SlotWriter(directory, options["slots"]) if options["shared_memory"] else None
    it = None
    try:
        sock.send(_HELLO + token)
        try:
            it, skip = _open_inner(streamer, max_iter, seed, resume)
            _serve(sock, it, skip, options, slots)
        except _Stopped:
            return
        except BaseException as exc:
            sock.send(_error_message(exc))
        # Wait for the consumer's stop: disconnecting earlier could drop unread messages.
        while sock.recv()[:1] != _STOP:
            pass
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()
        if slots is not None:
            slots.close()
        sock.close(linger=0)
        context.term()


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
            sock.send(_END)
        except Exception as exc:
            sock.send(_error_message(exc))
        terminate_event.wait(10)
    finally:
        sock.close()
        context.term()


# ---------------------------------------------------------------------------- the consumer
class _Link:
    """What one iteration owns: the worker process, the socket, its context, the directory.

    :meth:`close` is idempotent; it runs at the end of the stream, on ``close()``, on errors
    and, through a finaliser, when the iterator is dropped or the interpreter exits.
    """

    def __init__(self, owner: ZMQStreamer) -> None:
        self.owner = owner
        self.pid = os.getpid()
        self.closed = False
        self.context: Any = None
        self.sock: Any = None
        self.process: Any = None
        self.started = False
        self.directory: str | None = None
        self.reader: _SlotReader | None = None
        self.address = ""
        #: The read-ahead window: (most items, fewest items, bytes), see _Window.
        self.window: tuple[int, int, float] = (
            (_AUTO_MAX_ITEMS, _AUTO_MIN_ITEMS, _AUTO_BYTES)
            if owner.prefetch is None
            else (owner.prefetch, owner.prefetch, float("inf"))
        )

    def open(self, max_iter: int | None, seed: Seed, resume: Mapping[str, Any] | None) -> None:
        zs = self.owner
        try:
            shm = zs.shared_memory and _shm_available()
            if shm or zs.transport == "ipc":
                self.directory = tempfile.mkdtemp(
                    prefix="pescador-zmq-", dir=_SHM_DIR if shm else None
                )
            self.context = zmq.Context()
            self.sock = sock = self.context.socket(zmq.PAIR)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVTIMEO, int(_POLL_S * 1000))
            if zs.transport == "ipc":
                assert self.directory is not None
                self.address = f"ipc://{os.path.join(self.directory, 'socket')}"
                sock.bind(self.address)
            else:
                self.address = self._bind_tcp(sock)
            token = os.urandom(16)
            options = {
                "copy": bool(zs.copy),
                "window": self.window,
                "snapshot_every": zs.snapshot_every,
                "directory": self.directory,
                "shared_memory": shm,
                "slots": 2 * self.window[0] + 4,
            }
            if shm:
                assert self.directory is not None
                self.reader = _SlotReader(self.directory)
            context: Any = multiprocessing.get_context(zs.start_method)
            self.process = context.Process(
                target=_worker_main,
                args=(self.address, token, zs._stream, max_iter, seed, resume, options),
                name="pescador-zmq-worker",
                daemon=True,
            )
            try:
                self.process.start()
                self.started = True
            except AssertionError as exc:
                raise PescadorError(
                    "ZMQStreamer cannot start its worker inside another worker process "
                    f"(daemonic processes cannot have children): {exc}"
                ) from exc
            except Exception as exc:
                _add_note(
                    exc,
                    f"starting the ZMQStreamer worker (start method "
                    f"{context.get_start_method()!r}): under 'spawn' and 'forkserver' the "
                    "wrapped stream is pickled, so its functions must be importable",
                )
                raise
            hello = self.recv()
            head = hello[0].bytes
            if head[:1] != _HELLO or not hmac.compare_digest(head[1:], token):
                raise PescadorError(f"ZMQStreamer: an unexpected peer connected to {self.address}")
        except BaseException:
            self.close()
            raise

    def _bind_tcp(self, sock: Any) -> str:
        zs = self.owner
        try:
            port = sock.bind_to_random_port(
                "tcp://127.0.0.1", zs.min_port, zs.max_port, zs.max_tries
            )
        except (zmq.ZMQError, zmq.ZMQBindError) as exc:
            raise PescadorError(
                f"ZMQStreamer could not bind a port in [{zs.min_port}, {zs.max_port}) on "
                f"127.0.0.1 in {zs.max_tries} tries: {exc}"
            ) from exc
        return f"tcp://127.0.0.1:{port}"

    def recv(self, nowait: int = 0) -> Any:
        """The frames of the worker's next message; raises if it died without sending one.

        With ``nowait`` true, returns None at once if no message is there.
        """
        recv = self.sock.recv
        while True:
            try:
                frame = recv(zmq.NOBLOCK if nowait else 0, copy=False)
            except zmq.Again:  # nothing for a while: is the worker still there?
                if nowait:
                    return None
                exitcode = self.process.exitcode
                if exitcode is None:
                    continue
                try:
                    frame = recv(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    raise WorkerError(_death_message(exitcode)) from None
            parts = [frame]
            while frame.more:  # the rest of a message arrives with its first frame
                frame = recv(copy=False)
                parts.append(frame)
            return parts

    def credit(self, count: int) -> None:
        values = array("q", [count])
        if self.reader is not None and self.reader.released:
            values.extend(self.reader.drain())
        with contextlib.suppress(zmq.ZMQError):
            self.sock.send(_CREDIT + values.tobytes(), zmq.NOBLOCK)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if os.getpid() != self.pid:
            return  # a forked copy of the consumer: the worker is not ours to stop
        try:
            self._stop_worker()
        finally:
            if self.sock is not None:
                self.sock.close(linger=0)
            if self.context is not None:
                self.context.term()
            if self.reader is not None:
                self.reader.close()
            if self.directory is not None:
                shutil.rmtree(self.directory, ignore_errors=True)
            self.sock = self.context = self.reader = None

    def _stop_worker(self) -> None:
        process = self.process
        if process is None:
            return
        if not self.started:
            self.process = None
            return
        if self.sock is not None and process.exitcode is None:
            with contextlib.suppress(zmq.ZMQError):
                self.sock.send(_STOP, zmq.NOBLOCK)
        try:
            process.join(self.owner.timeout)
        finally:  # even if Ctrl-C interrupts the wait
            for stop in (process.terminate, process.kill):
                if process.exitcode is None:
                    stop()
                    process.join(1.0)
            if process.exitcode is not None:
                process.close()
            self.process = None


def _death_message(exitcode: int) -> str:
    if exitcode < 0:
        try:
            how = f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"killed by signal {-exitcode}"
    else:
        how = f"exited with code {exitcode}"
    return f"the ZMQStreamer worker process died without a word ({how})"


def _add_note(exc: BaseException, note: str) -> None:
    add_note = getattr(exc, "add_note", None)
    if add_note is not None:  # Python >= 3.11
        add_note(note)


class _Progress:
    """Where the delivered items stand: the wrapped stream's state after ``base`` of them."""

    __slots__ = ("base", "error", "inner")

    def __init__(self, base: int, inner: dict[str, Any] | None) -> None:
        self.base = base
        self.inner = inner
        self.error: str | None = None


def _receive(link: _Link, progress: _Progress, delivered: int) -> Iterator[Any]:
    """The items sent by the worker, until its end-of-stream or error message.

    Acknowledgements (which reopen the worker's window) go back every half window, and always
    before waiting for a message, so the two sides can never wait for each other.
    """
    try:
        recv = link.recv
        reader = link.reader
        window = link.window
        ack_size = -1
        ack_every = 1
        owed = 0
        while True:
            parts = recv(owed)
            if owed and parts is None:
                link.credit(owed)
                owed = 0
                parts = recv(0)
            head = parts[0].bytes
            if head[0] != _ITEM_BYTE:
                if head[:1] == _END:
                    return
                if head[:1] == _ERROR:
                    raise _remote_error(head[1:])
                raise PescadorError(
                    f"unexpected message from the ZMQStreamer worker: {head[:1]!r}"
                )
            item, state, nbytes = _decode(head, parts, reader)
            delivered += 1
            if state is not None:
                snapshot = json.loads(state)
                if "error" in snapshot:
                    progress.error = snapshot["error"]
                else:
                    progress.inner, progress.base = snapshot["state"], delivered
            if nbytes != ack_size:
                ack_size = nbytes
                ack_every = max(1, _window_items(nbytes, *window) // 2)
            owed += 1
            if owed >= ack_every:
                link.credit(owed)
                owed = 0
            yield item
    finally:
        link.close()


class _ZMQIterator(StreamIterator[Any]):
    """One iteration of a :class:`ZMQStreamer`: one worker process.

    State: the items delivered ``n``; the wrapped stream's state ``inner`` after ``base`` of
    them (``None``: from its start); resuming skips ``n - base`` items in the worker.
    """

    __slots__ = ("_counted", "_owner", "_progress")

    kind = "ZMQStreamer"

    def __init__(
        self, owner: ZMQStreamer, max_iter: Any, seed: InheritedSeed, counted: bool
    ) -> None:
        super().__init__(max_iter, seed)
        self._owner = owner
        self._counted = counted
        self._progress = _Progress(0, None)

    def _open(self) -> tuple[Iterable[Any], Streamer | None]:
        owner = self._owner
        if owner.stream_ is not None:
            return owner.stream_, None
        holder = owner if self._counted else None
        resume = self._resume
        if resume is not None and resume.get("done"):
            return iter(()), holder
        done = resume["n"] if resume is not None else 0
        if resume is not None:
            self._progress = _Progress(resume["base"], resume["inner"])
        if self._limit is not None and self._limit <= done:
            return iter(()), holder  # nothing left to deliver: no process at all
        link = _Link(owner)
        link.open(self._limit, resolve_seed(None, self._seed), resume)
        source = _receive(link, self._progress, done)
        weakref.finalize(source, link.close)
        return source, holder

    def _own_state(self) -> dict[str, Any]:
        progress = self._progress
        if progress.error is not None:
            raise StateError(
                f"the stream wrapped by ZMQStreamer cannot describe its position: {progress.error}"
            )
        return {"base": progress.base, "inner": progress.inner}

    def _check_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        checked = super()._check_state(state)
        if checked.get("done"):
            return checked
        # The state of an iterator that had not started has neither: start from scratch.
        n, base, inner = checked.get("n"), checked.setdefault("base", 0), checked.get("inner")
        checked.setdefault("inner", None)
        if (
            not isinstance(n, int)
            or not isinstance(base, int)
            or not 0 <= base <= n
            or not (inner is None or isinstance(inner, Mapping))
        ):
            raise StateError(f"malformed ZMQStreamer state: n={n!r}, base={base!r}")
        return checked


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise PescadorError(f"{name}={value!r}: expected an integer")
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise PescadorError(f"{name}={value!r}: expected an integer {bounds}")
    return int(value)


class ZMQStreamer(Streamer):
    """Run a stream in a background process and stream its items back (pescador 3.0 API).

    Each iteration starts one worker process (``multiprocessing``, the platform's default
    start method unless ``start_method`` says otherwise) that iterates
    ``streamer.iterate(max_iter=...)`` (for another callable, ``streamer(max_iter=...)``) and
    sends the items; this process yields them, while the worker computes the next ones. See
    the module documentation for the wire format, read-ahead, failures and shutdown.

    Parameters
    ----------
    streamer : Streamer, mux or callable
        The stream to run. Items must be dicts (keys ``str`` or ``int``) of numpy arrays of
        any non-object dtype. An iterable that is not a Streamer is wrapped in one. Under the
        ``spawn`` and ``forkserver`` start methods it is pickled to the worker, so its
        functions must be importable (module-level).
    min_port, max_port, max_tries : int
        The TCP port is drawn at random from ``[min_port, max_port)`` on 127.0.0.1, up to
        ``max_tries`` times (ignored with ``transport="ipc"``).
    copy : bool
        ``False`` (default) hands the arrays to ZeroMQ without copying them: the stream must
        not modify an array after yielding it. ``True`` copies them into the message. (Items
        travelling through shared memory are always copied once, so they are safe either way.)
    timeout : float or None
        Seconds to wait for the worker to stop after the consumer stops, before terminating
        it. ``None`` waits without limit; the worker stops at its next item boundary (it
        never blocks on a full queue), so only a stream stuck inside one item can make that
        wait long.
    prefetch : int or None, keyword-only
        The most items the worker produces ahead of the consumer. ``None`` (default): a window
        of at most 64 items and, beyond 4 items, at most 16 MiB of arrays.
    transport : {"tcp", "ipc"}, keyword-only
        Loopback TCP (default), or a Unix socket in a private directory (POSIX only).
    start_method : str or None, keyword-only
        ``"fork"``, ``"spawn"`` or ``"forkserver"``; None for the platform's default.
    shared_memory : bool, keyword-only
        Send items of 32 KiB or more through shared memory where the platform has it (Linux
        ``/dev/shm``; default True). It holds the items in flight and those the consumer
        still holds, in at most ``2 * window + 4`` slots; beyond that, or if ``/dev/shm`` is
        full, items go through the socket.
    snapshot_every : float or None, keyword-only
        Seconds of worker time between snapshots of the wrapped stream's state (see the
        checkpoints paragraph of the module documentation; default 0.01). 0 snapshots every
        item: exact with no replay, at the cost of one ``state_dict()`` per item; ``None``
        never: a resume then replays the whole stream from its start.

    Raises
    ------
    PescadorError
        At construction, for a bad argument (a port range with no port, ``max_tries < 1``,
        a callable that does not accept ``max_iter``...); at the first ``next()``, if no
        port can be bound.

    Notes
    -----
    Received arrays are **read-only** views of the message (or of shared memory): no copy is
    made in the consumer. Copy one (``np.array(x)``) to modify it. Dicts arrive with their
    keys in sorted order. An empty dict is delivered as an item.

    Each iteration is a new process: ``cycle()`` starts one per pass. Order and content are
    those of the wrapped stream; a wrapped stream with ``random_state=None`` gets a fresh seed
    from this process's numpy global RNG per iteration (or the seed of a seeded parent mux),
    and the worker's own ``np.random`` is seeded from it too, so ``np.random.seed`` at the
    top of a program makes everything reproducible.

    Examples
    --------
    >>> import numpy as np, pescador
    >>> items = [{"x": np.full(3, i)} for i in range(4)]
    >>> zs = pescador.zmq_stream.ZMQStreamer(pescador.Streamer(items))
    >>> [int(item["x"][0]) for item in zs.iterate(max_iter=3)]
    [0, 1, 2]
    """

    def __init__(
        self,
        streamer: Any,
        min_port: int = 49152,
        max_port: int = 65535,
        max_tries: int = 100,
        copy: bool = False,
        timeout: float | None = 5,
        *,
        prefetch: int | None = None,
        transport: str = "tcp",
        start_method: str | None = None,
        shared_memory: bool = True,
        snapshot_every: float | None = 0.01,
    ) -> None:
        self._stream = _as_stream(streamer)
        self.streamer = streamer
        self.args: tuple[Any, ...] = ()
        self.kwargs: dict[str, Any] = {}
        self.active_count_ = 0
        self.stream_: Iterator[Any] | None = None
        self._entered: list[StreamIterator[Any]] = []
        if transport not in ("tcp", "ipc"):
            raise PescadorError(f"transport={transport!r}: expected 'tcp' or 'ipc'")
        if transport == "ipc" and not zmq.has("ipc"):
            raise PescadorError("transport='ipc' is not available on this platform; use 'tcp'")
        if transport == "tcp":
            _check_int("min_port", min_port, 1, 65535)
            _check_int("max_port", max_port, 2, 65536)
            _check_int("max_tries", max_tries, 1)
            if min_port >= max_port:
                raise PescadorError(
                    f"min_port={min_port} must be less than max_port={max_port} (the port is "
                    "drawn from [min_port, max_port))"
                )
        if timeout is not None and not (isinstance(timeout, (int, float)) and timeout >= 0):
            raise PescadorError(f"timeout={timeout!r}: expected None or a number >= 0")
        if prefetch is not None:
            _check_int("prefetch", prefetch, 1)
        if (
            start_method is not None
            and start_method not in multiprocessing.get_all_start_methods()
        ):
            raise PescadorError(
                f"start_method={start_method!r} is not available here; expected one of "
                f"{', '.join(multiprocessing.get_all_start_methods())}"
            )
        if snapshot_every is not None and not (
            isinstance(snapshot_every, (int, float)) and snapshot_every >= 0
        ):
            raise PescadorError(
                f"snapshot_every={snapshot_every!r}: expected None or a number of seconds >= 0"
            )
        self.min_port = min_port
        self.max_port = max_port
        self.max_tries = max_tries
        self.copy = copy
        self.timeout = timeout
        self.prefetch = None if prefetch is None else int(prefetch)
        self.transport = transport
        self.start_method = start_method
        self.shared_memory = bool(shared_memory)
        self.snapshot_every = snapshot_every

    def __repr__(self) -> str:
        return f"ZMQStreamer({self.streamer!r})"

    def _iterate(
        self, max_iter: Any, seed: InheritedSeed, counted: bool = True
    ) -> StreamIterator[Any]:
        return _ZMQIterator(self, max_iter, seed, counted)

    def _open_child(self, seed: InheritedSeed) -> tuple[StreamIterator[Any], Callable[[], Any]]:
        it = _ZMQIterator(self, None, seed, False)
        return it, iter(it).__next__

    def __enter__(self) -> ZMQStreamer:
        if self.stream_ is not None:
            return self
        it = _ZMQIterator(self, None, None, False)
        activated = copy_module.copy(self)
        activated.stream_ = iter(it)
        activated.active_count_ = 0
        self.active_count_ += 1
        self._entered.append(it)
        return activated

    def __exit__(self, *exc: object) -> None:
        if self.stream_ is None and self._entered:
            self._entered.pop().close()  # the activated copy's worker stops here
        super().__exit__(*exc)


def _as_stream(streamer: Any) -> Any:
    """What the worker runs: a Streamer, or a callable taking ``max_iter`` (3.0's contract)."""
    if isinstance(streamer, Streamer):
        return streamer
    if callable(streamer):
        try:
            inspect.signature(streamer).bind(max_iter=None)
        except TypeError as exc:
            raise PescadorError(
                f"ZMQStreamer runs streamer(max_iter=...), which {streamer!r} does not accept: "
                "pass a Streamer or a mux (e.g. pescador.Streamer(function, *args))"
            ) from exc
        except ValueError:  # no signature to check (a builtin): let the worker try
            pass
        return streamer
    try:
        return Streamer(streamer)
    except PescadorError as exc:
        raise PescadorError(
            f"ZMQStreamer needs a Streamer, a mux or an iterable; got {streamer!r}"
        ) from exc
