"""The ZMQStreamer wire format: items (dicts of numpy arrays) as ZeroMQ messages.

One message per item: a header frame (for each array, in sorted key order: key, dtype, shape,
memory order, and where its bytes are), then one frame per array, sent and received without
copies (pyzmq copies frames under 64 KiB). Items whose arrays total :data:`SHM_MIN_BYTES`
(32 KiB) or more go through shared memory instead where the consumer has it
(:mod:`pescador._zmq_slots`): the header then also gives the item's slot and each array's
offset in it, an extra frame may list slots the consumer should unmap, and only an empty array
still has a frame (an empty one). C- and Fortran-ordered arrays keep their layout; other
arrays are sent as C-ordered copies. Every dtype without Python objects works (structured,
datetime, strings, big-endian included): a dtype travels as ``dtype.str``, a structured one as
its description. The details are in :class:`_Encoder`.

The other messages are tagged by the first byte of their first frame: from the worker, its
hello (with the consumer's token), the end of the stream and an error report (JSON: type,
message, traceback, re-raised as :class:`~pescador.exceptions.WorkerError`); from the
consumer, credits (items acknowledged and slots released, as int64) and stop.

:func:`zmq_send_data` and :func:`zmq_recv_data` are pescador 3.0's API for this format
(public as ``pescador.zmq_stream.zmq_send_data`` and ``zmq_recv_data``).
"""

from __future__ import annotations

import ast
import json
import struct
import traceback
from array import array
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import zmq
from numpy.lib import format as npy_format

from ..exceptions import DataError, PescadorError, WorkerError, WorkerStateError
from ..transport import aligned

if TYPE_CHECKING:
    from ._slots import _SlotReader, _SlotWriter

# Message tags: the first byte of a message's first frame.
_HELLO, _ITEM, _END, _ERROR = b"H", b"D", b"X", b"E"  # worker -> consumer
_CREDIT, _STOP = b"C", b"S"  # consumer -> worker
_ITEM_BYTE = _ITEM[0]

#: Items whose arrays total at least this many bytes travel through shared memory.
SHM_MIN_BYTES = 32 << 10


class WorkerDataError(WorkerError, DataError):
    """A worker's item was not a dict of numpy arrays (a :class:`DataError` in the worker).

    Both a :class:`~pescador.exceptions.WorkerError` (it carries the remote traceback) and a
    :class:`~pescador.exceptions.DataError`.
    """

    # Public as pescador.zmq_stream.WorkerDataError: named so in tracebacks and pickles.
    __module__ = "pescador.zmq_stream"


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
                    offset += aligned(value.nbytes)
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
            total += aligned(value.nbytes)
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
            self.nbytes += aligned(count * dtype.itemsize)
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
        if info["type"] == "pescador.exceptions.StateError":
            cls = WorkerStateError
        return cls(message, str(info["traceback"]))
    except (ValueError, KeyError, TypeError):
        return WorkerError("the ZMQStreamer worker failed (unreadable error report)")
