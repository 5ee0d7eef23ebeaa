"""The muxes' arguments: their checks, and what ``weights=None`` means (private).

Checks run in the constructors and raise :class:`~pescador.exceptions.PescadorError` naming
the mux, the parameter, the value and the expectation.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..core import Streamer
from ..exceptions import PescadorError


def weights_or_uniform(weights: Any, n: int) -> np.ndarray:
    """Per-streamer weights as floats: ``weights``, or all ones when it is ``None``.

    The one place that decides what ``weights=None`` means, for every mux, policy, candidate
    pool and worker share.
    """
    if weights is None:
        return np.ones(n)
    return np.asarray(weights, dtype=np.float64)


def equal_weights(weights: np.ndarray) -> bool:
    """Whether the positive ``weights`` are all the same (or there are none): draws among
    them then need no weighting."""
    positive = weights[weights > 0]
    return not len(positive) or bool(positive.min() == positive.max())


def as_streamers(streamers: Any, name: str) -> list[Streamer]:
    """The ``streamers`` argument as a list of Streamers (plain iterables are wrapped)."""
    if isinstance(streamers, (str, bytes)) or not isinstance(streamers, Iterable):
        raise PescadorError(
            f"{name}: `streamers` must be a collection of streams; got {streamers!r}"
        )
    out = []
    for i, item in enumerate(streamers):
        if isinstance(item, Streamer):
            out.append(item)
            continue
        try:
            out.append(Streamer(item))
        except PescadorError as exc:
            raise PescadorError(
                f"{name}: streamers[{i}] = {item!r} is not a stream (a Streamer, a generator "
                "function or an iterable)"
            ) from exc
    return out


def as_streamer(item: Any, name: str) -> Streamer:
    """One stream produced by a ChainMux's generator function, as a Streamer."""
    if isinstance(item, Streamer):
        return item
    try:
        return Streamer(item)
    except PescadorError as exc:
        raise PescadorError(f"{name} received an item that is not a stream: {item!r}") from exc


def check_weights(
    weights: Any, n_streams: int, name: str, what: str = "weights"
) -> np.ndarray | None:
    """Validate weights; return a float copy (never the caller's array), or None if uniform.

    ``what`` names them in errors (``weights``, or a schedule's ``weights(n)``).
    """
    if weights is None:
        return None
    try:
        w = np.array(np.atleast_1d(weights), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PescadorError(f"{name}: `{what}`={weights!r} must be numbers") from exc
    if w.ndim != 1 or len(w) != n_streams:
        raise PescadorError(
            f"{name}: `{what}` must be the same length as `streamers` ({n_streams}); "
            f"got {len(w)} weights"
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise PescadorError(f"{name}: `{what}` must be finite and non-negative; got {weights!r}")
    if not np.any(w > 0):
        raise PescadorError(f"{name}: `{what}` must contain at least one positive value")
    return w


def check_choice(value: Any, choices: Sequence[str], what: str, name: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise PescadorError(
            f"{value!r} is not a valid {what} for {name}; expected one of {', '.join(choices)}"
        )
    return value


def check_n_active(n_active: Any, name: str) -> int:
    if isinstance(n_active, bool) or not isinstance(n_active, (int, np.integer)) or n_active < 1:
        hint = ""
        if isinstance(n_active, (int, np.integer)) and n_active == 0:
            # pescador 3.0 accepted 0 and produced nothing (docs/compat.md).
            hint = " (a mux with no active streamer produces nothing: use max(1, n_active))"
        raise PescadorError(f"{name}: n_active={n_active!r} must be a positive integer{hint}")
    return int(n_active)


def check_rate(rate: Any, dist: str, name: str) -> float | None:
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise PescadorError(f"{name}: rate={rate!r} must be None or a finite number")
    value = float(rate)
    if not math.isfinite(value):
        raise PescadorError(f"{name}: rate={rate!r} must be None or a finite number")
    low_ok = value > 0 if dist == "constant" else value >= 1
    if not low_ok:
        bound = "> 0" if dist == "constant" else ">= 1"
        raise PescadorError(f"{name}: rate={rate!r} must be {bound} for dist={dist!r}")
    return value
