"""ACTIVATION_RNG: the default that asks a Streamer for a per-activation random generator.

Re-exported by :mod:`pescador.core` (and :mod:`pescador`), where it is documented and pickled.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

__all__ = ["ACTIVATION_RNG", "rng_parameters"]


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
