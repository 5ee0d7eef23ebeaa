"""States that do not fit their pipeline raise StateError saying what differs: another kind of
stream, another shape (streamers, slots, rate, mode, dist, cache size, workers), another format
version, a load after the first ``next``, a map whose input cannot describe its position.

States modified or corrupted raise StateError too: their digest does not match (an edit by
accident), or (a state edited and resealed on purpose) a field is missing or out of range, and
the message names its path. The fuzzer in test_state_fuzz tries every field of every kind.
"""

from __future__ import annotations

import copy
import json
import pickle
import re
import time
from itertools import islice

import numpy as np
import pytest

import pescador
import pescador._state
import pescador.io
import pescador.maps
from conftest import (
    Counting,
    advance,
    data,
    data_streams,
    endless,
    finite_streams,
    letters,
    reseal,
    state_at,
)
from pescador import (
    ChainMux,
    ParallelStreamer,
    RoundRobinMux,
    ShuffledMux,
    StateError,
    StochasticMux,
    Streamer,
)
from pescador.exceptions import WorkerStateError

# --------------------------------------------------------------------------- StateError


def stochastic(**kwargs):
    args = {"n_active": 3, "rate": 4, "random_state": 0, **kwargs}
    return StochasticMux(finite_streams(), args.pop("n_active"), args.pop("rate"), **args)


def test_a_map_over_a_plain_generator_cannot_checkpoint():
    batches = pescador.buffer_stream(({"x": np.zeros(1)} for _ in range(10)), 2)
    next(batches)
    with pytest.raises(StateError, match="cannot describe its position"):
        batches.state_dict()


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (lambda: ShuffledMux(finite_streams()), "state of a StochasticMux given to a ShuffledMux"),
        (lambda: Streamer(letters, "a", 3), "state of a StochasticMux given to a Streamer"),
        (lambda: StochasticMux(finite_streams()[:6], 3, 4), "n_streams=7 in the state, 6 here"),
        (lambda: stochastic(n_active=2), "n_active=3 in the state, 2 here"),
        (lambda: stochastic(rate=5), "rate=4.0 in the state, 5.0 here"),
        (lambda: stochastic(mode="single_active"), "mode='with_replacement' in the state"),
        (lambda: stochastic(dist="poisson"), "dist='binomial' in the state, 'poisson' here"),
    ],
)
def test_a_state_from_another_mux_is_rejected_saying_what_differs(other, message):
    state = state_at(stochastic(), 10)
    with pytest.raises(StateError, match=message):
        other().iterate(state=state)


def test_a_state_from_another_shape_of_round_robin_or_chain_is_rejected():
    rr = RoundRobinMux(finite_streams())
    with pytest.raises(StateError, match="mode='exhaustive' in the state, 'cycle' here"):
        RoundRobinMux(finite_streams(), mode="cycle").iterate(state=state_at(rr, 5))
    with pytest.raises(StateError, match="n_streams=7 in the state, 4 here"):
        RoundRobinMux(finite_streams()[:4]).iterate(state=state_at(rr, 5))
    chain = ChainMux(finite_streams())
    with pytest.raises(StateError, match="mode='exhaustive' in the state, 'cycle' here"):
        ChainMux(finite_streams(), mode="cycle").iterate(state=state_at(chain, 5))


def test_a_state_from_a_chain_of_another_length_is_rejected():
    state = state_at(ChainMux(finite_streams()), 25)  # running streamer 2 of 7
    with pytest.raises(StateError, match="n_streams"):
        next(ChainMux(finite_streams()[:3]).iterate(state=state))


def test_a_state_from_a_generator_chain_that_now_has_fewer_streamers_is_rejected():
    streams = finite_streams()

    def seven():
        yield from streams

    def two():
        yield from streams[:2]

    state = state_at(ChainMux(seven), 30)
    with pytest.raises(StateError, match="fewer streamers"):
        next(ChainMux(two).iterate(state=state))


def test_cycle_and_iterate_states_do_not_mix():
    mux = stochastic()
    with pytest.raises(StateError, match="state of a StochasticMux given to a cycle"):
        mux.cycle(state=state_at(mux, 5))
    with pytest.raises(StateError, match="state of a cycle given to a StochasticMux"):
        mux.iterate(state=state_at(mux, 5, cycle=True))


