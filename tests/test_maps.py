"""What the four maps (buffer_stream, tuples, keras_tuples, cache) have in common: lazy stream
iterators accepted by Streamer, whose arguments are checked at the call, with a message naming
the parameter. Each map has a file of its own (test_buffer_stream.py, test_tuples.py,
test_cache.py).
"""

from __future__ import annotations

import numpy as np
import pytest

import pescador
import pescador.io
import pescador.maps
from conftest import data_items, pulled_generator
from pescador.core import StreamIterator
from pescador.maps import buffer_stream, cache, keras_tuples, tuples

# --------------------------------------------------------------------------- helpers


def plain(value):
    """Arrays, dicts, tuples and lists as nested plain lists/dicts, for == comparisons."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


# --------------------------------------------------------------------------- module surface


def test_all():
    assert set(pescador.maps.__all__) == {"buffer_stream", "tuples", "keras_tuples", "cache"}
    for name in pescador.maps.__all__:
        assert callable(getattr(pescador.maps, name))


def test_error_names():
    assert pescador.maps.DataError is pescador.DataError
    assert pescador.maps.PescadorError is pescador.PescadorError
    assert issubclass(pescador.maps.DataError, pescador.maps.PescadorError)


MAPS = {
    "buffer_stream": lambda s: buffer_stream(s, 2),
    "tuples": lambda s: tuples(s, "X"),
    "keras_tuples": lambda s: keras_tuples(s, "X", "Y"),
    "cache": lambda s: cache(s, 2),
}


@pytest.mark.parametrize("make", MAPS.values(), ids=list(MAPS))
def test_maps_return_lazy_stream_iterators(make):
    log = []
    it = make(pulled_generator(data_items(4), log))
    assert isinstance(it, StreamIterator)
    assert not it.started
    assert log == []  # nothing pulled at call time
    next(it)
    assert it.started
    assert log  # pulled at the first next


@pytest.mark.parametrize(
    "factory, args",
    [
        (buffer_stream, (2,)),
        (tuples, ("X",)),
        (keras_tuples, ("X", "Y")),
        (cache, (2, 0.5, 0)),
    ],
)
def test_maps_are_accepted_by_streamer_and_restart(factory, args):
    stream = pescador.Streamer(factory, pescador.Streamer(data_items(6)), *args)
    first = plain(list(stream))
    assert len(first) >= 3
    assert plain(list(stream)) == first


@pytest.mark.parametrize("bad", [5, None, 3.5, object()])
@pytest.mark.parametrize(
    "call",
    [
        lambda s: buffer_stream(s, 2),
        lambda s: tuples(s, "X"),
        lambda s: keras_tuples(s, "X"),
        lambda s: cache(s, 2),
    ],
)
def test_non_iterable_stream_fails_at_call(call, bad):
    with pytest.raises(pescador.PescadorError, match="stream="):
        call(bad)


@pytest.mark.parametrize("make", MAPS.values(), ids=list(MAPS))
def test_close_releases_an_input_it_opened(make):
    inner = pescador.Streamer(data_items(10))
    it = make(inner)
    next(it)
    assert inner.active == 1
    it.close()
    assert inner.active == 0
    with pytest.raises(StopIteration):
        next(it)
