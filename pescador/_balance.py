"""Balanced shares of a stream, for consumers that each deliver the same number of items
(private): the DataLoader workers and ranks of :mod:`pescador.torch`, the parts of
:meth:`pescador.ray.RayStreamer.split`.

Every consumer runs the share ``streamers[c::n]`` of the stream's outermost mux, as in
:class:`~pescador.parallel.ParallelStreamer`. A DataLoader takes one item from each of its
workers in turn, every rank takes as many steps as the others, and the parts of a split stream
are as long as each other, so each consumer delivers the same number of items: the mix keeps
the mux's proportions only if every share carries the same total weight. ParallelStreamer
compensates in its merge; where the merge is fixed, the split itself is balanced instead.

:func:`split_for` builds a copy of the stream whose outermost mux lists its streamers in an
order such that ``streamers[c::n]`` is consumer ``c``'s group of a balanced partition (largest
weight first, each to the lightest group), padded with empty streamers of weight 0 where the
groups differ in size (a zero-weight streamer is never activated, an empty one yields
nothing). With equal weights the partition is the plain ``[c::n]`` and the stream is left as
it is. :func:`epoch_stream` reseeds the copy's outermost mux for an epoch (DataLoader).
"""

from __future__ import annotations

import copy
import heapq
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._sharding import outermost_mux
from .core import Streamer
from .exceptions import PescadorError
from .mux import BaseMux

__all__ = ["balanced_groups", "epoch_stream", "split_for"]

#: How deep into Streamer arguments the outermost mux is looked for (as in ``outermost_mux``).
_MAX_DEPTH = 8


def balanced_groups(weights: Sequence[float], n: int) -> list[list[int]]:
    """Partition ``range(len(weights))`` into ``n`` groups of nearly equal total weight.

    Greedy (longest processing time first): streamers by decreasing weight, each to the group
    with the least weight so far (ties: the fewest streamers, then the lowest index). Each
    group lists its streamers in their original order. With equal weights the groups are
    ``range(c, len(weights), n)``.

    >>> balanced_groups([3, 1, 1, 1], 2)
    [[0], [1, 2, 3]]
    >>> balanced_groups([1, 1, 1, 1, 1], 2)
    [[0, 2, 4], [1, 3]]
    """
    heap = [(0.0, 0, c) for c in range(n)]
    groups: list[list[int]] = [[] for _ in range(n)]
    for i in sorted(range(len(weights)), key=lambda i: (-weights[i], i)):
        total, size, c = heapq.heappop(heap)
        groups[c].append(i)
        heapq.heappush(heap, (total + weights[i], size + 1, c))
    return [sorted(group) for group in groups]


def _weights(mux: BaseMux) -> list[float] | None:
    weights = getattr(mux, "weights", None)
    return None if weights is None else [float(w) for w in weights]


#: What pads a short group: it yields nothing, and has weight 0 where weights exist.
_PAD = Streamer(())


def _laid_out(mux: BaseMux, n: int) -> BaseMux:
    """A copy of ``mux`` whose ``streamers[c::n]`` are balanced groups (``mux`` if the plain
    ``[c::n]`` split already is one)."""
    weights = _weights(mux)
    m = len(mux.streamers)
    groups = balanced_groups([1.0] * m if weights is None else weights, n)
    if groups == [list(range(c, m, n)) for c in range(n)]:
        return mux
    rows = max(len(group) for group in groups)
    order: list[int | None] = [None] * (rows * n)
    for c, group in enumerate(groups):
        for k, i in enumerate(group):
            order[k * n + c] = i
    laid = copy.copy(mux)
    laid.streamers = [_PAD if i is None else mux.streamers[i] for i in order]
    has_weights = hasattr(mux, "weights")
    if has_weights:
        w = [1.0] * m if weights is None else weights
        laid.weights = np.array([0.0 if i is None else w[i] for i in order])  # type: ignore[attr-defined]
    elif any(i is None for i in order) and not _pads_are_harmless(mux):
        raise PescadorError(f"cannot balance the shares of {mux!r}")
    return laid


def _pads_are_harmless(mux: BaseMux) -> bool:
    # RoundRobinMux and ChainMux (no weights): an empty streamer only ends at once.
    return type(mux).__name__ in ("RoundRobinMux", "ChainMux")


def _replace(node: Any, target: Any, new: Any, depth: int = 0) -> Any:
    """``node`` with every occurrence of ``target`` in its Streamer tree replaced by ``new``
    (copies along the way; ``node`` itself is unchanged)."""
    if node is target:
        return new
    if depth > _MAX_DEPTH or not isinstance(node, Streamer) or isinstance(node, BaseMux):
        return node
    source = _replace(node.streamer, target, new, depth + 1)
    args = tuple(_replace(a, target, new, depth + 1) for a in node.args)
    kwargs = {k: _replace(v, target, new, depth + 1) for k, v in node.kwargs.items()}
    if (
        source is node.streamer
        and all(a is b for a, b in zip(args, node.args, strict=True))
        and all(kwargs[k] is v for k, v in node.kwargs.items())
    ):
        return node
    replaced = copy.copy(node)
    replaced.streamer = source
    replaced.args = args
    replaced.kwargs = kwargs
    return replaced


def positive_streamers(stream: Any) -> int | None:
    """How many streamers of the outermost mux can deliver items (weight > 0); ``None`` when
    there is no mux or its streamers are not a list."""
    mux = outermost_mux(stream)
    if mux is None or not isinstance(mux.streamers, list):
        return None
    weights = _weights(mux)
    if weights is None:
        return len(mux.streamers)
    return sum(1 for w in weights if w > 0)


def split_for(stream: Any, n: int) -> Any:
    """``stream`` with its outermost mux laid out for ``n`` balanced shares (see the module)."""
    mux = outermost_mux(stream)
    if mux is None or n == 1 or not isinstance(mux.streamers, list):
        return stream
    laid = _laid_out(mux, n)
    return stream if laid is mux else _replace(stream, mux, laid)


def epoch_stream(stream: Any, seed_sequence: np.random.SeedSequence) -> Any:
    """``stream`` with its outermost mux seeded by ``seed_sequence`` (a copy; the rest of the
    tree inherits the seed it is iterated with)."""
    mux = outermost_mux(stream)
    if mux is None:
        return stream
    seeded = copy.copy(mux)
    seeded.random_state = seed_sequence
    return _replace(stream, mux, seeded)