def test_a_state_of_another_format_version_is_rejected():
    state = state_at(stochastic(), 5)
    for version in (0, 2, None, "1"):
        changed = {**state, "pescador_state": version}
        with pytest.raises(StateError, match="state format"):
            stochastic().iterate(state=changed)
    missing = {k: v for k, v in state.items() if k != "pescador_state"}
    with pytest.raises(StateError, match="state format None"):
        stochastic().iterate(state=missing)
    with pytest.raises(StateError, match="must be a dict"):
        stochastic().iterate(state=[1, 2])  # type: ignore[arg-type]


def test_a_state_nested_in_another_shape_is_rejected_by_the_first_next():
    """Nested states are checked when their iterator opens: by the first ``next``."""
    streams = data_streams()

    def tree(inner):
        return StochasticMux([inner, Streamer(data, "z", 4)], 2, 2, random_state=1)

    state = state_at(tree(StochasticMux(streams, 2, 3)), 1)
    assert any(slot[3]["kind"] == "StochasticMux" for slot in state["slots"])
    for inner, message in [
        (StochasticMux(streams, 3, 3), "n_active=2 in the state, 3 here"),
        (ShuffledMux(streams), "state of a StochasticMux given to a ShuffledMux"),
        (Streamer(data, "q", 40), "state of a StochasticMux given to a Streamer"),
    ]:
        with pytest.raises(StateError, match=message):
            advance(tree(inner).iterate(state=state), 2)
    batches = Streamer(pescador.buffer_stream, StochasticMux(streams, 2, 3, random_state=0), 2)
    with pytest.raises(StateError, match="state of a buffer_stream given to a tuples"):
        next(Streamer(pescador.tuples, streams[0], "X").iterate(state=state_at(batches, 2)))


def test_a_cache_state_of_another_size_is_rejected():
    mux = StochasticMux(data_streams(), 2, 3, random_state=0)
    state = state_at(Streamer(pescador.cache, mux, 4, random_state=0), 10)
    with pytest.raises(StateError, match="n_cache"):
        next(Streamer(pescador.cache, mux, 5, random_state=0).iterate(state=state))


def test_a_parallel_state_from_another_worker_count_is_rejected():
    mux = ChainMux(finite_streams())
    state = state_at(ParallelStreamer(mux, 2), 3)
    with pytest.raises(StateError, match="n_workers=2 in the state, 3 here"):
        ParallelStreamer(mux, 3).iterate(state=state)


def test_load_after_the_first_next_is_rejected():
    for stream in [stochastic(), Streamer(letters, "a", 5), ChainMux(finite_streams())]:
        state = state_at(stream, 2)
        it = stream.iterate()
        next(it)
        with pytest.raises(StateError, match="before the first next"):
            it.load_state_dict(state)
        it = stream.iterate()
        iter(it)  # a for loop starts the pass too
        with pytest.raises(StateError, match="before the first next"):
            it.load_state_dict(state)


def test_state_error_is_a_pescador_error():
    assert issubclass(StateError, pescador.PescadorError)


# --------------------------------------------------------------------------- digest
class Floaty(Counting):
    """A seekable source whose state holds floats, large ints and, optionally, a value of
    no JSON type (a numpy int), to test the digest."""

    def __init__(self, n, exotic=False):
        super().__init__(n)
        self.exotic = exotic

    def state_dict(self):
        state = {"i": self.i, "third": self.i / 3, "big": 3**90 + self.i, "tiny": 5e-324}
        state["neg_zero"], state["inf"], state["nan"] = -0.0, float("inf"), float("nan")
        if self.exotic:
            state["np"] = np.int64(self.i)
        return state

    def load_state_dict(self, state):
        self.i = int(state["i"])


@pescador.iterator_factory
def floaty(n, exotic=False):
    return Floaty(n, exotic)


def mux_with_sources():
    streams = [Streamer(floaty, 9), Streamer(letters, "a", 7), Streamer(floaty, 5)]
    return StochasticMux(streams, 2, 3, random_state=0)


def test_a_state_is_sealed_by_a_digest_of_16_hex_digits():
    state = stochastic().iterate().state_dict()
    keys = list(state)
    assert keys[0] == "pescador_state" and keys[-1] == "digest"
    assert len(state["digest"]) == 16 and int(state["digest"], 16) >= 0
    assert state["digest"] == pescador._state.digest(state)


