"""Items as layouts: the worker's :class:`Encoder`, the consumer's :class:`Decoder` (private;
see :mod:`pescador.transport`).

An item that is a dict, a tuple or an array is split into its *arrays* (numpy arrays of any
dtype without Python objects, empty and 0-d ones included) and its other *values*. Its
*layout* gives, in the item's order: the container (``"dict"``, ``"tuple"`` or ``"array"``),
then per position ``(key,)`` for a value, or ``(key, dtype, shape, order, offset)`` for an
array: ``order`` is ``"F"`` for a Fortran-ordered array, which keeps its layout, else ``"C"``
(other arrays are copied in C order); ``offset`` is where its bytes start in the item's memory
(each aligned to :data:`ALIGN`). A layout is computed once per signature (container, keys and
their types, dtypes, shapes, orders) and numbered; the first message that uses it carries it,
later ones only its number. A worker remembers :data:`MAX_LAYOUTS`; an item with another one
(shapes that keep changing) carries it every time, under the number -1.

A message *body* is one of:

- ``("s", layout id, layout or None, size, values, file id, offset)``: the arrays are in a chunk
  of shared memory (:mod:`pescador.transport._chunks`);
- ``("f", layout id, layout or None, size, values)``: the arrays follow as frames, one each (a
  ``ZMQStreamer`` socket; :func:`as_frame`, :func:`from_frame`);
- ``("p", item)``: the item itself, pickled with the message (not a dict, tuple or array; no
  array bytes; or no room in shared memory, on a pipe).

``size`` is the bytes of the item's arrays. :func:`layout_json` and :func:`layout_from_json`
write a layout as JSON and read it back (dtypes as ``dtype.str``, or a structured dtype's
description), for the 3.0 functions ``zmq_send_data`` and ``zmq_recv_data``, whose peer may be
anyone's code: nothing is unpickled there.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from ..exceptions import PescadorError
from ._chunks import ChunkFiles, ChunkMaps

#: Alignment of arrays in an item's memory (a cache line; enough for every dtype).
ALIGN = 64
#: Layouts a worker remembers, and cached views to copy arrays into.
MAX_LAYOUTS = 256
MAX_VIEWS = 4096

_CONTAINERS = {dict: "dict", tuple: "tuple", np.ndarray: "array"}


def aligned(n: int) -> int:
    """``n`` rounded up to a multiple of :data:`ALIGN`."""
    return (n + ALIGN - 1) // ALIGN * ALIGN


class Layout:
    """A worker's layout: its number, definition (``entries``), array entries, size."""

    __slots__ = ("announced", "arrays", "entries", "json", "lid", "size")

    def __init__(self, lid: int, entries: tuple[Any, ...], size: int) -> None:
        self.lid = lid
        self.entries = entries
        self.arrays = [entry for entry in entries[1:] if len(entry) == 5]
        self.size = size
        self.announced = False
        self.json: bytes | None = None

    def definition(self) -> tuple[Any, ...] | None:
        """What a message using this layout carries: the entries the first time, then None."""
        if self.announced:
            return None
        self.announced = self.lid >= 0
        return self.entries


