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
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import GeneratorType
from typing import Any, TypeVar

from . import _state
from ._iterator import (
    _EMPTY,
    _LIVE,
    StreamIterator,
    check_max_iter,
    load_state_of,
    state_of,
)
from ._seeds import InheritedSeed, Seed, resolve_seed
from .exceptions import PescadorError

__all__ = [
    "ACTIVATION_RNG",
    "PescadorError",
    "StreamIterator",
    "Streamer",
    "iterator_factory",
    "streamable",
]

#: How a Streamer starts an activation (see Streamer.streamer).
_NESTED, _CALL, _ITER = 0, 1, 2

#: Marks a callable that returns a pescador iterator (the maps), so Streamer accepts it.
FACTORY_MARK = "__pescador_iterator_factory__"


_F = TypeVar("_F", bound=Callable[..., Any])


def iterator_factory(func: _F) -> _F:
    """Mark ``func``, a function returning an iterator, as acceptable to :class:`Streamer`.

    Generator functions are accepted without marking; plain functions are not, because the
    pescador 3.0 contract rejects them. The maps use this so that
    ``Streamer(buffer_stream, stream, 32)`` works while they return stateful iterator objects.
    """
    setattr(func, FACTORY_MARK, True)
    return func


class _StreamerIterator(StreamIterator[Any]):
    """One activation of a :class:`Streamer`.

    ``counted`` says whether it counts in the stream's ``active``: iterations a mux makes of
    its children do not, as in pescador 3.0 where muxes worked on copies.

    State: the items delivered; the source's own state if it can describe its position (a
    pescador iterator, or any object with ``state_dict``/``load_state_dict``), else the source
    is re-run and the delivered items skipped; and the activation's seed if the generator
    function asked for an :data:`ACTIVATION_RNG`.
    """

    __slots__ = ("_counted", "_seeded", "_stream")

    kind = "Streamer"

    def __init__(
        self,
        stream: Streamer,
        max_iter: Any = None,
        seed: InheritedSeed = None,
        counted: bool = True,
    ) -> None:
        self._limit = None if max_iter is None else check_max_iter(max_iter)
        self._seed = seed
        self._fast = None
        self._tally = None
        self._source = None
        self._activation = None
        self._resume = None
        self._stream = stream
        self._counted = counted
        self._seeded = False

    def _open(self) -> tuple[Iterable[Any], Streamer | None]:
        stream = self._stream
        if stream.stream_ is not None:
            return stream.stream_, None
        resume = self._resume
        if resume is not None and "seed" in resume:
            self._seed = Seed.from_json(resume["seed"])
            self._seeded = True
        elif stream._plan[1]:
            self._seed = resolve_seed(None, self._seed)
            self._seeded = True
        source = stream._source(self._seed)
        if resume is not None and not resume.get("done"):
            if "source" in resume:
                load_state_of(source, resume["source"])
            else:
                source = iter(source)
                _state.skip(source, resume["n"], repr(stream))
        elif resume is not None:
            source = _EMPTY
        return source, stream if self._counted else None

    def _own_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        if self._seeded and isinstance(self._seed, Seed):
            state["seed"] = self._seed.to_json()
        source = state_of(self._source)
        if source is not None:
            state["source"] = source
        return state


class _CycleIterator(_StreamerIterator):
    """Endless passes over a stream; ends after a pass that yields nothing.

    Randomness: one seed for the cycle (inherited, or fresh from numpy's global RNG); pass
    ``k`` inherits ``seed.child(k)``, so unseeded passes differ from each other and a seeded
    stream replays its own seed every pass.

    State: the items delivered, the cycle's seed, and the current pass (its number and its
    own state).
    """

    __slots__ = ("_position",)

    kind = "cycle"
    _position: list[Any]

    def _open(self) -> tuple[Iterable[Any], Streamer | None]:
        # [pass number, current pass]: shared with the passes generator, which must not hold
        # the iterator itself (a cycle would keep a dropped iterator alive until gc).
        self._position = [0, None]
        resume = self._resume
        if resume is not None and resume.get("done"):
            return _EMPTY, None
        if resume is not None and "seed" in resume:
            self._seed = Seed.from_json(resume["seed"])
        else:
            self._seed = resolve_seed(None, self._seed)
        passes = _passes(self._stream, self._seed, self._counted, resume, self._position)
        return passes, None

    def _own_state(self) -> dict[str, Any]:
        number, current = self._position
        assert isinstance(self._seed, Seed)
        return {
            "seed": self._seed.to_json(),
            "pass": number,
            "current": None if current is None else current._state_dict(),
        }


