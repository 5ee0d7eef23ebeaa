"""The iterator behind every pescador iteration: generator-like, fast, and checkpointable.

:class:`StreamIterator` is the base of the iterators that Streamers, muxes and maps return.
It owns what they share: lazy start, ``max_iter``, the ``active`` count of the stream it
iterates, ``close`` and the context manager, the count of items delivered, and the checkpoint
protocol (``state_dict``/``load_state_dict``). Subclasses say how to open a pass and what their
position is.
"""

from __future__ import annotations

import math
import numbers
import sys
import weakref
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain, compress, islice, repeat
from operator import length_hint
from types import GeneratorType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import _state
from ._seeds import InheritedSeed
from .exceptions import PescadorError

if TYPE_CHECKING:
    from .core import Streamer

__all__ = ["StreamIterator", "check_max_iter", "load_state_of", "restore_source", "state_of"]

_T = TypeVar("_T")

#: Tally length: an iterator can deliver at most this many items (it is never reached).
_BIG = sys.maxsize

#: What a finished iterator iterates over.
_EMPTY: Iterator[Any] = iter(())

#: The running activations of each Streamer, to find those whose generator raised.
_LIVE: weakref.WeakKeyDictionary[Streamer, weakref.WeakSet[_Activation]] = (
    weakref.WeakKeyDictionary()
)


def check_max_iter(max_iter: Any) -> int | None:
    """Convert a ``max_iter`` argument to an item count (``None`` for unbounded).

    Numbers compare numerically, as in pescador 3.0: ``2.5`` gives 3 items and ``5e3`` gives
    5000; zero or a negative number gives none.
    """
    if max_iter is None:
        return None
    if isinstance(max_iter, numbers.Real) and not isinstance(max_iter, bool):
        value = float(max_iter)
        if math.isnan(value):
            raise PescadorError("max_iter=nan: expected None or a number of items")
        if math.isinf(value):
            return None if value > 0 else 0
        return max(0, math.ceil(value))
    raise PescadorError(f"max_iter={max_iter!r}: expected None or a number of items")


class _Activation:
    """Bookkeeping of one running activation: the owner's ``active`` count and the source.

    It is the last link of an iterator's item chain, so reaching it means the stream ended; its
    finaliser covers iterators dropped half-way. It holds no reference back to the iterator, so
    dropping the iterator frees everything at once, without the cycle collector.
    """

    __slots__ = ("__weakref__", "live", "owner", "source")

    def __init__(self, owner: Streamer | None, source: Any) -> None:
        self.owner = owner
        self.source: Any = source
        self.live = True
        if owner is not None:
            owner._acquire()
            live = _LIVE.get(owner)
            if live is None:
                live = _LIVE[owner] = weakref.WeakSet()
            live.add(self)

    def poll(self) -> None:
        """End the activation if its generator has finished (raised) without reaching us."""
        source = self.source
        if type(source) is GeneratorType and source.gi_frame is None:
            self.end()

    def __iter__(self) -> _Activation:
        return self

    def __next__(self) -> Any:
        self.end()
        raise StopIteration

    def end(self) -> None:
        """Finish the activation: close the source and release the owner's count, once."""
        if self.live:
            self.live = False
            source, self.source = self.source, iter(())
            owner, self.owner = self.owner, None
            if owner is not None:
                owner._release()
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def __del__(self) -> None:
        if self.live:
            self.live = False
            owner = self.owner
            if owner is not None:
                owner._release()


