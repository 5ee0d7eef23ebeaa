"""The ZMQStreamer wire format, and pescador 3.0's :func:`zmq_send_data` and
:func:`zmq_recv_data`.

Every message starts with a one-byte tag (:mod:`pescador.transport`'s, and the hello). From a
ZMQStreamer worker:

- its hello, with the consumer's token (``H`` + token);
- an item: ``D`` + a pickle of ``(body, state)``, where ``body`` is the transport's message body
  (:mod:`pescador.transport._layout`): for an item whose arrays total :data:`SHM_MIN_BYTES`
  (32 KiB) or more, where the consumer has ``/dev/shm`` and there is room, its chunk of shared
  memory; otherwise its layout and one frame per array, sent and received without copies
  (pyzmq copies frames under 64 KiB). ``state`` is the JSON of a snapshot of the stream's
  state, or None. A layout travels once, then its number;
- the end of the stream (``X``), or an error report (``E`` + JSON), re-raised as
  :class:`~pescador.exceptions.WorkerError`.

From the consumer: credit (``C`` + int64s: the items delivered since the last credit, then the
file id and offset of each chunk released) and stop (``S``). The worker's ``DEALER`` socket has
the token as its routing id, and the consumer's ``ROUTER`` socket drops every message from
another peer unread, so the pickles it loads come from its own worker, and a stranger that
connects first cannot take its place.

:func:`zmq_send_data` and :func:`zmq_recv_data` (public as
``pescador.zmq_stream.zmq_send_data`` and ``zmq_recv_data``), for hand-built consumers, never
pickle: an item is ``D`` + its layout as JSON, then one frame per array. C- and
Fortran-ordered arrays keep their layout; other arrays are sent as C-ordered copies. Every dtype
without Python objects works (structured, datetime, strings, big-endian included).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import zmq

from .. import transport as _transport
from ..exceptions import DataError, PescadorError, WorkerError
from ..transport import END, ERROR, ITEM

HELLO = b"H"
_ITEM_BYTE = ITEM[0]

#: Items whose arrays total at least this many bytes travel through shared memory.
SHM_MIN_BYTES = 32 << 10


class WorkerDataError(WorkerError, DataError):
    """A worker's item was not a dict of numpy arrays (a :class:`DataError` in the worker).

    Both a :class:`~pescador.exceptions.WorkerError` (it carries the remote traceback) and a
    :class:`~pescador.exceptions.DataError`.
    """

    # Public as pescador.zmq_stream.WorkerDataError: named so in tracebacks and pickles.
    __module__ = "pescador.zmq_stream"


#: Values that travel as they are (pickled with the message, as through ParallelStreamer).
_VALUES = (bool, int, float, complex, str, bytes)


def checked(data: Any, values: bool = True) -> dict[Any, Any]:
    """``data`` as a dict in sorted key order of plain numpy arrays (a numpy scalar as a 0-d
    array) and, if ``values``, Python numbers and strings; or a :class:`DataError` that says
    why it cannot be one."""
    if not isinstance(data, dict):
        raise DataError(
            f"ZMQStreamer sends dicts of numpy arrays; got an item of type {type(data).__name__}"
        )
    try:
        keys = sorted(data)
    except TypeError:  # keys of mixed types: keep the producer's order
        keys = list(data)
    plain = type(data) is dict
    out = {}
    for key in keys:
        value = data[key]
        if not isinstance(key, (str, int)):
            raise DataError(f"ZMQStreamer sends str or int keys; got the key {key!r}")
        if type(value) is not np.ndarray:
            plain = False
            if isinstance(value, np.generic):  # np.float32(label): a 0-d array, as 3.0 code reads
                value = np.asarray(value)
            elif values and type(value) in _VALUES:
                out[key] = value
                continue
            elif not isinstance(value, np.ndarray) or isinstance(value, np.ma.MaskedArray):
                also = ", numbers and strings" if values else ""
                raise DataError(
                    f"ZMQStreamer sends numpy arrays only (and numpy scalars{also}); "
                    f"item[{key!r}] is a {type(value).__name__} (wrap lists with np.asarray)"
                )
            else:
                value = value.view(np.ndarray)
        if value.dtype.hasobject:
            raise DataError(
                f"item[{key!r}] has dtype {value.dtype}: arrays holding Python objects cannot "
                "be sent to another process (convert them to a fixed-width dtype)"
            )
        out[key] = value
    if plain and keys == list(data):
        return data
    return out


class ItemEncoder:
    """A ZMQStreamer worker's side of the format: its items as messages."""

    def __init__(self, chunks: _transport.ChunkFiles | None) -> None:
        self.encoder = _transport.Encoder(chunks)
        #: The layouts already checked: an item that has one is a dict of arrays, keys sorted
        #: (items with other values are checked every time: a layout does not tell a number
        #: from a list, nor a numpy scalar to convert).
        self.checked: set[int] = set()

    def encode(
        self, data: Any, make_room: Callable[[], None], state: str | None
    ) -> tuple[list[Any], int]:
        """The message for one item, and the bytes of its arrays."""
        encoder = self.encoder
        split = encoder.split(data)
        if split is None or split[0].lid not in self.checked:
            split = encoder.split(checked(data))
            assert split is not None
            if split[0].lid >= 0 and not split[2]:
                self.checked.add(split[0].lid)
        layout = split[0]
        body = None
        if layout.size >= SHM_MIN_BYTES:
            body = encoder.place(*split, make_room)
        frames: list[Any] = []
        if body is None:
            body, frames = encoder.frames(*split)
        return [ITEM + pickle.dumps((body, state), pickle.HIGHEST_PROTOCOL), *frames], layout.size

    def close(self) -> None:
        self.encoder.close()


