"""pescador: stream and multiplex data for machine learning from sources too large for memory.

Streams are recipes (:class:`Streamer`, the muxes, the maps); each iteration builds a fresh,
stateful iterator. See the README for a tour.
"""

from . import core, exceptions, io, maps, mux, parallel, stats, testing, util, version
from ._sharding import WorkerInfo, worker_info
from .core import ACTIVATION_RNG, Streamer, StreamIterator, iterator_factory, streamable
from .exceptions import DataError, PescadorError, StateError, WorkerError
from .maps import buffer_stream, cache, keras_tuples, tuples
from .mux import BaseMux, ChainMux, RoundRobinMux, ShuffledMux, StochasticMux, WeightSchedule
from .parallel import ParallelStreamer
from .version import version as __version__

__all__ = [
    "ACTIVATION_RNG",
    "BaseMux",
    "ChainMux",
    "DataError",
    "ParallelStreamer",
    "PescadorError",
    "RoundRobinMux",
    "ShuffledMux",
    "StateError",
    "StochasticMux",
    "StreamIterator",
    "Streamer",
    "WeightSchedule",
    "WorkerError",
    "WorkerInfo",
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
    "parallel",
    "stats",
    "streamable",
    "testing",
    "tuples",
    "util",
    "version",
    "worker_info",
]


def __getattr__(name: str) -> object:
    # ZMQStreamer needs pyzmq (pescador[zmq]): load it on first use, not at import.
    if name in ("zmq_stream", "ZMQStreamer"):
        import importlib

        module = importlib.import_module(".zmq_stream", __name__)
        return module if name == "zmq_stream" else module.ZMQStreamer
    if name in ("torch", "ray", "keras", "tf"):  # extras: imported on first use
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "ZMQStreamer", "keras", "ray", "tf", "torch", "zmq_stream"])
