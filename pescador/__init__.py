"""pescador: stream and multiplex data for machine learning from sources too large for memory.

Streams are recipes (:class:`Streamer`, the muxes, the maps); each iteration builds a fresh,
stateful iterator. See the README for a tour.
"""

from . import core, exceptions, io, maps, mux, util, version
from .core import ACTIVATION_RNG, Streamer, StreamIterator, iterator_factory, streamable
from .exceptions import DataError, PescadorError, StateError, WorkerError
from .maps import buffer_stream, cache, keras_tuples, tuples
from .mux import BaseMux, ChainMux, RoundRobinMux, ShuffledMux, StochasticMux
from .version import version as __version__

__all__ = [
    "ACTIVATION_RNG",
    "BaseMux",
    "ChainMux",
    "DataError",
    "PescadorError",
    "RoundRobinMux",
    "ShuffledMux",
    "StateError",
    "StochasticMux",
    "StreamIterator",
    "Streamer",
    "WorkerError",
    "__version__",
    "buffer_stream",
    "cache",
    "core",
    "exceptions",
    "io",
    "iterator_factory",
    "keras_tuples",
    "maps",
    "mux",
    "streamable",
    "tuples",
    "util",
    "version",
]
