"""ChainMux: the streamers one after the other, from a list or produced lazily by a generator
function (called afresh per iteration); muxes nested in muxes; and the :mod:`pescador.testing`
conformance checks.
"""

from __future__ import annotations

import pytest

from conftest import assert_conforms, draws, finite_streams, letters, take
from pescador import ChainMux, RoundRobinMux, ShuffledMux, Streamer

# --------------------------------------------------------------------------- ChainMux


def chain_source(log):
    """A generator function producing streamers lazily, logging each request."""
    for word in ("ab", "cd", "e"):
        log.append(word)
        yield Streamer(word)


def test_chain_concatenates():
    assert "".join(ChainMux([Streamer("abc"), Streamer("def")])) == "abcdef"
    assert "".join(ChainMux([Streamer("ab"), Streamer([]), Streamer("c")])) == "abc"


def test_chain_cycle():
    mux = ChainMux([Streamer("ab"), Streamer("c")], mode="cycle")
    assert "".join(mux.iterate(max_iter=7)) == "abcabca"


def test_chain_generator_function_is_lazy_and_recalled():
    log = []

    def source():
        log.append("call")
        yield from chain_source(log)

    mux = ChainMux(source)
    assert log == []  # not called at construction
    it = mux.iterate()
    assert next(it) == "a"
    assert log == ["call", "ab"]  # the next streamer is not requested yet
    assert "".join(it) == "bcde"
    assert log == ["call", "ab", "cd", "e"]
    assert "".join(mux) == "abcde"
    assert log.count("call") == 2  # called afresh per iteration

    log.clear()
    cyc = ChainMux(source, mode="cycle")
    assert "".join(cyc.iterate(max_iter=12)) == "abcdeabcdeab"
    assert log.count("call") == 3  # and per cycle


def test_chain_of_streamer_yielding_streamers():
    inner = Streamer([Streamer("ab"), Streamer("cd")])
    mux = ChainMux(inner)
    assert "".join(mux) == "abcd"
    assert "".join(mux) == "abcd"
    assert mux.n_streams == 2


def test_chain_n_streams_unknown_for_generator_function():
    with pytest.raises(TypeError):
        ChainMux(chain_source).n_streams


def test_muxes_nest():
    inner = [ChainMux([Streamer("ab"), Streamer("cd")]), RoundRobinMux([Streamer("xy")])]
    assert "".join(ChainMux(inner)) == "abcdxy"
    mux = ShuffledMux([ChainMux([Streamer(letters("k", 5))])], random_state=0)
    assert take(mux, 5) == [f"k{i}" for i in range(5)]


# --------------------------------------------------------------------------- conformance


@pytest.mark.parametrize("mode", ["exhaustive", "cycle"])
def test_chain_mux_over_a_list_resumes_at_every_position(mode):
    assert_conforms(ChainMux(finite_streams(), mode=mode), 100)


@pytest.mark.parametrize("mode", ["exhaustive", "cycle"])
def test_chain_mux_over_a_generator_function_resumes_at_every_position(mode):
    streams = finite_streams()

    def some_streams():
        yield streams[0]
        yield ["p", "q"]  # a plain iterable: wrapped in a Streamer
        yield Streamer(draws, "r", 4)
        yield from streams[1:4]

    assert_conforms(ChainMux(some_streams, mode=mode, random_state=4), 80)