def decode(
    decoder: _transport.Decoder, head: bytes, parts: list[Any]
) -> tuple[dict[Any, Any], str | None, int]:
    """The item of a worker's message (``head``: its first frame's bytes), its state (JSON
    text, or None) and the bytes of its arrays."""
    body, state = pickle.loads(head[1:])
    return decoder.unpack(body, parts[1:]), state, body[3]


def send(sock: Any, frames: list[Any], copy: bool) -> None:
    """Send ``frames`` as one message (cheaper than ``send_multipart`` per frame)."""
    send = sock.send
    more = zmq.SNDMORE
    last = len(frames) - 1
    send(frames[0], more if last else 0, copy=True)
    for i in range(1, last + 1):
        send(frames[i], more if i < last else 0, copy=copy)


# One encoder for zmq_send_data's layouts (their JSON is kept with them).
_LAYOUTS = _transport.Encoder()


def zmq_send_data(
    socket: Any, data: Mapping[Any, Any], flags: int = 0, copy: bool = True, track: bool = False
) -> Any:
    """Send a dict of numpy arrays as one multipart message (the module's wire format).

    Parameters
    ----------
    socket : zmq.Socket
        Where to send.
    data : dict
        Keys ``str`` or ``int``; values numpy arrays of any non-object dtype and layout, or
        numpy scalars (sent as 0-d arrays). Nothing is pickled: Python numbers and strings are
        refused (wrap them with ``np.asarray``).
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
    split = _LAYOUTS.split(checked(data, values=False))
    assert split is not None
    layout, arrays, _ = split
    frames = [ITEM + _transport.layout_json(layout)]
    frames += [_transport.as_frame(a, e[3]) for a, e in zip(arrays, layout.arrays, strict=True)]
    return socket.send_multipart(frames, flags=flags, copy=copy, track=track)


def zmq_recv_data(socket: Any, flags: int = 0, copy: bool = True, track: bool = False) -> Any:
    """Receive one message sent by :func:`zmq_send_data` or :func:`zmq_worker`.

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
    head = frames[0] if isinstance(frames[0], bytes) else frames[0].bytes
    tag = head[:1]
    if tag == ITEM:
        plan = _transport.layout_from_json(head[1:])
        if not plan.plain:
            raise PescadorError("malformed pescador ZMQ message: not a dict of arrays")
        return plan.from_frames(frames[1:], [], False)
    if tag == END:
        return None
    if tag == ERROR:
        raise remote_error(head[1:])
    raise PescadorError(f"unexpected message on a pescador ZMQ socket (tag {tag!r})")


def error_message(exc: BaseException) -> bytes:
    """The error report of a worker for ``exc``."""
    return ERROR + json.dumps(_transport.error_report(exc)).encode()


def remote_error(payload: bytes) -> WorkerError:
    """The exception for a worker's error report."""
    try:
        report = json.loads(payload)
    except ValueError:
        report = None
    return _transport.worker_error(report, "the ZMQStreamer worker", WorkerDataError)