@pytest.mark.parametrize(
    "through",
    [
        lambda s: json.loads(json.dumps(s)),
        lambda s: json.loads(json.dumps(s, sort_keys=True, indent=2)),
        lambda s: pickle.loads(pickle.dumps(s)),
        copy.deepcopy,
    ],
    ids=["json", "json sorted, indented", "pickle", "deepcopy"],
)
def test_a_state_verifies_after_json_and_pickle(through):
    """Floats (NaN, -0.0, inf, the smallest subnormal), large ints, tuples: the digest is of
    the canonical JSON text, the same after a JSON round trip or a pickle."""
    for stream, k in [(mux_with_sources(), 7), (Streamer(floaty, 20), 4), (stochastic(), 9)]:
        it = stream.iterate()
        advance(it, k)
        state = it.state_dict()
        rest = list(islice(it, 30))
        assert list(islice(stream.iterate(state=through(state)), 30)) == rest


def test_a_state_with_a_value_of_no_json_type_verifies_after_pickling():
    """A source's value of no JSON type counts by its repr (it is not JSON, but it pickles)."""
    stream = Streamer(floaty, 9, True)
    it = advance(stream.iterate(), 3)
    state = it.state_dict()
    assert isinstance(state["source"]["np"], np.int64)
    assert list(stream.iterate(state=pickle.loads(pickle.dumps(state)))) == list(it)


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s.__setitem__("n", s["n"] + 1),
        lambda s: s["slots"][0].__setitem__(1, s["slots"][0][1] + 1),
        lambda s: s["slots"][1][3].__setitem__("n", 0),
        lambda s: s.__setitem__("tree", not s["tree"]),
        lambda s: s["gen"]["state"].__setitem__("inc", s["gen"]["state"]["inc"] + 2),
        lambda s: s.__setitem__("pruned", "AAAA"),
        lambda s: s.__setitem__("digest", "0" * 16),
        lambda s: s.__setitem__("extra", 1),
    ],
    ids=["n", "budget", "child count", "flag", "generator", "bitmap", "digest", "new key"],
)
def test_a_state_edited_by_accident_is_refused_as_corrupted(edit):
    state = state_at(stochastic(), 10)
    edit(state)
    with pytest.raises(StateError, match=r"modified or corrupted \(digest mismatch"):
        stochastic().iterate(state=state)
    it = stochastic().iterate()
    with pytest.raises(StateError, match="digest mismatch"):
        it.load_state_dict(state)


def test_the_version_is_checked_before_the_digest():
    state = {**state_at(stochastic(), 5), "pescador_state": 2}
    with pytest.raises(StateError, match="state format 2"):
        stochastic().iterate(state=state)


def test_a_state_without_a_digest_is_accepted():
    """A state written before digests (or with its digest removed) loads unchecked."""
    mux = stochastic()
    it = advance(mux.iterate(), 12)
    state = it.state_dict()
    del state["digest"]
    assert list(islice(mux.iterate(state=state), 30)) == list(islice(it, 30))


def test_a_resealed_edit_reaches_the_check_it_is_about():
    state = state_at(stochastic(), 10)
    with pytest.raises(StateError, match="state of a ShuffledMux given to a StochasticMux"):
        stochastic().iterate(state=reseal({**state, "kind": "ShuffledMux"}))
    with pytest.raises(StateError, match="n_active=2 in the state, 3 here"):
        stochastic().iterate(state=reseal({**state, "n_active": 2}))
    resumed = stochastic().iterate(state=reseal(state))
    assert list(islice(resumed, 30)) == list(islice(stochastic().iterate(), 40))[10:]


# --------------------------------------------------------------------------- malformed
def edited(state, path, value):
    """A resealed copy of ``state`` with ``value`` at ``path`` (keys and indices)."""
    state = copy.deepcopy(state)
    parent = state
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return reseal(state)


