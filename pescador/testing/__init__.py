"""Conformance checks to run on your own streams: restartable, resumable, proportions.

Each check drives a stream through the public API and raises :class:`AssertionError` with a
message naming the first mismatch, so it works in a pytest test and in a plain script alike:

>>> import pescador
>>> from pescador.testing import assert_restartable, assert_resumable
>>> def numbers(n, rng=pescador.ACTIVATION_RNG):
...     for _ in range(n):
...         yield int(rng.integers(100))
>>> streams = [pescador.Streamer(numbers, 5), pescador.Streamer(numbers, 8)]
>>> mux = pescador.StochasticMux(streams, n_active=2, rate=3, random_state=0)
>>> items = assert_restartable(mux, n=40)
>>> items == assert_resumable(mux, n=40)  # checkpoints at every position, resumed
True

The checks take a *stream* (a :class:`~pescador.Streamer`, a mux, a
:class:`~pescador.ParallelStreamer`): anything with ``iterate(max_iter=..., state=...)``. A map
is checked through the Streamer that calls it, ``Streamer(buffer_stream, mux, 32)``.

==========================  ===================================================================
:func:`assert_restartable`   two iterations give the same items (a seeded stream is a recipe)
:func:`assert_resumable`     a checkpoint at each position, JSON round-tripped, resumes exactly
:func:`assert_proportions`   the shares of categories of items are within a stated bound
:func:`items_equal`          the default item comparison (dicts, sequences, arrays)
:func:`hoeffding_tolerance`  the bound used by :func:`assert_proportions`
:func:`checkpoint_positions` the positions :func:`assert_resumable` checkpoints at
==========================  ===================================================================
"""

from __future__ import annotations

from ._compare import Equal as Equal  # the type of an `equal=` argument
from ._compare import items_equal
from ._proportions import assert_proportions, hoeffding_tolerance
from ._restartable import assert_restartable
from ._resumable import DEFAULT_POSITIONS as DEFAULT_POSITIONS  # positions=None's count
from ._resumable import assert_resumable, checkpoint_positions

__all__ = [
    "assert_proportions",
    "assert_restartable",
    "assert_resumable",
    "checkpoint_positions",
    "hoeffding_tolerance",
    "items_equal",
]

# The helpers live in private modules by concept; they are documented, pickled and shown
# under this package, where users import them.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