class Encoder:
    """The worker's side: items split by layout, their arrays copied into ``chunks``."""

    def __init__(self, chunks: ChunkFiles | None = None) -> None:
        self.chunks = chunks
        self.layouts: dict[tuple[Any, ...], Layout] = {}  # signature -> layout
        self.targets: dict[tuple[int, int, int], list[np.ndarray]] = {}

    def split(self, item: Any) -> tuple[Layout, list[np.ndarray], list[Any]] | None:
        """``(layout, arrays, values)``, or None for an item that is no dict, tuple or array."""
        kind = type(item)
        if kind is dict:
            pairs: Iterable[tuple[Any, Any]] = item.items()
        elif kind is tuple:
            pairs = enumerate(item)
        elif kind is np.ndarray:
            pairs = ((None, item),)
        else:
            return None
        signature: list[Any] = [kind]
        arrays = []
        values = []
        for key, value in pairs:
            if type(value) is np.ndarray and not value.dtype.hasobject:
                fortran = not value.flags.c_contiguous and value.flags.f_contiguous
                signature.append((key, type(key), value.dtype, value.shape, fortran))
                arrays.append(value)
            else:
                signature.append((key, type(key)))
                values.append(value)
        sig = tuple(signature)
        layout = self.layouts.get(sig)
        if layout is None:
            layout = self._new(sig)
        return layout, arrays, values

    def _new(self, sig: tuple[Any, ...]) -> Layout:
        entries: list[Any] = [_CONTAINERS[sig[0]]]
        size = 0
        for entry in sig[1:]:
            if len(entry) == 2:
                entries.append((entry[0],))
            else:
                key, _, dtype, shape, fortran = entry
                entries.append((key, dtype, shape, "F" if fortran else "C", size))
                size += aligned(dtype.itemsize * math.prod(shape))
        if len(self.layouts) >= MAX_LAYOUTS:
            return Layout(-1, tuple(entries), size)  # not remembered
        layout = self.layouts[sig] = Layout(len(self.layouts), tuple(entries), size)
        return layout

    def pack(self, item: Any, make_room: Callable[[], None]) -> tuple[Any, ...]:
        """The body for ``item``: its arrays in a chunk, else the item itself."""
        split = self.split(item)
        if split is not None:
            body = self.place(*split, make_room)
            if body is not None:
                return body
        return ("p", item)

    def place(
        self,
        layout: Layout,
        arrays: list[np.ndarray],
        values: list[Any],
        make_room: Callable[[], None],
    ) -> tuple[Any, ...] | None:
        """The body of an item split as given, its arrays copied into a chunk; None if there
        is no room (``make_room`` is called first if no released chunk fits)."""
        chunks = self.chunks
        size = layout.size
        if chunks is None or not size:
            return None
        chunk = chunks.take(size, make_room)
        if chunk is None:
            return None
        fid, offset = chunk
        lid = layout.lid
        key = (fid, offset, lid)
        targets = self.targets.get(key) if lid >= 0 else None
        if targets is None:
            mapping = chunks.maps[fid]
            targets = [
                np.ndarray(e[2], e[1], mapping, offset + e[4], None, e[3]) for e in layout.arrays
            ]
            if lid >= 0 and len(self.targets) < MAX_VIEWS:
                self.targets[key] = targets
        for target, value in zip(targets, arrays, strict=True):
            np.copyto(target, value, casting="no")
        return ("s", lid, layout.definition(), size, values, fid, offset)

    @staticmethod
    def frames(
        layout: Layout, arrays: list[np.ndarray], values: list[Any]
    ) -> tuple[tuple[Any, ...], list[Any]]:
        """The body of an item split as given, and its arrays as frames."""
        frames = [as_frame(a, e[3]) for a, e in zip(arrays, layout.arrays, strict=True)]
        return ("f", layout.lid, layout.definition(), layout.size, values), frames

    def close(self) -> None:
        self.targets.clear()
        if self.chunks is not None:
            self.chunks.close()


class Plan:
    """The consumer's view of a layout: how to rebuild its items.

    Items that are dicts of arrays only (the usual batches; every ZMQStreamer item) are built
    in one loop: half the time of building a list of arrays and then the container.
    """

    __slots__ = ("arrays", "container", "is_array", "keys", "plain")

    def __init__(self, entries: tuple[Any, ...]) -> None:
        self.container = entries[0]
        self.keys = [e[0] for e in entries[1:]]
        self.arrays = [e for e in entries[1:] if len(e) == 5]
        self.is_array = [len(e) == 5 for e in entries[1:]]
        self.plain = self.container == "dict" and all(self.is_array)

    def from_chunk(self, base: np.ndarray, values: list[Any]) -> Any:
        """The item whose arrays are in ``base`` (an item's memory in a chunk)."""
        ndarray = np.ndarray
        if self.plain:
            item = {}
            for key, dtype, shape, order, offset in self.arrays:
                if order == "C":
                    item[key] = ndarray(shape, dtype, base, offset)
                else:
                    item[key] = ndarray(shape, dtype, base, offset, None, order)
            return item
        arrays = [ndarray(e[2], e[1], base, e[4], None, e[3]) for e in self.arrays]
        return self.build(arrays, values)

    def from_frames(self, frames: list[Any], values: list[Any], writable: bool) -> Any:
        """The item whose arrays are ``frames`` (one each)."""
        if len(frames) != len(self.arrays):
            raise PescadorError(f"received {len(frames)} frames for {len(self.arrays)} arrays")
        if self.plain:
            item = {}
            for frame, (key, dtype, shape, order, _) in zip(frames, self.arrays):  # noqa: B905
                item[key] = from_frame(frame, dtype, shape, order, writable)
            return item
        arrays = [
            from_frame(f, e[1], e[2], e[3], writable)
            for f, e in zip(frames, self.arrays)  # noqa: B905 (lengths checked)
        ]
        return self.build(arrays, values)

    def build(self, arrays: list[np.ndarray], values: list[Any]) -> Any:
        """The item: ``arrays`` and ``values`` in the container, in the layout's order."""
        if values:
            next_array, next_value = iter(arrays).__next__, iter(values).__next__
            arrays = [next_array() if a else next_value() for a in self.is_array]
        container = self.container
        if container == "dict":
            return dict(zip(self.keys, arrays, strict=True))
        if container == "tuple":
            return tuple(arrays)
        return arrays[0]