def _passes(
    stream: Streamer,
    seed: Seed,
    counted: bool,
    resume: Mapping[str, Any] | None,
    position: list[Any],
) -> Iterator[Any]:
    """The items of a cycle: pass after pass, until a pass yields nothing."""
    if resume is not None:
        position[0] = resume["pass"]
    while True:
        one_pass = stream._iterate(None, (seed, position[0]), counted)
        if resume is not None:
            if resume["current"] is not None:
                one_pass._load(resume["current"])
            resume = None
        position[1] = one_pass
        try:
            yield from one_pass
        finally:
            one_pass.close()
        if not one_pass.items_delivered:
            return
        position[0] += 1


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
        self.streamer = streamer
        self.args = args
        self.kwargs = kwargs
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
        return self._plan[2]

    @streamer.setter
    def streamer(self, streamer: Any) -> None:
        # How to start an activation, decided once: (how, ACTIVATION_RNG parameters, target).
        self._plan: tuple[int, tuple[tuple[str, int], ...], Any]
        if isinstance(streamer, Streamer):
            self._plan = (_NESTED, (), streamer)
        elif callable(streamer):
            self._plan = (_CALL, _rng_parameters(streamer), streamer)
        else:
            self._plan = (_ITER, (), streamer)

    # -- activation -------------------------------------------------------------------------
    def _source(self, seed: InheritedSeed) -> Iterable[Any]:
        """One activation's raw items, not yet started (called at the first ``next``)."""
        how, wanted, streamer = self._plan
        if how == _CALL:
            args, kwargs = self._with_rngs(wanted, seed) if wanted else (self.args, self.kwargs)
            stream: Any = streamer(*args, **kwargs)
            if (
                type(stream) is not GeneratorType
                and isinstance(stream, StreamIterator)
                and stream._seed is None
            ):
                stream._seed = seed  # a map over a mux: the mux inherits the seed
            return stream
        if how == _NESTED:
            return streamer._call(self.args, self.kwargs, seed)
        return iter(streamer)

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
        """
        return _StreamerIterator(self, max_iter, seed, counted)

    def _open_child(self, seed: InheritedSeed) -> tuple[StreamIterator[Any], Callable[[], Any]]:
        """Start an activation for a mux's slot: not counted in ``active``, no limit.

        Returns the iterator and its pull function. A plain generator function starts here
        directly; anything else takes the general path.
        """
        it = _StreamerIterator(self, None, seed, False)
        if self._plan[0] == _CALL and not self._plan[1] and self.stream_ is None:
            return it, it._wire(self._source(seed)).__next__
        return it, iter(it).__next__

    def __enter__(self) -> Streamer:
        if self.stream_ is not None:
            return self
        source = iter(self._source(None))
        activated = copy.copy(self)
        activated.stream_ = source
        activated.active_count_ = 0
        self.active_count_ += 1
        return activated

    def __exit__(self, *exc: object) -> None:
        if self.stream_ is not None:
            return
        self.active_count_ -= 1
        if self.active_count_ < 0:
            raise PescadorError(f"Active stream count passed below 0 for {self!r}")

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
    def iterate(
        self, max_iter: Any = None, state: Mapping[str, Any] | None = None
    ) -> StreamIterator[Any]:
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
        it = self._iterate(max_iter, None)
        if state is not None:
            it.load_state_dict(state)
        return it

    def cycle(
        self, max_iter: Any = None, state: Mapping[str, Any] | None = None
    ) -> StreamIterator[Any]:
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
        it = _CycleIterator(self, max_iter)
        if state is not None:
            it.load_state_dict(state)
        return it

    def __call__(
        self, max_iter: Any = None, cycle: bool = False, state: Mapping[str, Any] | None = None
    ) -> StreamIterator[Any]:
        """``self.cycle(max_iter, state)`` if ``cycle`` else ``self.iterate(max_iter, state)``."""
        if cycle:
            return self.cycle(max_iter, state)
        return self.iterate(max_iter, state)

    def __iter__(self) -> Iterator[Any]:
        """A plain, fast iterator over one pass (use :meth:`iterate` for the stateful object)."""
        return iter(self.iterate())


class _ActivationRNG:
    """The default value that asks for a per-activation random generator (see ACTIVATION_RNG)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "pescador.ACTIVATION_RNG"

    def __reduce__(self) -> str:
        return "ACTIVATION_RNG"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(
            "ACTIVATION_RNG is a placeholder: a Streamer replaces it with a seeded "
            "numpy Generator when it starts the generator function; called directly, pass "
            "rng=np.random.default_rng(...) yourself"
        )


#: Default value of a generator-function parameter that asks for a per-activation
#: :class:`numpy.random.Generator`. When a :class:`Streamer` starts the function and the caller
#: did not supply that argument, it passes a generator seeded from the activation's seed: from
#: a seeded parent mux, or fresh entropy from numpy's global RNG otherwise. Streams drawing their
#: randomness this way are reproducible under one seed at the top of a mux tree, and resume
#: exactly from a checkpoint.
#:
#: >>> import numpy as np, pescador
#: >>> def offsets(n_total, rng=pescador.ACTIVATION_RNG):
#: ...     while True:
#: ...         yield int(rng.integers(n_total))
#: >>> mux = pescador.ShuffledMux([pescador.Streamer(offsets, 100)], random_state=0)
#: >>> list(mux.iterate(max_iter=3)) == list(mux.iterate(max_iter=3))
#: True
ACTIVATION_RNG: Any = _ActivationRNG()


_RNG_PARAMETERS: dict[Any, tuple[tuple[str, int], ...]] = {}


def _rng_parameters(func: Any) -> tuple[tuple[str, int], ...]:
    """``(name, position)`` of ``func``'s parameters whose default is ``ACTIVATION_RNG``."""
    try:
        return _RNG_PARAMETERS[func]
    except (KeyError, TypeError):
        pass
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        found: tuple[tuple[str, int], ...] = ()
    else:
        found = tuple(
            (p.name, pos if p.kind is p.POSITIONAL_OR_KEYWORD else sys.maxsize)
            for pos, p in enumerate(params)
            if p.default is ACTIVATION_RNG
        )
    try:
        if len(_RNG_PARAMETERS) > 4096:
            _RNG_PARAMETERS.clear()
        _RNG_PARAMETERS[func] = found
    except TypeError:  # unhashable callable
        pass
    return found


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
