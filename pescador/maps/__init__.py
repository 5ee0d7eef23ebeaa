"""Maps: functions that transform a stream of items into another stream.

Each map takes any iterable (a list, a generator, a :class:`~pescador.Streamer`, a mux, or
another map's iterator), checks its arguments when it is called, and returns a
:class:`~pescador.core.StreamIterator` that starts pulling from its input at the first
``next``. A map's iterator makes one pass; to restart it, wrap the map in a Streamer, which
calls it again for each iteration:

>>> import numpy as np
>>> import pescador
>>> from pescador.maps import buffer_stream
>>> items = pescador.Streamer([{"X": np.full(2, i)} for i in range(6)])
>>> batches = pescador.Streamer(buffer_stream, items, 3)
>>> [b["X"].tolist() for b in batches]
[[[0, 0], [1, 1], [2, 2]], [[3, 3], [4, 4], [5, 5]]]
>>> len(list(batches))  # restartable
2
"""

# pescador 3.0 callers also reach the errors through this module, and ``__stack_data`` (the 3.0
# name of the stacking helper, which its tests call).
from ..exceptions import DataError as DataError
from ..exceptions import PescadorError as PescadorError
from ._batches import __stack_data as __stack_data
from ._batches import buffer_stream, keras_tuples, tuples
from ._cache import cache

__all__ = ["buffer_stream", "cache", "keras_tuples", "tuples"]

for _public in (buffer_stream, cache, keras_tuples, tuples):
    _public.__module__ = __name__  # pickles and reprs name the public module
del _public
