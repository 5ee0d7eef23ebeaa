"""Errors inside a mux: an exception raised by a sub-stream (or by its activation) propagates with
its type and arguments unchanged, and a note naming the streamer it came from.
"""

from __future__ import annotations

import pytest

from conftest import endless
from pescador import ChainMux, PescadorError, RoundRobinMux, ShuffledMux, StochasticMux, Streamer

# --------------------------------------------------------------------------- sources


def exploding(n):
    yield from range(n)
    raise ValueError("boom from exploding")


def needs_one(a):
    yield a


class CustomError(Exception):
    pass


def custom_failure():
    yield "x"
    raise CustomError("custom", 42)


ERROR_MUXES = {
    "stochastic": lambda s: StochasticMux(s, 2, 3, random_state=0),
    "stochastic-single": lambda s: StochasticMux(s, len(s), None, mode="single_active"),
    "stochastic-exhaustive": lambda s: StochasticMux(s, 1, None, mode="exhaustive"),
    "shuffled": lambda s: ShuffledMux(s, random_state=0),
    "roundrobin": lambda s: RoundRobinMux(s),
    "chain": lambda s: ChainMux(s),
}


def notes_of(exc):
    return "\n".join(getattr(exc, "__notes__", []))


# --------------------------------------------------------------------------- propagation


@pytest.mark.parametrize("name", sorted(ERROR_MUXES))
def test_substream_error_propagates_with_note(name):
    mux = ERROR_MUXES[name]([Streamer("abc"), Streamer(exploding, 2)])
    with pytest.raises(ValueError, match="boom from exploding") as info:
        list(mux.iterate(max_iter=10_000))
    assert type(info.value) is ValueError
    assert "exploding" in notes_of(info.value)


@pytest.mark.parametrize("name", sorted(ERROR_MUXES))
def test_custom_error_type_and_args_unchanged(name):
    mux = ERROR_MUXES[name]([Streamer(custom_failure)])
    with pytest.raises(CustomError) as info:
        list(mux.iterate(max_iter=10_000))
    assert type(info.value) is CustomError
    assert info.value.args == ("custom", 42)
    assert "custom_failure" in notes_of(info.value)


@pytest.mark.parametrize("name", sorted(ERROR_MUXES))
def test_activation_error_propagates_with_note(name):
    """Wrong generator arguments fail at activation, with a note naming the streamer."""
    mux = ERROR_MUXES[name]([Streamer("abc"), Streamer(needs_one)])
    with pytest.raises(TypeError) as info:
        list(mux.iterate(max_iter=10_000))
    assert "needs_one" in notes_of(info.value)


def test_error_from_nested_mux_names_both_levels():
    inner = StochasticMux([Streamer("abc"), Streamer(exploding, 3)], 2, None)
    outer = ShuffledMux([Streamer(endless, "z"), inner], random_state=1)
    with pytest.raises(ValueError, match="boom") as info:
        list(outer.iterate(max_iter=10_000))
    notes = notes_of(info.value)
    assert "exploding" in notes
    assert "StochasticMux" in notes  # the outer mux names the inner mux it came from


def test_error_from_lazy_chain_names_streamer():
    def source():
        yield Streamer("ab")
        yield Streamer(exploding, 1)

    with pytest.raises(ValueError) as info:
        list(ChainMux(source))
    assert "exploding" in notes_of(info.value)


def test_chain_lazy_non_stream_item_rejected():
    def source():
        yield Streamer("ab")
        yield "cd"  # plain iterables are wrapped
        yield 5

    it = ChainMux(source).iterate()
    assert [next(it) for _ in range(4)] == list("abcd")
    with pytest.raises(PescadorError, match="5"):
        next(it)
