"""Seeds, seed derivation and budget laws (private).

Every random decision in pescador is made by a :class:`numpy.random.Generator` built here, from a
:class:`Seed`: a small, picklable, JSON-friendly description of a
:class:`numpy.random.SeedSequence` (its entropy and spawn key). Muxes hand each activation of a
child stream the seed ``parent.child(k)``, so one seed at the top of a tree of muxes decides the
whole tree, and a checkpoint can record any seed as two integers and a short list.

Seeds are cheap to derive (a tuple append); the costly ``SeedSequence`` and bit generator are
only built when a stream actually draws random numbers. Numbers drawn in blocks, and the
C-level streams of decisions mapped from them, are in :mod:`pescador._draws`.
"""

from __future__ import annotations

import itertools
import math
import numbers
from typing import Any, NamedTuple

import numpy as np

from ._draws import BLOCK as BLOCK  # block-drawn numbers live in _draws (re-exported)
from ._draws import Uniforms as Uniforms
from .exceptions import PescadorError

#: What a ``random_state`` argument may be (api.md A2).
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
        return Seed(int(random_state.entropy), tuple(random_state.spawn_key))  # type: ignore[arg-type]
    if isinstance(random_state, np.random.RandomState):
        return Seed(_entropy_of_state(random_state.get_state(legacy=False)))
    assert isinstance(random_state, np.random.Generator)
    return Seed(_entropy_of_state(random_state.bit_generator.state))


#: Largest support for which a budget distribution is tabulated.
MAX_TABLE = 1 << 16


#: Above this probability of the new slot being drawn, the binomial budget falls back to
#: Poisson (the binomial's ``n`` would explode).
BINOMIAL_MAX_P = 0.9999


#: Largest mean ``n * p`` for which a binomial budget's ``Binomial(n, p)`` is drawn by
#: sequential inverse-CDF search (about ``n * p + 1`` steps in Python) rather than by numpy
#: (one scalar call costs about as much as a few steps). Below it, and with ``p`` at most
#: :data:`BINOMIAL_MAX_P`, ``(1 - p) ** n`` is far from underflow.
INVERSION_MAX_MEAN = 8.0


def budget_table(dist: str, rate: float, p: float) -> list[float] | None:
    """Cumulative probabilities of an activation's budget minus one, for inverse-CDF sampling.

    ``binomial``: ``Binomial(n, 1 - p)`` with ``n = (rate - 1) / (1 - p)`` randomly rounded
    (a mixture of the two neighbouring integers, so the mean is exactly ``rate - 1``), or
    ``Poisson(rate - 1)`` when ``p`` exceeds :data:`BINOMIAL_MAX_P`. ``poisson``:
    ``Poisson(rate - 1)``. Sample with ``bisect_right(table, u)`` for ``u`` uniform in [0, 1);
    the last entry is infinity. ``None`` when the support is too large to tabulate. Building a
    table consumes no randomness, so caching never changes a sampled sequence.
    """
    if dist == "binomial" and p <= BINOMIAL_MAX_P:
        q = 1.0 - p
        n_real = (rate - 1.0) / q
        n = int(n_real)
        frac = n_real - n
        if n + 2 > MAX_TABLE:
            return None
        low = [*_pmf_binomial(n, q), 0.0]
        if frac:
            high = _pmf_binomial(n + 1, q)
            low = [(1.0 - frac) * a + frac * b for a, b in zip(low, high, strict=True)]
        return _cdf(low)
    lam = rate - 1.0
    top = int(lam + 12 * math.sqrt(lam) + 40)
    if top > MAX_TABLE:
        return None
    if lam == 0:
        return [math.inf]
    log_lam = math.log(lam)
    return _cdf([math.exp(k * log_lam - lam - math.lgamma(k + 1)) for k in range(top + 1)])


def _pmf_binomial(n: int, q: float) -> list[float]:
    if q >= 1.0:
        return [0.0] * n + [1.0]
    log_q, log_p, head = math.log(q), math.log1p(-q), math.lgamma(n + 1)
    return [
        math.exp(head - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_q + (n - k) * log_p)
        for k in range(n + 1)
    ]


def _cdf(pmf: list[float]) -> list[float]:
    total = math.fsum(pmf)
    cdf = [c / total for c in itertools.accumulate(pmf)]
    cdf[-1] = math.inf
    return cdf