def raised(stream, state, cycle=False):
    """The StateError that resuming ``stream`` from ``state`` raises (by its 5th item)."""
    with pytest.raises(StateError) as info:
        advance((stream.cycle if cycle else stream.iterate)(state=state), 5)
    return str(info.value)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("n",), -1, r"StochasticMux state: n must be an int in \[0, sys.maxsize\], got -1"),
        (("n",), 10**30, r"n must be an int in \[0, sys.maxsize\], got 1000000000000"),
        (("seed",), None, r"StochasticMux state: seed must be a list of 2 items, got None"),
        (("opened",), "3", r"StochasticMux state: opened must be an int in \[0, sys.maxsize\]"),
        (("slots", 1, 2), None, r"StochasticMux state: slots\[1\]\[2\] must be an int in \["),
        (("slots", 0, 0), 7, r"slots\[0\]\[0\] must be an int in \[0, 6\], got 7"),
        (("slots", 0, 0), 2, r"slots\[0\]\[0\] must be a streamer of positive weight, got 2"),
        (("slots", 0, 1), 0, r"slots\[0\]\[1\] must be an int in \[1, sys.maxsize\], got 0"),
        (("slots", 0, 3, "n"), 10**6, r"slots must be activations that delivered at most n=10"),
        (("slots", 0, 3, "seed"), "x", r"slots\[0\]\[3\]: Streamer state: seed must be a list"),
        (("sel", 1), 1024, r"StochasticMux state: sel\[1\] must be an int in \[0, 1023\]"),
        (("gen",), {"bit_generator": "MT19937"}, r"gen must be the state of a PCG64 bit gen"),
        (("gen", "state", "inc"), -1, r"gen must be the state of a PCG64 bit generator"),
        (("uni", 0, "uinteger"), 2**40, r"uni\[0\] must be the state of a PCG64 bit gen"),
        (("pruned",), "!!", r"StochasticMux state: pruned must be a packed bitmap of 7 flags"),
        (("pruned",), "eJzLSM3JyVcozy/KSQEAGgQEXQ==", r"pruned must be a packed bitmap of 7"),
        (("tree",), 1, r"StochasticMux state: tree must be true or false, got 1"),
        (("proposals",), None, r"StochasticMux state: proposals must be a list of 2 items"),
        (("done",), False, r"StochasticMux state: done must be true when present, got False"),
    ],
)
def test_a_malformed_field_is_named_by_its_path(path, value, message):
    state = state_at(stochastic(weights=[1, 1, 0, 1, 1, 1, 1]), 10)
    assert state["slots"][0][0] != 2
    error = raised(stochastic(weights=[1, 1, 0, 1, 1, 1, 1]), edited(state, path, value))
    assert re.search(message, error), error


def test_a_missing_field_is_named():
    state = state_at(stochastic(), 10)
    del state["budgets"]
    assert "StochasticMux state: field 'budgets' is missing" in raised(stochastic(), reseal(state))


def test_the_fields_of_each_kind_are_named_by_their_path():
    cached = Streamer(pescador.cache, stochastic(), 4, random_state=0)
    state = state_at(cached, 12)
    error = raised(cached, edited(state, ("source", "fetched"), None))
    assert "Streamer state: source: cache state: fetched must be an int in [0, 12], got None" in (
        error
    )
    error = raised(cached, edited(state, ("source", "positions"), [0, 1]))
    assert "cache state: positions must be a list of 4 items" in error
    nested = StochasticMux([stochastic(), Streamer(letters, "z", 9)], 2, 3, random_state=1)
    state = state_at(nested, 6)
    k = next(k for k, slot in enumerate(state["slots"]) if slot[3]["kind"] == "StochasticMux")
    error = raised(nested, edited(state, ("slots", k, 3, "slots", 0, 2), -1))
    assert f"StochasticMux state: slots[{k}][3]: StochasticMux state: slots[0][2] must be" in (
        error
    )
    cycled = Streamer(letters, "c", 4)
    state = state_at(cycled, 6, cycle=True)
    assert "cycle state: pass must be an int in [0, 6], got 7" in raised(
        cycled, edited(state, ("pass",), 7), cycle=True
    )
    error = raised(cycled, edited(state, ("current", "n"), 5), cycle=True)
    assert "cycle state: current: cannot resume Streamer(letters" in error
    rr = RoundRobinMux(finite_streams(), "permuted_cycle", random_state=0)
    state = state_at(rr, 9)
    assert "RoundRobinMux state: turns[0] must be an int in [0, 6], got 9" in raised(
        rr, edited(state, ("turns", 0), 9)
    )
    shuffled = ShuffledMux(finite_streams())
    state = state_at(shuffled, 9)
    assert "ShuffledMux state: slots[0][1] must be an int in [" in raised(
        shuffled, edited(state, ("slots", 0, 1), 1)
    )
    chain = ChainMux(finite_streams())
    state = state_at(chain, 9)
    assert "ChainMux state: slot[0] must be an int in [0, 6], got 7" in raised(
        chain, edited(state, ("slot", 0), 7)
    )
    batches = Streamer(pescador.buffer_stream, StochasticMux(data_streams(), 3, 4), 2)
    state = state_at(batches, 3)
    assert "buffer_stream state: input.n must be at most 6, got 7" in raised(
        batches, edited(state, ("source", "input", "n"), 7)
    )


