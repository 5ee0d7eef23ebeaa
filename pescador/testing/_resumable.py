"""assert_resumable: a checkpoint taken at each position resumes exactly where it was taken."""

from __future__ import annotations

import json
import numbers
from typing import Any

import numpy as np

from ._compare import Equal, _first_difference, _show, items_equal
from ._drive import _END, _count, _iteration, _take

#: ``positions=None`` checkpoints at every position up to this many items, else at this many.
DEFAULT_POSITIONS = 100


def checkpoint_positions(positions: Any, n: int) -> list[int]:
    """The sorted checkpoint positions in ``0 .. n`` that ``positions`` asks for.

    ``"all"``: every one. An int ``k``: ``0``, ``n`` and ``k - 2`` others drawn at random
    with a fixed seed (so a check is deterministic, yet its checkpoints fall at varied
    phases of the stream). ``None``: ``"all"`` if ``n <=`` :data:`DEFAULT_POSITIONS`, else
    :data:`DEFAULT_POSITIONS` positions. A collection of ints: those.

    Examples
    --------
    >>> checkpoint_positions("all", 3)
    [0, 1, 2, 3]
    >>> len(checkpoint_positions(10, 1000)), checkpoint_positions(10, 1000)[::9]
    (10, [0, 1000])
    >>> checkpoint_positions([5, 2, 5], 10)
    [2, 5]
    """
    if positions is None:
        positions = "all" if n <= DEFAULT_POSITIONS else DEFAULT_POSITIONS
    if isinstance(positions, str):
        if positions != "all":
            raise ValueError(f"positions={positions!r}: expected None, 'all', an int or ints")
        return list(range(n + 1))
    if isinstance(positions, numbers.Integral) and not isinstance(positions, bool):
        k = int(positions)
        if k < 1:
            raise ValueError(f"positions={positions!r}: expected at least one checkpoint")
        if k >= n + 1:
            return list(range(n + 1))
        inner = np.random.default_rng(0).choice(np.arange(1, n), max(0, k - 2), replace=False)
        return sorted({0, n, *inner.tolist()})[:k]
    chosen = sorted({_count(p, "positions[...]") for p in positions})
    if chosen and chosen[-1] > n:
        raise ValueError(f"positions: {chosen[-1]} is beyond n={n}")
    return chosen


def _json_state(it: Any, position: int) -> str:
    """The JSON text of ``it.state_dict()``, or an AssertionError saying why there is none."""
    where = f"at position {position}"
    try:
        state = it.state_dict()
    except Exception as exc:
        raise AssertionError(f"state_dict() {where} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(state, dict):
        raise AssertionError(f"state_dict() {where} returned a {type(state).__name__}, not a dict")
    try:
        return json.dumps(state, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"the state {where} is not JSON-serialisable: {exc}") from exc


def assert_resumable(
    stream: Any,
    n: int = 100,
    *,
    positions: Any = None,
    equal: Equal | None = None,
    cycle: bool = False,
) -> list[Any]:
    """Check that a checkpoint taken at each position resumes exactly where it was taken.

    One iteration of ``n`` items is the *uninterrupted* sequence. At each chosen position
    ``k`` (before item ``k``; ``0`` is before the first, ``n`` after the last) its
    ``state_dict()`` is taken, turned into JSON text and back, and given to a new iteration
    (``stream.iterate(max_iter=n, state=state)``). The new iteration must yield exactly the
    items ``k, k+1, ...`` of the uninterrupted one, and end where it ends.

    The uninterrupted sequence is the checkpointed iteration itself, so the check also holds
    for unseeded streams (a state records the seed it was drawn with); taking a state must
    not disturb the iteration. For a seeded stream, compare the items returned with another
    iteration (or use :func:`assert_restartable`) to check that too.

    Parameters
    ----------
    stream : Streamer, mux or ParallelStreamer
        Anything with ``iterate(max_iter=..., state=...)`` (``cycle(...)`` if ``cycle``).
    n : int
        Length of the uninterrupted sequence (shorter if the stream ends first).
    positions : None, "all", int, or collection of ints
        Where to checkpoint, in ``0 .. n``: ``"all"``; an int ``k`` for ``0``, ``n`` and
        ``k - 2`` positions drawn at random with a fixed seed; ``None`` (default) for every
        position if ``n <= 100``, else 100 of them. Resuming replays up to ``n - k`` items
        per checkpoint, so ``"all"`` costs about ``n**2 / 2`` items.
    equal : callable, optional
        ``equal(expected, got) -> bool`` for two items; :func:`items_equal` by default.
    cycle : bool
        Check ``stream.cycle(max_iter=n, state=...)`` instead of ``iterate``.

    Returns
    -------
    list
        The uninterrupted sequence.

    Raises
    ------
    AssertionError
        Naming the first checkpoint position whose resumed items differ (and the first item
        that differs), or a state that cannot be taken, serialised or loaded.

    Examples
    --------
    >>> import pescador
    >>> streams = [pescador.Streamer("abc"), pescador.Streamer("xyz")]
    >>> "".join(assert_resumable(pescador.RoundRobinMux(streams), n=10))
    'axbycz'

    A generator that draws from numpy's global RNG cannot be replayed exactly, so it is not
    resumable (give it an ``ACTIVATION_RNG`` parameter instead):

    >>> import numpy as np
    >>> def noise():
    ...     while True:
    ...         yield int(np.random.randint(1000))
    >>> assert_resumable(pescador.Streamer(noise), n=20)
    Traceback (most recent call last):
    ...
    AssertionError: Streamer(noise) does not resume exactly from a checkpoint at position 0 ...
    """
    n = _count(n)
    equal = items_equal if equal is None else equal
    chosen = checkpoint_positions(positions, n)
    wanted = set(chosen)
    items: list[Any] = []
    saved: list[tuple[int, str, str]] = []  # (position, what, JSON state)
    it = _iteration(stream, n, cycle=cycle)
    try:
        for k in range(n + 1):
            if k in wanted:
                saved.append((k, f"position {k}", _json_state(it, k)))
            if k == n:
                break
            item = next(it, _END)
            if item is _END:  # a finite stream: positions past its end resume at its end
                if any(p >= k for p in chosen):
                    saved.append((k, f"position {k} (after the end)", _json_state(it, k)))
                break
            items.append(item)
    finally:
        it.close()
    name = _show(stream, 80)
    for k, where, text in saved:
        state = json.loads(text)
        try:
            resumed = _iteration(stream, n, state, cycle)
            rest = _take(resumed, len(items) - k + 1)
        except Exception as exc:
            raise AssertionError(
                f"{name} cannot resume from its checkpoint at {where}: {type(exc).__name__}: {exc}"
            ) from exc
        problem = _first_difference(items[k:], rest, equal, offset=k)
        if problem is not None:
            raise AssertionError(
                f"{name} does not resume exactly from a checkpoint at {where} "
                f"({len(text)} bytes of JSON): {problem}"
            )
    return items
