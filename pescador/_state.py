"""Checkpoint state: the envelope, its digest, validation, and the replay of plain sources
(private).

Every pescador iterator describes its position as a small dict of JSON types (``state_dict``).
The outermost dict carries the format version and a digest of the rest; each nested dict
carries the ``kind`` of the iterator that wrote it and, for muxes, the shape of the pipeline, so
that a state from another pipeline or library version is rejected with a
:class:`~pescador.exceptions.StateError` saying what differs, instead of resuming somewhere
wrong.

Checks, in order, when a state is given:

1. the format version (:func:`unwrap`);
2. the digest (:func:`unwrap`): a state edited or corrupted by accident is refused;
3. the kind and shape of each level (:func:`check`), the outermost at once, nested ones when
   their iterator opens;
4. the fields of each level, before they are used, by the validators below
   (:func:`integer`, :func:`seed`, :func:`block`, :func:`flags`, ...), which raise a
   StateError naming the field's path. Behind them, :func:`malformed` turns any stray
   ``KeyError``, ``TypeError``... that restoring raises into a StateError (the iterators
   apply it around their restore step, never around the user's code: see
   :data:`PASSTHROUGH`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import sys
import zlib
from collections.abc import Iterator, Mapping, Sequence
from itertools import islice
from typing import Any, Literal, NoReturn

import numpy as np

from ._seeds import Seed
from .exceptions import StateError

__all__ = [
    "PASSTHROUGH",
    "STATE_VERSION",
    "StateError",
    "check",
    "digest",
    "malformed",
    "passes",
    "reseal",
    "skip",
    "unwrap",
    "wrap",
]

#: Version of the state format; bumped when a state written by an older version would be
#: misread.
STATE_VERSION = 1

_VERSION_KEY = "pescador_state"

#: The key of the outermost state that holds the digest of the rest.
DIGEST_KEY = "digest"

#: The largest count a state may hold (items delivered, activations opened, budgets): an
#: iterator counts at most this many items.
MAX_COUNT = sys.maxsize


# ------------------------------------------------------------------------------ envelope
def _canonical(state: Mapping[str, Any]) -> bytes:
    """The canonical JSON text of ``state`` (its digest key left out): keys sorted, no spaces.

    The same for the state, its ``json.dumps``/``json.loads`` round trip and its pickle:
    tuples are lists, floats are written exactly (``repr``), NaN and infinities as JSON's
    extensions. A value that is not of a JSON type (from a user's seekable source) counts by
    its ``repr``. Keys are strings in every state pescador writes; a source whose state has
    other keys should use strings too (JSON turns them into strings, and int keys sorted as
    ints may not be in the order of their strings). Keys that cannot be sorted together
    (ints and strings) are turned into strings first.
    """
    body = {key: value for key, value in state.items() if key != DIGEST_KEY}
    try:
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=repr)
    except TypeError:  # keys of several types in one dict: as JSON would make them
        as_json = json.loads(json.dumps(body, default=repr))
        text = json.dumps(as_json, sort_keys=True, separators=(",", ":"))
    return text.encode()


def digest(state: Mapping[str, Any]) -> str:
    """The digest of an outermost state: 16 hex digits of BLAKE2b over its canonical JSON."""
    return hashlib.blake2b(_canonical(state), digest_size=8).hexdigest()


def wrap(state: Mapping[str, Any]) -> dict[str, Any]:
    """The outermost state: ``state`` with the format version, sealed by its digest."""
    body = {_VERSION_KEY: STATE_VERSION, **state}
    body.pop(DIGEST_KEY, None)
    body[DIGEST_KEY] = digest(body)
    return body


def reseal(state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` with its digest recomputed: for a state edited on purpose (tests, tools).

    A resealed state is checked like any other: its kind, shape and fields must still make
    sense (see the module documentation).
    """
    body = dict(state)
    body[DIGEST_KEY] = digest(body)
    return body


def unwrap(state: Any) -> dict[str, Any]:
    """Check the format version and the digest of an outermost state; return it (without the
    digest)."""
    if not isinstance(state, Mapping):
        raise StateError(f"a state must be a dict from state_dict(); got {type(state).__name__}")
    version = state.get(_VERSION_KEY)
    if type(version) is not int or version != STATE_VERSION:
        raise StateError(
            f"this state was written by state format {version!r}; this version of pescador "
            f"reads format {STATE_VERSION}"
        )
    body = dict(state)
    if DIGEST_KEY in body:  # (a state written before digests has none: it is accepted)
        sealed = body.pop(DIGEST_KEY)
        try:
            actual = digest(body)
        except (TypeError, ValueError, RecursionError) as exc:
            raise StateError(f"the state cannot be read: {exc}") from None
        if sealed != actual:
            raise StateError(
                "the state was modified or corrupted (digest mismatch: "
                f"{_short(sealed)} in the state, {actual} computed): pass back the state "
                "that state_dict() returned, unchanged"
            )
    return body


def check(state: Any, kind: str, **shape: Any) -> dict[str, Any]:
    """Check that ``state`` was written by an iterator of ``kind`` with the same ``shape``."""
    if not isinstance(state, Mapping) or "kind" not in state:
        raise StateError(f"expected the state of a {kind}; got {_short(state)}")
    if state["kind"] != kind:
        other = state["kind"]
        other = other if isinstance(other, str) and len(other) < 80 else _short(other)
        raise StateError(f"state of a {other} given to a {kind}: the pipeline's shape differs")
    differs = [
        f"{name}={state.get(name)!r} in the state, {value!r} here"
        for name, value in shape.items()
        if not _same(state.get(name), value)
    ]
    if differs:
        raise StateError(f"{kind} state does not match this {kind}: " + "; ".join(differs))
    checked = dict(state)
    where = f"{kind} state"
    integer(field(checked, "n", where), where, "n")
    if "done" in checked and checked["done"] is not True:
        fail(where, "done", "true when present", checked["done"])
    return checked


def _same(a: Any, b: Any) -> bool:
    """``a == b`` for shape values (numbers, strings, None), of the same kind of value."""
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    try:
        return bool(a == b)
    except Exception:  # an array, or an object with a strange __eq__
        return False


def skip(source: Iterator[Any], n: int, what: str) -> None:
    """Advance ``source`` by ``n`` items (replaying them), or raise if it ends first."""
    if n <= 0:
        return
    missing = object()
    if next(islice(source, n - 1, n), missing) is missing:
        raise StateError(
            f"cannot resume {what}: its source ended before the {n} items already delivered "
            "(it is not deterministic, or it is a one-shot iterator)"
        )


# ------------------------------------------------------------------------------ safety net
class _Passthrough:
    """``with PASSTHROUGH:`` around a call of the user's code (a generator function, a
    replay, a source's own ``__iter__``) within a restore: what it raises is the user's, and
    :func:`malformed` lets it through unchanged."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is not None:
            with contextlib.suppress(AttributeError):  # (an exception without a __dict__)
                exc.__pescador_passthrough__ = True  # type: ignore[attr-defined]
        return False


PASSTHROUGH = _Passthrough()

#: What restoring a malformed state may raise, besides StateError.
MALFORMED: tuple[type[BaseException], ...] = (
    LookupError,
    TypeError,
    ValueError,
    ArithmeticError,
    AttributeError,
    AssertionError,
    RecursionError,
    StopIteration,
    zlib.error,
)


def passes(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by the user's code (within :data:`PASSTHROUGH`)."""
    return bool(getattr(exc, "__pescador_passthrough__", False))


def malformed(kind: str, exc: BaseException) -> StateError:
    """The StateError for ``exc``, raised while restoring a ``kind`` iterator from its state
    (raise it ``from exc``)."""
    return StateError(f"malformed {kind} state ({type(exc).__name__}: {exc})")


def within(exc: StateError, path: str) -> StateError:
    """``exc``, from a nested state, with the path of that state in front of its message."""
    message = str(exc.args[0]) if exc.args else ""
    exc.args = (f"{path}: {message}", *exc.args[1:])
    return exc


# ------------------------------------------------------------------------------ validators
def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # pragma: no cover - a broken __repr__
        text = f"<{type(value).__name__}>"
    return text if len(text) < 80 else text[:77] + "..."


def fail(where: str, path: str, expected: str, value: Any) -> NoReturn:
    """Raise the StateError for field ``path`` of ``where`` (e.g. ``'cycle state'``)."""
    raise StateError(f"{where}: {path} must be {expected}, got {_short(value)}")


def field(state: Mapping[str, Any], key: str, where: str) -> Any:
    """``state[key]``, or a StateError naming the missing field."""
    try:
        return state[key]
    except (KeyError, TypeError):
        raise StateError(f"{where}: field {key!r} is missing") from None


def integer(value: Any, where: str, path: str, low: int = 0, high: int = MAX_COUNT) -> int:
    """``value`` if it is an int (not a bool) in ``[low, high]``."""
    if type(value) is not int or not low <= value <= high:
        top = "sys.maxsize" if high == MAX_COUNT else str(high)
        fail(where, path, f"an int in [{low}, {top}]", value)
    return value


def boolean(value: Any, where: str, path: str) -> bool:
    if type(value) is not bool:
        fail(where, path, "true or false", value)
    return value


def mapping(value: Any, where: str, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        fail(where, path, "a dict", value)
    return value


def sequence(
    value: Any, where: str, path: str, length: int | None = None, most: int | None = None
) -> Sequence[Any]:
    """``value`` if it is a list (or tuple) of ``length`` items, or at most ``most``."""
    if not isinstance(value, (list, tuple)) or (length is not None and len(value) != length):
        fail(where, path, "a list" if length is None else f"a list of {length} items", value)
    if most is not None and len(value) > most:
        fail(where, path, f"a list of at most {most} items", value)
    return value


def seed(value: Any, where: str, path: str) -> Seed:
    """A :class:`~pescador._seeds.Seed` from its JSON form ``[entropy, [key, ...]]``."""
    pair = sequence(value, where, path, length=2)
    entropy = pair[0]
    if type(entropy) is not int or not 0 <= entropy < 1 << 1024:
        fail(where, f"{path}[0]", "an int in [0, 2**1024)", entropy)
    key = sequence(pair[1], where, f"{path}[1]", most=1 << 16)
    for j, k in enumerate(key):
        if type(k) is not int or not 0 <= k < 1 << 64:
            fail(where, f"{path}[1][{j}]", "an int in [0, 2**64)", k)
    return Seed(entropy, tuple(key))


def generator_state(gen: np.random.Generator, value: Any, where: str, path: str) -> None:
    """Set ``gen``'s bit generator to the state ``value`` (``bit_generator.state``)."""
    bits = gen.bit_generator
    name = type(bits).__name__
    if not isinstance(value, Mapping) or value.get("bit_generator") != name:
        fail(where, path, f"the state of a {name} bit generator", value)
    try:
        bits.state = value
        exact = _json_equal(bits.state, value)
    except (LookupError, TypeError, ValueError, ArithmeticError, AttributeError):
        exact = False
    if not exact:
        fail(where, path, f"the state of a {name} bit generator", value)


def _json_equal(a: Any, b: Any) -> bool:
    """Whether two JSON-like values are equal, ints and floats not mixed (1 is not 1.0)."""
    if isinstance(a, Mapping):
        return (
            isinstance(b, Mapping)
            and len(a) == len(b)
            and all(k in b and _json_equal(v, b[k]) for k, v in a.items())
        )
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(_json_equal, a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return False
    return type(a) is type(b) and bool(a == b)


def block(value: Any, where: str, path: str, last: int) -> tuple[Mapping[str, Any], int]:
    """``[bit generator state, position]`` of a block-drawn stream: the position in
    ``[0, last]`` (the generator state is checked when it is set)."""
    pair = sequence(value, where, path, length=2)
    mapping(pair[0], where, f"{path}[0]")
    return pair[0], integer(pair[1], where, f"{path}[1]", high=last)


def flags(value: Any, n: int, where: str, path: str) -> list[bool]:
    """``n`` booleans from their packed form (:func:`pescador.mux._pools.pack_flags`)."""
    if not isinstance(value, str):
        fail(where, path, "a packed bitmap (a str)", value)
    if not value:
        return [False] * n
    size = (n + 7) // 8
    try:
        packed = base64.b64decode(value.encode("ascii"), validate=True)
        inflate = zlib.decompressobj()
        bits = inflate.decompress(packed, size + 1)
        complete = inflate.eof and not inflate.unused_data
    except (ValueError, binascii.Error, zlib.error):
        complete, bits = False, b""
    if not complete or len(bits) != size:
        fail(where, path, f"a packed bitmap of {n} flags", value)
    unpacked = np.unpackbits(np.frombuffer(bits, dtype=np.uint8))
    if unpacked[n:].any():
        fail(where, path, f"a packed bitmap of {n} flags", value)
    result: list[bool] = unpacked[:n].astype(bool).tolist()
    return result