def test_a_seekable_source_that_rejects_its_state_raises_state_error():
    stream = Streamer(floaty, 9)
    it = advance(stream.iterate(), 3)
    state = edited(it.state_dict(), ("source", "i"), "x")
    error = raised(stream, state)
    assert "Streamer state: source: Floaty.load_state_dict rejected the state (ValueError" in (
        error
    )


def test_what_validation_misses_is_still_a_state_error(monkeypatch):
    """The safety net: a stray exception while restoring becomes a StateError, chained."""
    from pescador.mux import _stochastic

    def broken(self, state, n_active):
        raise KeyError("somewhere")

    state = state_at(stochastic(), 5)
    monkeypatch.setattr(_stochastic.StochasticPolicy, "_restore", broken)
    with pytest.raises(StateError, match=r"malformed StochasticMux state \(KeyError") as info:
        next(stochastic().iterate(state=state))
    assert isinstance(info.value.__cause__, KeyError)


class Flaky:
    """Generator functions that raise TypeError (a bug of the user's) once ``armed``."""

    armed = False

    @staticmethod
    def items(n):
        for i in range(n):
            if Flaky.armed and i == 2:
                raise TypeError("the user's bug")
            yield i

    @staticmethod
    @pescador.iterator_factory
    def factory(n):
        if Flaky.armed:
            raise TypeError("the user's factory")
        return iter(range(n))


def test_the_users_errors_while_resuming_are_not_turned_into_state_errors(monkeypatch):
    """A replay runs the user's code: its errors are the user's, raised as they are."""
    for function, message in [(Flaky.items, "user's bug"), (Flaky.factory, "user's factory")]:
        monkeypatch.setattr(Flaky, "armed", False)
        stream = Streamer(function, 9)
        mux = StochasticMux([stream, Streamer(letters, "b", 9)], 2, 5, random_state=0)
        # A position where a slot runs the user's streamer past its third item, so that the
        # resume replays the user's code through the point where it raises.
        mux_state = next(
            state
            for state in (state_at(mux, k) for k in range(1, 200))
            if any(slot[0] == 0 and slot[3]["n"] >= 3 for slot in state.get("slots", []))
        )
        states = [state_at(stream, 4), mux_state]
        monkeypatch.setattr(Flaky, "armed", True)
        for resumed, state in zip([stream, mux], states, strict=True):
            with pytest.raises(TypeError, match=message):
                advance(resumed.iterate(state=state), 3)


@pytest.mark.timeout(30)
def test_the_hangs_of_the_audit_are_quick_state_errors():
    """A cache's count set to None replayed its input forever; a worker's skip of 10**30
    skipped forever. Both are refused at once."""
    cached = Streamer(pescador.cache, Streamer(endless, "e"), 3, random_state=0)
    state = edited(state_at(cached, 9), ("source", "fetched"), None)
    begin = time.monotonic()
    assert "fetched must be an int" in raised(cached, state)
    parallel = ParallelStreamer(Streamer(endless, {"x": np.zeros(2)}), 2)
    state = state_at(parallel, 6)
    error = raised(parallel, edited(state, ("workers", 0, "skip"), 10**30))
    assert "ParallelStreamer state: workers[0].skip must be an int in [0, sys.maxsize]" in error
    error = raised(parallel, edited(state, ("workers", 0, "skip"), 7))
    assert "ParallelStreamer state: workers must be states and skips of at most n=6" in error
    assert time.monotonic() - begin < 10


def test_a_worker_that_cannot_resume_raises_a_worker_state_error():
    """The workers check their streams' states: the error is a StateError and a WorkerError."""
    parallel = ParallelStreamer(stochastic(), 2)
    state = state_at(parallel, 6)
    assert state["workers"][0]["state"] is not None
    with pytest.raises(WorkerStateError, match="StochasticMux state: slots") as info:
        advance(parallel.iterate(state=edited(state, ("workers", 0, "state", "slots"), 3)), 3)
    assert isinstance(info.value, StateError) and info.value.remote_traceback
    zmq = pytest.importorskip("pescador.zmq_stream")
    wrapped = zmq.ZMQStreamer(Streamer(endless, {"x": np.zeros(2)}), snapshot_every=0)
    state = state_at(wrapped, 4)
    with pytest.raises(WorkerStateError, match="Streamer state: seed must be a list"):
        advance(wrapped.iterate(state=edited(state, ("inner", "seed"), "x")), 3)
