"""Checkpoint state: the envelope, validation, and the replay of plain sources (private).

Every pescador iterator describes its position as a small dict of JSON types (``state_dict``).
The outermost dict carries the format version; each nested dict carries the ``kind`` of the
iterator that wrote it and, for muxes, the shape of the pipeline, so that a state from another
pipeline or library version is rejected with a :class:`~pescador.exceptions.StateError` saying
what differs, instead of resuming somewhere wrong.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import islice
from typing import Any

from .exceptions import StateError

#: Version of the state format; bumped when a state written by an older version would be
#: misread.
STATE_VERSION = 1

_VERSION_KEY = "pescador_state"


def wrap(state: dict[str, Any]) -> dict[str, Any]:
    """The outermost state: ``state`` with the format version."""
    return {_VERSION_KEY: STATE_VERSION, **state}


def unwrap(state: Any) -> dict[str, Any]:
    """Check the format version of an outermost state and return it."""
    if not isinstance(state, Mapping):
        raise StateError(f"a state must be a dict from state_dict(); got {type(state).__name__}")
    version = state.get(_VERSION_KEY)
    if version != STATE_VERSION:
        raise StateError(
            f"this state was written by state format {version!r}; this version of pescador "
            f"reads format {STATE_VERSION}"
        )
    return dict(state)


def check(state: Any, kind: str, **shape: Any) -> dict[str, Any]:
    """Check that ``state`` was written by an iterator of ``kind`` with the same ``shape``."""
    if not isinstance(state, Mapping) or "kind" not in state:
        raise StateError(f"expected the state of a {kind}; got {_short(state)}")
    if state["kind"] != kind:
        raise StateError(
            f"state of a {state['kind']} given to a {kind}: the pipeline's shape differs"
        )
    differs = [
        f"{name}={state.get(name)!r} in the state, {value!r} here"
        for name, value in shape.items()
        if state.get(name) != value
    ]
    if differs:
        raise StateError(f"{kind} state does not match this {kind}: " + "; ".join(differs))
    return dict(state)


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


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."
