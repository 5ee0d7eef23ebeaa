"""Streamers: restartable recipes for streams of data, and the iterators they build.

A :class:`Streamer` describes how to produce a stream: a generator function and its arguments,
or an iterable. It holds no position. Each call to :meth:`Streamer.iterate` builds a fresh
:class:`StreamIterator`, which is the only object that changes as items are consumed. That split
is what makes streams restartable, picklable and (later) resumable from a checkpoint.

Iterators behave like generators for their callers (``next``, ``iter``, ``for``, ``close``,
``with``) and are released on garbage collection. Their hot path is plain: a ``for`` loop over a
:class:`StreamIterator` runs on C-level ``itertools`` machinery, so it adds only a few
nanoseconds per item to the wrapped generator.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import GeneratorType
from typing import Any, TypeVar

from ._iterator import _LIVE, StreamIterator
from ._iterator import load_state_of as load_state_of  # (re-exported for the maps)
from ._iterator import state_of as state_of
from ._passes import _CycleIterator, _StreamerIterator
from ._plan import _CALL, _ITER, _NESTED, ACTIVATION_RNG, _How, _Plan, rng_parameters
from ._seeds import InheritedSeed, resolve_seed
from .exceptions import PescadorError

__all__ = [
    "ACTIVATION_RNG",
    "PescadorError",
    "StreamIterator",
    "Streamer",
    "iterator_factory",
    "streamable",
]

#: Marks a callable that returns a pescador iterator (the maps), so Streamer accepts it.
FACTORY_MARK = "__pescador_iterator_factory__"


_F = TypeVar("_F", bound=Callable[..., Any])
#: A checkpoint to continue from (see StreamIterator.state_dict), or None.
_Checkpoint = Mapping[str, Any] | None
_S = TypeVar("_S", bound="Streamer")


def iterator_factory(func: _F) -> _F:
    """Mark ``func``, a function returning an iterator, as acceptable to :class:`Streamer`.

    Generator functions are accepted without marking; plain functions are not, because the
    pescador 3.0 contract rejects them. The maps use this so that
    ``Streamer(buffer_stream, stream, 32)`` works while they return stateful iterator objects.
    """
    setattr(func, FACTORY_MARK, True)
    return func


class Streamer:
    """A restartable stream: a generator function and its arguments, or an iterable.

    Each :meth:`iterate` calls the generator function again with the *same* ``args`` and
    ``kwargs`` objects (no copies), or calls ``iter()`` on the iterable, and yields its items
    unchanged. A Streamer over a one-shot iterator (a generator object, ``iter(list)``) can
    therefore be consumed only once.

    Parameters
    ----------
    streamer : generator function or iterable
        What produces the items. A Streamer or mux is accepted too; positional ``args`` are
        then its ``max_iter`` and ``cycle``.
    *args, **kwargs
        Passed to ``streamer`` when it is called; ignored for a plain iterable.

    Raises
    ------
    PescadorError
        If ``streamer`` is neither a generator function nor an iterable.

    Examples
    --------
    >>> def count_to(n):
    ...     yield from range(n)
    >>> stream = Streamer(count_to, 5)
    >>> list(stream)
    [0, 1, 2, 3, 4]
    >>> list(stream.iterate(max_iter=3))
    [0, 1, 2]
    >>> list(stream.cycle(max_iter=7))
    [0, 1, 2, 3, 4, 0, 1]

    Notes
    -----
    Order: the source's own. Finite when the source is, unless cycled; ``cycle()`` of a stream
    that yields nothing ends instead of spinning. No randomness of its own. State: the number of
    items delivered (and the state of a nested pescador stream).

    Subclasses (the muxes, ``ParallelStreamer``, ``ZMQStreamer``) validate their own arguments,
    then call :meth:`_init_stream` with ``_Plan.own(...)``, and build their iterators in
    :meth:`_iterate`; the rest (``with``, ``active``, opening as a mux's child) is shared.
    """

    def __init__(self, streamer: Any, *args: Any, **kwargs: Any) -> None:
        if not (
            inspect.isgeneratorfunction(streamer)
            or isinstance(streamer, Iterable)
            or getattr(streamer, FACTORY_MARK, False)
        ):
            raise PescadorError(
                "`streamer` must be an iterable or callable function that returns an iterable "
                f"object; got {streamer!r}"
            )
        self._init_stream(_plan_of(streamer), args, kwargs)

    def _init_stream(
        self,
        plan: _Plan,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Set the fields that every stream has: the one constructor path of all of them.

        Parameters
        ----------
        plan : _Plan
            How an activation starts: ``_plan_of(streamer)`` for a source, or
            ``_Plan.own(target)`` for a subclass that builds its own iterators.
        args, kwargs
            What the source is called with.
        """
        self._plan = plan
        self.args = args
        self.kwargs: dict[str, Any] = {} if kwargs is None else kwargs
        self.active_count_ = 0
        self.stream_: Iterator[Any] | None = None

    def __repr__(self) -> str:
        target = getattr(self.streamer, "__qualname__", None) or type(self.streamer).__name__
        parts = [target, *map(_short_repr, self.args)]
        parts += [f"{k}={_short_repr(v)}" for k, v in self.kwargs.items()]
        return f"{type(self).__name__}({', '.join(parts)})"

    @property
    def streamer(self) -> Any:
        """The generator function or iterable this stream draws from."""
        plan = self._plan
        if plan.target is None and plan.how is _How.OWN:
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute 'streamer' (it draws from "
                "its `streamers`)"
            )
        return plan.target

    @streamer.setter
    def streamer(self, streamer: Any) -> None:
        own = self._plan.how is _How.OWN
        self._plan = _Plan.own(streamer) if own else _plan_of(streamer)

    # -- activation -------------------------------------------------------------------------
    def _source(self, seed: InheritedSeed) -> Iterable[Any]:
        """One activation's raw items, not yet started (called at the first ``next``)."""
        plan = self._plan
        how = plan.how
        if how is _CALL:
            wanted = plan.rng_parameters
            args, kwargs = self._with_rngs(wanted, seed) if wanted else (self.args, self.kwargs)
            stream: Any = plan.target(*args, **kwargs)
            if (
                type(stream) is not GeneratorType
                and isinstance(stream, StreamIterator)
                and stream._seed is None
            ):
                stream._seed = seed  # a map over a mux: the mux inherits the seed
            return stream
        if how is _NESTED:
            return plan.target._call(self.args, self.kwargs, seed)
        if how is _ITER:
            return iter(plan.target)
        return self._iterate(None, seed, False)  # a subclass's own iterator

    def _with_rngs(
        self, wanted: tuple[tuple[str, int], ...], seed: InheritedSeed
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``args`` and ``kwargs`` with a seeded generator for each ``ACTIVATION_RNG``
        parameter that was not given (or was given as ``ACTIVATION_RNG``)."""
        args, kwargs = list(self.args), dict(self.kwargs)
        activation_seed = resolve_seed(None, seed)
        for stream_id, (name, position) in enumerate(wanted):
            if position < len(args):
                if args[position] is ACTIVATION_RNG:
                    args[position] = activation_seed.generator(stream_id)
            elif kwargs.get(name, ACTIVATION_RNG) is ACTIVATION_RNG:
                kwargs[name] = activation_seed.generator(stream_id)
        return tuple(args), kwargs

    def _call(self, args: tuple[Any, ...], kwargs: dict[str, Any], seed: InheritedSeed) -> Any:
        """``self(*args, **kwargs)`` on behalf of a wrapping Streamer, passing the seed down."""
        bound = _CALL_SIGNATURE.bind(*args, **kwargs)
        max_iter = bound.arguments.get("max_iter")
        if bound.arguments.get("cycle", False):
            return _CycleIterator(self, max_iter, seed, False)
        return self._iterate(max_iter, seed, False)

    def _iterate(
        self, max_iter: Any, seed: InheritedSeed, counted: bool = True
    ) -> StreamIterator[Any]:
        """An iteration whose randomness, if unseeded, comes from ``seed`` (set by muxes).

        ``counted=False`` keeps it out of :attr:`active` (iterations made by a mux).
        Subclasses that build their own iterators override this.
        """
        return _StreamerIterator(self, max_iter, seed, counted)

    def _open_child(
        self, seed: InheritedSeed, state: Mapping[str, Any] | None = None
    ) -> tuple[StreamIterator[Any], Iterator[Any]]:
        """Start an activation for a mux's slot: not counted in ``active``, no limit.

        Returns the child iterator and its items, the C-level iterator that the mux pulls
        from. ``state``: continue from a checkpoint of such a child.
        """
        if self._plan.direct and state is None and self.stream_ is None:
            # A plain generator function starts here at once, without the general path.
            direct = _StreamerIterator(self, None, seed, False)
            return direct, direct._wire(self._source(seed))
        child = self._iterate(None, seed, False)
        if state is not None:
            child._load(state)
        return child, iter(child)

    def __enter__(self: _S) -> _S:
        if self.stream_ is not None:
            return self
        activated = copy.copy(self)
        activated.stream_ = self._enter_items(activated)
        activated.active_count_ = 0
        self._acquire()
        return activated

    def _enter_items(self, activated: Streamer) -> Iterator[Any]:
        """The items of ``activated``, the copy that ``with self as activated:`` hands out."""
        return iter(self._source(None))

    def __exit__(self, *exc: object) -> None:
        if self.stream_ is not None:
            return
        self._release()
        if self.active_count_ < 0:
            raise PescadorError(f"Active stream count passed below 0 for {self!r}")

    def _acquire(self) -> None:
        """One more iteration of this stream is running (see :attr:`active`)."""
        self.active_count_ += 1

    def _release(self) -> None:
        """One running iteration of this stream has finished."""
        self.active_count_ -= 1

    @property
    def active(self) -> int:
        """The number of iterations of this stream started and not yet finished.

        An iteration finishes when its source ends, raises, is closed, or is dropped.
        """
        live = _LIVE.get(self)
        if live:
            for activation in list(live):
                activation.poll()
        return self.active_count_

    @property
    def is_activated_copy(self) -> bool:
        """Whether this object is the activated copy made by ``with stream as copy:``."""
        return self.stream_ is not None

    # -- iteration --------------------------------------------------------------------------
    def iterate(self, max_iter: Any = None, state: _Checkpoint = None) -> StreamIterator[Any]:
        """Iterate over the stream once.

        Parameters
        ----------
        max_iter : int or None
            Stop after this many items (counting those delivered before ``state``); ``None``
            for no limit. The source is never asked for more items than are delivered.
        state : dict, optional
            A checkpoint from :meth:`StreamIterator.state_dict` of an iteration of this
            stream: continue right after the items it had delivered.

        Returns
        -------
        StreamIterator
            A new, independent iterator. It starts (calls the generator function) at the first
            ``next``, and counts in :attr:`active` until it ends, is closed or is dropped.
        """
        return _resumed(self._iterate(max_iter, None), state)

    def cycle(self, max_iter: Any = None, state: _Checkpoint = None) -> StreamIterator[Any]:
        """Iterate over the stream again and again, restarting it each time it ends.

        Parameters
        ----------
        max_iter : int or None
            Stop after this many items in total; ``None`` for no limit.
        state : dict, optional
            A checkpoint from :meth:`StreamIterator.state_dict` of a ``cycle()`` of this
            stream.

        Returns
        -------
        StreamIterator
            Infinite unless ``max_iter`` is given, or a pass yields nothing (then it ends).
        """
        return _resumed(_CycleIterator(self, max_iter), state)

    def __call__(
        self, max_iter: Any = None, cycle: bool = False, state: _Checkpoint = None
    ) -> StreamIterator[Any]:
        """``self.cycle(max_iter, state)`` if ``cycle`` else ``self.iterate(max_iter, state)``."""
        if cycle:
            return self.cycle(max_iter, state)
        return self.iterate(max_iter, state)

    def __iter__(self) -> Iterator[Any]:
        """A plain, fast iterator over one pass (use :meth:`iterate` for the stateful object)."""
        return iter(self.iterate())


def _plan_of(streamer: Any) -> _Plan:
    """The plan of a :class:`Streamer` over ``streamer``."""
    if isinstance(streamer, Streamer):
        return _Plan(_NESTED, streamer)
    if callable(streamer):
        wanted = rng_parameters(streamer)
        return _Plan(_CALL, streamer, wanted, direct=not wanted)
    return _Plan(_ITER, streamer)


def _resumed(it: StreamIterator[Any], state: _Checkpoint) -> StreamIterator[Any]:
    """``it``, continuing from the checkpoint ``state`` if one is given."""
    if state is not None:
        it.load_state_dict(state)
    return it


def _call_signature(max_iter: Any = None, cycle: bool = False) -> None:
    """The parameters of :meth:`Streamer.__call__`."""


_CALL_SIGNATURE = inspect.signature(_call_signature)


def _short_repr(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def streamable(func: Callable[..., Any]) -> Callable[..., Streamer]:
    """Make a generator function return a :class:`Streamer` when called.

    The arguments are checked against ``func``'s signature at call time (a ``TypeError`` for
    wrong ones) and defaults are filled in, so the Streamer records every argument.

    Examples
    --------
    >>> @streamable
    ... def letters(word, times=1):
    ...     for _ in range(times):
    ...         yield from word
    >>> stream = letters("ab", times=2)
    >>> stream.args, stream.kwargs
    (('ab', 2), {})
    >>> "".join(stream)
    'abab'
    """
    signature = inspect.signature(func)

    @functools.wraps(func)
    def make_streamer(*args: Any, **kwargs: Any) -> Streamer:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return Streamer(func, *bound.args, **bound.kwargs)

    return make_streamer