class Decoder:
    """The consumer's side: items rebuilt from bodies, their arrays as views of a chunk of
    ``maps`` (or of the frames that follow), read-only unless ``writable``."""

    def __init__(self, maps: ChunkMaps | None = None, writable: bool = True) -> None:
        self.maps = maps
        self.writable = writable
        self.plans: dict[int, Plan] = {}

    def unpack(self, body: tuple[Any, ...], frames: list[Any] | None = None) -> Any:
        where = body[0]
        if where == "p":
            return body[1]
        definition = body[2]
        if definition is None:
            plan = self.plans[body[1]]
        else:
            plan = Plan(definition)
            if body[1] >= 0:
                self.plans[body[1]] = plan
        if where == "s":
            if self.maps is None:
                raise PescadorError("received an item in shared memory, which is not mapped")
            return plan.from_chunk(self.maps.base(body[5], body[6], body[3]), body[4])
        return plan.from_frames(frames or [], body[4], self.writable)

    def close(self) -> None:
        if self.maps is not None:
            self.maps.close()


# ------------------------------------------------------------------------------ frames
def as_frame(array: np.ndarray, order: str) -> Any:
    """The bytes of ``array`` in ``order``, without a copy where it is contiguous so."""
    if not array.nbytes:
        return b""
    if order == "F":
        array = array.T  # Fortran-ordered: its transpose is C-ordered
    elif not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    return array.reshape(-1).view(np.uint8)


def from_frame(
    frame: Any, dtype: np.dtype[Any], shape: tuple[int, ...], order: str, writable: bool
) -> np.ndarray:
    """The array of ``frame`` (bytes, a buffer, a ZeroMQ frame), a view where it can be."""
    count = math.prod(shape)
    if not count or not dtype.itemsize:
        out = np.empty(shape, dtype, order=order)  # type: ignore[call-overload]
    else:
        out = np.frombuffer(frame, dtype, count)
        if len(shape) != 1:
            out = out.reshape(shape[::-1]).T if order == "F" else out.reshape(shape)
    flags = out.flags
    if not flags.aligned:  # small frames may sit at any offset of a receive buffer
        out = out.copy(order="A")
        flags = out.flags
    if not writable and flags.writeable:
        flags.writeable = False
    return out


# ------------------------------------------------------------------------------ JSON
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


def layout_json(layout: Layout) -> bytes:
    """``layout``'s definition as JSON (keys must be str, int or None)."""
    text = layout.json
    if text is None:
        out: list[Any] = [layout.entries[0]]
        for e in layout.entries[1:]:
            out.append([e[0]] if len(e) == 1 else [e[0], _dtype_token(e[1]), e[2], *e[3:]])
        text = layout.json = json.dumps(out).encode()
    return text


_PARSED: dict[bytes, Plan] = {}


def layout_from_json(text: bytes) -> Plan:
    """The plan of a layout written by :func:`layout_json`; checked."""
    parsed = _PARSED.get(text)
    if parsed is None:
        try:
            container, *rest = json.loads(text)
            entries: list[Any] = [container]
            for e in rest:
                if len(e) == 1:
                    entries.append((e[0],))
                    continue
                key, token, shape, order, offset = e
                shape = tuple(int(s) for s in shape)
                if min(shape, default=0) < 0 or order not in ("C", "F"):
                    raise ValueError(f"shape {shape} or order {order!r}")
                entries.append((key, _dtype_of(token), shape, order, int(offset)))
            if container not in _CONTAINERS.values():
                raise ValueError(f"container {container!r}")
        except (ValueError, TypeError, SyntaxError) as exc:
            raise PescadorError(f"malformed pescador layout: {exc}") from None
        parsed = Plan(tuple(entries))
        if len(_PARSED) > 256:
            _PARSED.clear()
        _PARSED[text] = parsed
    return parsed
