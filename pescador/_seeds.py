"""Seeds and seed derivation (private).

Every random decision in pescador is made by a :class:`numpy.random.Generator` built here, from a
:class:`Seed`: a small, picklable, JSON-friendly description of a
:class:`numpy.random.SeedSequence` (its entropy and spawn key). Muxes hand each activation of a
child stream the seed ``parent.child(k)``, so one seed at the top of a tree of muxes decides the
whole tree, and a checkpoint can record any seed as two integers and a short list.

Seeds are cheap to derive (a tuple append); the costly ``SeedSequence`` and bit generator are
only built when a stream actually draws random numbers. Numbers drawn in blocks, and the
C-level streams of decisions mapped from them, are in :mod:`pescador.mux._draws`.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np

from .exceptions import PescadorError

#: What a ``random_state`` argument may be: None (fresh entropy, or a seeded parent's seed), a
#: non-negative int (numpy integers too), or a numpy RandomState, Generator or SeedSequence.
RandomStateLike = (
    None | int | np.integer | np.random.RandomState | np.random.Generator | np.random.SeedSequence
)


_new_seed = tuple.__new__


class Seed(NamedTuple):
    """The seed of one activation: a ``SeedSequence``'s entropy and spawn key."""

    entropy: int
    key: tuple[int, ...] = ()

    def child(self, k: int) -> Seed:
        """The seed of the ``k``-th child activation (a spawn key, never ``seed + k``)."""
        return _new_seed(Seed, (self.entropy, (*self.key, k)))

    def generator(self, stream: int = 0) -> np.random.Generator:
        """A fresh generator for sub-stream ``stream`` of this seed."""
        seq = np.random.SeedSequence(self.entropy, spawn_key=(*self.key, stream))
        return np.random.Generator(np.random.PCG64(seq))

    def to_json(self) -> list[Any]:
        return [self.entropy, list(self.key)]

    @classmethod
    def from_json(cls, value: Any) -> Seed:
        entropy, key = value
        return cls(int(entropy), tuple(int(k) for k in key))


def check_random_state(random_state: Any, name: str = "random_state") -> RandomStateLike:
    """Validate a ``random_state`` argument, returning it unchanged.

    Raises
    ------
    PescadorError
        If it is none of ``None``, a non-negative integer, a ``RandomState``, a ``Generator``
        or a ``SeedSequence``.
    """
    if random_state is None or isinstance(
        random_state, (np.random.RandomState, np.random.Generator, np.random.SeedSequence)
    ):
        return random_state
    if isinstance(random_state, (int, np.integer)):
        if int(random_state) < 0:
            raise PescadorError(
                f"Invalid {name}={random_state!r}: an integer seed must be non-negative"
            )
        return random_state
    raise PescadorError(
        f"Invalid {name}={random_state!r}: expected None, a non-negative int, "
        "np.random.RandomState, np.random.Generator or np.random.SeedSequence"
    )


def _flatten_ints(value: Any, out: list[int]) -> None:
    if isinstance(value, dict):
        for key in sorted(value):
            _flatten_ints(value[key], out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _flatten_ints(v, out)
    elif isinstance(value, np.ndarray):
        out.extend(int(v) & 0xFFFFFFFFFFFFFFFF for v in value.ravel())
    elif isinstance(value, (numbers.Integral, np.integer)):
        out.append(int(value) & ((1 << 128) - 1))
    elif isinstance(value, float):
        out.append(int(np.float64(value).view(np.uint64)))


def _entropy_of_state(state: Any) -> int:
    words: list[int] = []
    _flatten_ints(state, words)
    mixed = np.random.SeedSequence(words).generate_state(4, np.uint32)
    return int.from_bytes(mixed.tobytes(), "little")


def _words(value: Any, out: list[int]) -> None:
    """The 32-bit words numpy makes of a ``SeedSequence`` entropy (an int, or a sequence or
    array of them, concatenated), least significant first."""
    if isinstance(value, (list, tuple, np.ndarray)):
        for v in value:
            _words(v, out)
        return
    x = int(value)
    out.append(x & 0xFFFFFFFF)
    x >>= 32
    while x:
        out.append(x & 0xFFFFFFFF)
        x >>= 32


def _entropy_of_sequence(entropy: Any) -> int:
    """A ``SeedSequence``'s entropy as one int (numpy also allows a sequence of ints).

    ``SeedSequence(words)`` and ``SeedSequence(sum(w << 32 * i))`` are the same sequence when the
    int has the same words: always, except for more than four words ending in zeros (numpy pads
    its four-word pool with zeros, and mixes longer entropy whole), which are hashed instead.
    """
    if isinstance(entropy, (int, np.integer)):
        return int(entropy)
    words: list[int] = []
    _words(entropy, words)
    if len(words) <= 4 or words[-1]:
        return sum(w << (32 * i) for i, w in enumerate(words))
    mixed = np.random.SeedSequence(words).generate_state(8, np.uint32)
    return int.from_bytes(mixed.tobytes(), "little") | (1 << 256)  # beyond any 8-word int


#: The seed a parent hands a child: a Seed, or ``(parent_seed, k)`` for ``parent_seed.child(k)``
#: (resolved only if the child draws random numbers: most children never do).
InheritedSeed = Seed | tuple[Seed, int] | None


def resolve_seed(random_state: RandomStateLike, inherited: InheritedSeed = None) -> Seed:
    """The seed for one iteration of a stream whose ``random_state`` is ``random_state``.

    A seeded stream is a recipe: the same ``random_state`` gives the same seed every time, and a
    caller's ``RandomState`` or ``Generator`` is read, never advanced. ``None`` defers to the seed
    ``inherited`` from a seeded parent, and otherwise draws fresh entropy from numpy's global
    RNG, so that ``np.random.seed`` at the top of a program makes it reproducible.
    """
    if random_state is None:
        if inherited is not None:
            if type(inherited) is tuple:
                parent, k = inherited
                return parent.child(k)  # type: ignore[union-attr, arg-type]
            return inherited  # type: ignore[return-value]
        hi, lo = np.random.randint(0, 2**32, size=2, dtype=np.uint64).tolist()
        return Seed((hi << 32) | lo)
    if isinstance(random_state, (int, np.integer)):
        return Seed(int(random_state))
    if isinstance(random_state, np.random.SeedSequence):
        return Seed(_entropy_of_sequence(random_state.entropy), tuple(random_state.spawn_key))
    if isinstance(random_state, np.random.RandomState):
        return Seed(_entropy_of_state(random_state.get_state(legacy=False)))
    assert isinstance(random_state, np.random.Generator)
    return Seed(_entropy_of_state(random_state.bit_generator.state))