class StreamIterator(Generic[_T]):
    """One pass over a stream: the stateful object behind every pescador iteration.

    Subclasses say how to open the pass (:meth:`_open`) and what their position is
    (:meth:`_own_state`); this class supplies the generator-like behaviour shared by all of
    them: lazy start on the first ``next`` (or ``iter``), ``max_iter`` truncation that never
    pulls an extra item, an ``active`` count on the owning stream, ``close`` and the context
    manager, a count of the items delivered, and checkpoint state.

    Iterating it in a ``for`` loop (or ``list``) uses a C-level iterator returned by
    ``__iter__``; ``next(it)`` takes a slightly slower Python path. Both share one position.

    Checkpoints: :meth:`state_dict` describes the items delivered so far as a small dict of
    JSON types; ``stream.iterate(state=state)`` (or :meth:`load_state_dict` before the first
    ``next``) continues exactly after them.
    """

    __slots__ = (
        "__weakref__",
        "_activation",
        "_fast",
        "_iterated",
        "_limit",
        "_resume",
        "_seed",
        "_source",
        "_tally",
    )

    #: The name written in, and expected from, this iterator's state.
    kind = "iterator"

    def __init__(
        self, max_iter: Any = None, seed: InheritedSeed = None, iterated: Streamer | None = None
    ) -> None:
        # ``iterated``: the stream this pass iterates, if its activated copy (``stream_``)
        # should be followed rather than opened anew (see :meth:`_start`).
        self._limit = None if max_iter is None else check_max_iter(max_iter)
        self._seed = seed
        self._iterated = iterated
        self._fast: Iterator[_T] | None = None
        self._tally: Iterator[bool] | None = None
        self._source: Any = None
        self._activation: _Activation | None = None
        self._resume: dict[str, Any] | None = None

    # -- what subclasses provide ------------------------------------------------------------
    def _open(self) -> tuple[Iterable[_T], Streamer | None]:
        """Start the pass: return the raw items and the stream whose ``active`` count it holds.

        When resuming, ``self._resume`` holds the state to continue from.
        """
        raise NotImplementedError

    def _own_state(self) -> dict[str, Any]:
        """The subclass's part of the state (called only after the pass started)."""
        return {}

    # -- generator-like behaviour -----------------------------------------------------------
    def _start(self) -> Iterator[_T]:
        resume = self._resume
        source: Iterable[_T]
        iterated = self._iterated
        if iterated is not None and iterated.stream_ is not None:
            # The copy that ``with stream as copy:`` handed out: every pass over it takes from
            # its one running iteration.
            source, owner = iterated.stream_, None
        elif resume is None:
            source, owner = self._open()
        else:
            try:
                source, owner = self._open()
            except _state.MALFORMED as exc:
                # What validation missed: the state is malformed (unless the user's code
                # raised it, within PASSTHROUGH).
                if _state.passes(exc):
                    raise
                raise _state.malformed(self.kind, exc) from exc
        done = 0 if resume is None else resume["n"]
        fast = self._wire(source, done)
        if self._limit is not None:
            fast = islice(fast, max(0, self._limit - done))
        if owner is not None or self._limit is not None:
            # Reaching the end (or max_iter) releases the count and closes the source.
            self._activation = activation = _Activation(owner, source)
            fast = chain(fast, activation)
        self._fast = fast
        return fast

    def _wire(self, source: Iterable[_T], done: int = 0) -> Iterator[_T]:
        """Pass ``source``'s items through a tally that counts them (C-level, no copies)."""
        self._source = source
        self._tally = tally = repeat(True, _BIG - done)
        self._fast = fast = compress(source, tally)
        return fast

    def __iter__(self) -> Iterator[_T]:
        fast = self._fast
        if fast is None:
            fast = self._start()
        return fast

    def __next__(self) -> _T:
        fast = self._fast
        if fast is None:
            fast = self._start()
        return next(fast)

    def close(self) -> None:
        """Stop the pass early and release its source; later ``next`` calls raise StopIteration.

        Idempotent. A pass that never started is simply marked finished.
        """
        if self._fast is None:
            self._tally = repeat(True, _BIG - self.items_delivered)
        self._fast = _EMPTY
        activation, self._activation = self._activation, None
        source, self._source = self._source, None
        if activation is not None:
            activation.end()
        elif source is not None:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> StreamIterator[_T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def started(self) -> bool:
        """Whether the pass has started (its first item was asked for)."""
        return self._fast is not None

    @property
    def items_delivered(self) -> int:
        """How many items this iterator has delivered so far (before a checkpoint included)."""
        tally = self._tally
        if tally is None:
            return self._resume["n"] if self._resume is not None else 0
        return _BIG - length_hint(tally)

    # -- checkpoint state -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The position of this iterator: the items delivered so far, as JSON types.

        ``stream.iterate(state=it.state_dict())`` on the same stream (or an identical one, in
        another process) continues with the item that would have come next.

        Raises
        ------
        StateError
            If a source of the pipeline cannot describe its position.
        """
        return _state.wrap(self._state_dict())

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state`` (from :meth:`state_dict`); call before the first ``next``.

        Raises
        ------
        StateError
            If the iterator has started, or the state comes from a different pipeline or
            state format.
        """
        self._load(_state.unwrap(state))

    def _state_dict(self) -> dict[str, Any]:
        if self._fast is None:
            if self._resume is not None:
                return dict(self._resume)
            # Start the pass (it pulls nothing) so that its seed is fixed and recorded: the
            # state must describe the same stream that this iterator will go on to produce.
            self._start()
        head = {"kind": self.kind, "n": self.items_delivered, **self._shape()}
        if self._fast is _EMPTY or (self._activation is not None and not self._activation.live):
            return {**head, "done": True}
        return {**head, **self._own_state()}

    def _shape(self) -> dict[str, Any]:
        """What a state must agree on to be loaded here (the pipeline's shape)."""
        return {}

    def _load(self, state: Mapping[str, Any]) -> None:
        if self._fast is not None:
            raise _state.StateError("load_state_dict() must be called before the first next()")
        try:
            self._resume = self._check_state(state)
        except _state.MALFORMED as exc:
            raise _state.malformed(self.kind, exc) from exc

    def _check_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """Validate a state for this iterator: its kind and shape, its count of items, and
        (subclasses) what can be checked of its own fields before the pass opens. The rest is
        checked by :meth:`_open` before it is used."""
        return _state.check(state, self.kind, **self._shape())


def state_of(source: Any) -> dict[str, Any] | None:
    """The state of a source iterator, if it can describe its position."""
    if isinstance(source, StreamIterator):
        return source._state_dict()
    state_dict = getattr(source, "state_dict", None)
    if state_dict is not None and hasattr(source, "load_state_dict"):
        return dict(state_dict())
    return None


def load_state_of(source: Any, state: Mapping[str, Any]) -> None:
    """Restore a source iterator's position (see :func:`state_of`)."""
    if isinstance(source, StreamIterator):
        source._load(state)
    else:
        source.load_state_dict(state)


def restore_source(
    source: Any, state: Any, where: str, path: str, most: int | None = None
) -> None:
    """Restore a source iterator's position from field ``path`` of the state ``where``.

    A pescador iterator opens at once, so that the errors of its state (nested ones
    included) say where that state is; if it is a fresh one (made for this pass), its count
    ``n`` must be at most ``most``, which bounds what it may replay. A source with
    ``load_state_dict`` (the user's) may reject the state with any of the errors of a
    malformed state (``KeyError``, ``ValueError``...): they become a StateError, chained
    from the original.

    Raises
    ------
    StateError
        If the state is malformed, or the source cannot be restored.
    """
    if isinstance(source, StreamIterator):
        if most is not None and source._fast is None and source._resume is None:
            count = state.get("n") if isinstance(state, Mapping) else None
            if type(count) is int and count > most:
                _state.fail(where, f"{path}.n", f"at most {most}", count)
        try:
            source._load(state)
            iter(source)
        except _state.StateError as exc:
            _state.within(exc, f"{where}: {path}")
            raise
    elif hasattr(source, "load_state_dict"):
        try:
            source.load_state_dict(state)
        except _state.MALFORMED as exc:
            raise _state.StateError(
                f"{where}: {path}: {type(source).__name__}.load_state_dict rejected the state "
                f"({type(exc).__name__}: {exc})"
            ) from exc
    else:
        raise _state.StateError(
            f"{where}: {path}: the state holds the position of a source that can resume, but "
            f"this one ({type(source).__name__}) cannot load it"
        )
