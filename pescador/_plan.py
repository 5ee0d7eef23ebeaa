"""How a Streamer starts an activation (its plan), and ACTIVATION_RNG (private).

A Streamer decides once, when its source is set, how each activation starts: call a generator
function, call a wrapped stream, iterate an iterable, or (for the subclasses that build their
own iterators) none of these. A generator function's parameters that default to
:data:`ACTIVATION_RNG` get a seeded generator per activation.

:data:`ACTIVATION_RNG` is re-exported by :mod:`pescador.core` (and :mod:`pescador`), the module
that pickles name.
"""

from __future__ import annotations

import enum
import inspect
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["ACTIVATION_RNG", "rng_parameters"]


class _How(enum.Enum):
    """How a stream starts an activation."""

    CALL = "call"  # call the generator function (or iterator factory) with args and kwargs
    NESTED = "nested"  # call the wrapped stream with args and kwargs (its max_iter, cycle)
    ITER = "iter"  # call iter() on the iterable
    OWN = "own"  # the subclass builds its own iterators (_iterate): muxes, ParallelStreamer...


# For tests once per activation: reading an Enum class's member costs about 100 ns.
_CALL, _NESTED, _ITER = _How.CALL, _How.NESTED, _How.ITER


@dataclass(frozen=True, eq=False)
class _Plan:
    """How a stream starts an activation, decided once, when its source is set.

    Attributes
    ----------
    how : _How
    target : Any
        What it draws from: a generator function, an iterable or a stream; ``None`` for a
        mux, which draws from its ``streamers``.
    rng_parameters : tuple of (str, int)
        ``(name, position)`` of the generator function's parameters that default to
        :data:`ACTIVATION_RNG`.
    direct : bool
        Whether an activation is a plain call of a generator function (no
        ``ACTIVATION_RNG``): a mux then opens it without the general path.
    """

    how: _How
    target: Any = None
    rng_parameters: tuple[tuple[str, int], ...] = ()
    direct: bool = False

    @classmethod
    def own(cls, target: Any = None) -> _Plan:
        """The plan of a subclass that builds its own iterators (over ``target``, if any)."""
        return cls(_How.OWN, target)


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


# Pickles name the public module (pickle looks the name up in the object's __module__).
_ActivationRNG.__module__ = "pescador.core"

#: Default value of a generator-function parameter that asks for a per-activation
#: :class:`numpy.random.Generator`. When a :class:`~pescador.core.Streamer` starts the function
#: and the caller did not supply that argument, it passes a generator seeded from the
#: activation's seed: from a seeded parent mux, or fresh entropy from numpy's global RNG
#: otherwise. Streams drawing their randomness this way are reproducible under one seed at the
#: top of a mux tree, and resume exactly from a checkpoint.
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


def rng_parameters(func: Any) -> tuple[tuple[str, int], ...]:
    """``(name, position)`` of ``func``'s parameters whose default is ``ACTIVATION_RNG``.

    Keyword-only parameters have position ``sys.maxsize``. Cached per function: a Streamer
    asks once per construction.
    """
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
