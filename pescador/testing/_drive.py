"""How :mod:`pescador.testing` runs a stream: one iteration, taken and closed."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from itertools import islice
from typing import Any

from ._compare import _show

#: What ``next(iterator, _END)`` returns at the end of an iteration.
_END: Any = object()


def _iteration(
    stream: Any, n: int | None, state: Mapping[str, Any] | None = None, cycle: bool = False
) -> Any:
    method = getattr(stream, "cycle" if cycle else "iterate", None)
    if method is None:
        raise TypeError(
            f"expected a pescador stream (a Streamer, a mux, a ParallelStreamer) with "
            f"{'cycle' if cycle else 'iterate'}(max_iter=..., state=...); got "
            f"{_show(stream, 80)}. Check a map through the Streamer that calls it, e.g. "
            "Streamer(buffer_stream, mux, 32)"
        )
    if state is None:
        return method(max_iter=n)
    return method(max_iter=n, state=state)


def _count(n: Any, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"{name}={n!r} must be a non-negative integer")
    return int(n)


def _close(iterator: Any) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def _take(iterator: Any, n: int) -> list[Any]:
    """Up to ``n`` items of ``iterator``, which is then closed (its resources released)."""
    try:
        return list(islice(iterator, n))
    finally:
        _close(iterator)
