"""Behaviour of the four muxes through the public API (api.md A2-A7, §5-§9, §13; compat.md).

Statistical claims (shares, budget means) live in ``test_mux_stats.py``; hypothesis properties
in ``test_mux_properties.py``. Every test here is deterministic: either it checks something
that holds for every random outcome, or its failure probability under a correct library is
stated and negligible (< 1e-15).

Streamers are instrumented with a :class:`Tracker` passed as a generator-function argument.
Activation calls the generator function with the *same* argument objects (A1), so the tracker
sees every activation: its start (first item requested), the number of concurrently running
activations of each streamer (``try``/``finally``) and how many items each one produced.
"""

from __future__ import annotations

import collections
import itertools
import multiprocessing
import pickle

import numpy as np
import pytest

import pescador
from pescador import ChainMux, PescadorError, RoundRobinMux, ShuffledMux, StochasticMux, Streamer

# --------------------------------------------------------------------------- helpers

MODES = ("with_replacement", "single_active", "exhaustive")
DISTS = ("binomial", "constant", "poisson")


class Tracker:
    """Records the activations of instrumented streamers (shared by reference, A1)."""

    def __init__(self) -> None:
        self.starts: list[int] = []  # streamer index of each activation, in start order
        self.running = collections.Counter()  # activations of i started and not finished
        self.max_running = collections.Counter()
        self.produced: list[tuple[int, int]] = []  # (streamer, items) of finished activations

    def count(self, i: int) -> int:
        return self.starts.count(i)


def tracked(i, tracker, n=None, value=None):
    """Yield ``value`` (default ``i``) ``n`` times (forever if ``None``), reporting to tracker."""
    tracker.starts.append(i)
    tracker.running[i] += 1
    tracker.max_running[i] = max(tracker.max_running[i], tracker.running[i])
    k = 0  # items computed (counted before each is handed over)
    try:
        while n is None or k < n:
            k += 1
            yield i if value is None else value
    finally:
        tracker.running[i] -= 1
        tracker.produced.append((i, k))


def tracked_streams(weights_or_n, tracker, n=None):
    count = weights_or_n if isinstance(weights_or_n, int) else len(weights_or_n)
    return [Streamer(tracked, i, tracker, n) for i in range(count)]


def endless(i):
    while True:
        yield i


def letters(word, times=1):
    for _ in range(times):
        yield from word


def nothing():
    return
    yield  # pragma: no cover


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


def abc_source():
    yield Streamer("ab")
    yield Streamer("cd")
    yield Streamer("e")


def chain_source(log):
    """A generator function producing streamers lazily, logging each request."""
    for word in ("ab", "cd", "e"):
        log.append(word)
        yield Streamer(word)


def ints(prefix, n):
    for k in range(n):
        yield f"{prefix}{k}"


def make_mux(kind, streams, random_state=None, **kw):
    if kind == "stochastic":
        kw.setdefault("n_active", 2)
        kw.setdefault("rate", 3)
        return StochasticMux(streams, random_state=random_state, **kw)
    if kind == "shuffled":
        return ShuffledMux(streams, random_state=random_state, **kw)
    if kind == "roundrobin":
        return RoundRobinMux(streams, random_state=random_state, **kw)
    return ChainMux(streams, random_state=random_state, **kw)


KINDS = ("stochastic", "shuffled", "roundrobin", "chain")


@pytest.fixture
def global_rng():
    """Tests that seed numpy's global RNG restore it afterwards."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


# --------------------------------------------------------------------------- A5: validation


@pytest.mark.parametrize("cls", [StochasticMux, ShuffledMux, RoundRobinMux])
def test_empty_collection_rejected(cls):
    args = (1, 2) if cls is StochasticMux else ()
    with pytest.raises(PescadorError, match="empty collection"):
        cls([], *args)


@pytest.mark.parametrize("mode", ["exhaustive", "cycle"])
def test_empty_chain_yields_nothing(mode):
    assert list(ChainMux([], mode=mode)) == []
    assert list(ChainMux([], mode=mode).iterate(max_iter=5)) == []


@pytest.mark.parametrize(
    "make",
    [
        lambda mode: StochasticMux([Streamer("a")], 1, 2, mode=mode),
        lambda mode: RoundRobinMux([Streamer("a")], mode=mode),
        lambda mode: ChainMux([Streamer("a")], mode=mode),
    ],
    ids=["stochastic", "roundrobin", "chain"],
)
@pytest.mark.parametrize("mode", ["foo", None, "", "Exhaustive", 1])
def test_bad_mode_rejected_naming_parameter(make, mode):
    with pytest.raises(PescadorError, match="mode") as info:
        make(mode)
    assert repr(mode) in str(info.value)


def test_mode_names_are_per_mux():
    with pytest.raises(PescadorError, match="mode"):
        StochasticMux([Streamer("a")], 1, 2, mode="cycle")
    with pytest.raises(PescadorError, match="mode"):
        RoundRobinMux([Streamer("a")], mode="with_replacement")
    with pytest.raises(PescadorError, match="mode"):
        ChainMux([Streamer("a")], mode="permuted_cycle")
    # and the valid ones, positionally as in 3.0
    RoundRobinMux([Streamer("a")], "permuted_cycle")
    ChainMux([Streamer("a")], "cycle")


@pytest.mark.parametrize("rate", [2, None])
@pytest.mark.parametrize("dist", ["foo", None, "Binomial", "uniform"])
def test_bad_dist_rejected(dist, rate):
    """dist is validated even when rate=None makes it unused (§6.5)."""
    with pytest.raises(PescadorError, match="dist") as info:
        StochasticMux([Streamer("a")], 1, rate, dist=dist)
    assert repr(dist) in str(info.value)


@pytest.mark.parametrize("n_active", [0, -1, 1.5, None, "2", True, [2]])
def test_bad_n_active_rejected(n_active):
    with pytest.raises(PescadorError, match="n_active") as info:
        StochasticMux([Streamer("a"), Streamer("b")], n_active, 2)
    assert repr(n_active) in str(info.value)


@pytest.mark.parametrize("n_active", [1, 2, np.int64(2), np.int32(1)])
def test_good_n_active_accepted(n_active):
    mux = StochasticMux([Streamer("ab"), Streamer("cd")], n_active, 2, random_state=0)
    assert len(list(mux.iterate(max_iter=10))) == 10


@pytest.mark.parametrize("mode", ["single_active", "exhaustive"])
def test_n_active_above_n_streams_rejected_without_replacement(mode):
    with pytest.raises(PescadorError, match="n_active"):
        StochasticMux([Streamer("a"), Streamer("b")], 3, 2, mode=mode)


def test_n_active_above_n_streams_allowed_with_replacement():
    """Five slots over two streamers run several copies of a streamer at once.

    With ``rate=None`` and endless sources the five first activations run forever; once every
    slot has been pulled (all but ``5 * (4/5)**400 < 1e-38`` of the time) five activations of
    two streamers are running, so one streamer runs at least three copies.
    """
    tracker = Tracker()
    mux = StochasticMux(tracked_streams(2, tracker), 5, None, random_state=3)
    assert len(list(mux.iterate(max_iter=400))) == 400
    assert len(tracker.starts) == 5
    assert max(tracker.max_running.values()) >= 3

    # with a rate, activations are replaced: both streamers serve (P(not) = 2**-99)
    mux = StochasticMux(tracked_streams(2, Tracker()), 5, 4, dist="constant", random_state=3)
    items = list(mux.iterate(max_iter=400))
    assert len(items) == 400 and set(items) == {0, 1}


@pytest.mark.parametrize("dist", ["binomial", "poisson"])
@pytest.mark.parametrize("rate", [0.5, 0, -1, 0.999, float("nan"), float("inf"), "4", True])
def test_bad_rate_rejected(dist, rate):
    with pytest.raises(PescadorError, match="rate"):
        StochasticMux([Streamer("a")], 1, rate, dist=dist)


@pytest.mark.parametrize("rate", [0, -1, -0.5, float("nan"), float("inf"), float("-inf"), "4"])
def test_bad_constant_rate_rejected(rate):
    with pytest.raises(PescadorError, match="rate"):
        StochasticMux([Streamer("a")], 1, rate, dist="constant")


@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("rate", [None, 1, 1.0, 2.5, np.float32(3), np.int64(4)])
def test_good_rates_accepted(dist, rate):
    mux = StochasticMux([Streamer("abc"), Streamer("de")], 2, rate, dist=dist, random_state=0)
    assert len(list(mux.iterate(max_iter=20))) == 20


def test_constant_rate_below_one_gives_one_item_per_activation():
    tracker = Tracker()
    mux = StochasticMux(tracked_streams(3, tracker), 2, 0.5, dist="constant", random_state=0)
    assert len(list(mux.iterate(max_iter=50))) == 50
    # every activation but the two closed at the end gave exactly ceil(0.5) = 1 item
    assert all(k == 1 for _, k in tracker.produced)
    assert len(tracker.starts) == 50


@pytest.mark.parametrize("cls", [StochasticMux, ShuffledMux])
@pytest.mark.parametrize(
    "weights",
    [
        [1.0],
        [1.0, 2.0, 3.0],
        [[1.0, 2.0]],
        [0.0, 0.0],
        [np.nan, 1.0],
        [np.inf, 1.0],
        [-np.inf, 1.0],
        [1.0, -0.5],
        [-1.0, -1.0],
        ["a", "b"],
    ],
)
def test_bad_weights_rejected_at_construction(cls, weights):
    streams = [Streamer("ab"), Streamer("cd")]
    args = (1, 2) if cls is StochasticMux else ()
    with pytest.raises(PescadorError, match="weights"):
        cls(streams, *args, weights=weights)


def test_weights_checked_even_when_n_active_is_bad():
    with pytest.raises(PescadorError):
        StochasticMux([Streamer("a")], None, 2, weights=[1.0, 2.0])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("random_state", ["foo", 1.5, -1, object(), [1, 2]])
def test_bad_random_state_rejected(kind, random_state):
    with pytest.raises(PescadorError, match="random_state"):
        make_mux(kind, [Streamer("a")], random_state=random_state)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bad", [5, None, 1.5])
def test_bad_streamer_element_rejected(kind, bad):
    with pytest.raises(PescadorError):
        make_mux(kind, [Streamer("a"), bad])


@pytest.mark.parametrize("kind", KINDS)
def test_plain_iterables_are_wrapped(kind):
    mux = make_mux(kind, ["ab", ["c"], ("d", "e")], random_state=0)
    assert all(isinstance(s, Streamer) for s in mux.streamers)
    assert mux.n_streams == 3


def test_base_mux_is_abstract():
    base = pescador.BaseMux([Streamer("a")])
    assert base.n_streams == 1
    with pytest.raises(PescadorError):
        list(base)


# --------------------------------------------------------------------------- modes


@pytest.mark.parametrize("n_active", [1, 2, 4])
@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("seed", range(3))
def test_exhaustive_finite_sources_each_activated_once(n_active, dist, seed):
    tracker = Tracker()
    streams = tracked_streams(4, tracker, n=3)
    mux = StochasticMux(streams, n_active, None, mode="exhaustive", dist=dist, random_state=seed)
    items = list(mux)
    assert sorted(tracker.starts) == [0, 1, 2, 3]
    assert collections.Counter(items) == {0: 3, 1: 3, 2: 3, 3: 3}
    assert sum(tracker.running.values()) == 0  # every activation finished


@pytest.mark.parametrize("n_active", [1, 3])
@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("seed", range(3))
def test_exhaustive_with_rate_on_endless_sources_ends(n_active, dist, seed):
    tracker = Tracker()
    mux = StochasticMux(
        tracked_streams(5, tracker), n_active, 3, mode="exhaustive", dist=dist, random_state=seed
    )
    items = list(mux)  # endless sources: only the rate can end each activation
    assert sorted(tracker.starts) == [0, 1, 2, 3, 4]
    # each activation delivered its whole budget (>= 1) and nothing else was pulled
    assert sorted(i for i, _ in tracker.produced) == [0, 1, 2, 3, 4]
    assert all(k >= 1 for _, k in tracker.produced)
    assert len(items) == sum(k for _, k in tracker.produced)
    if dist == "constant":
        assert items.count(0) == 3 and len(items) == 15


def test_exhaustive_rate_truncates_each_streamer_once():
    """§6.4: rate=2, constant, three 4-letter streams -> 6 items, two from each."""
    mux = StochasticMux(
        [Streamer("aaaa"), Streamer("bbbb"), Streamer("cccc")],
        2,
        2,
        mode="exhaustive",
        dist="constant",
        random_state=7,
    )
    for _ in range(2):
        out = list(mux)
        assert sorted(out) == list("aabbcc")


@pytest.mark.parametrize("n_active", [1, 2, 3])
@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("rate", [1, 2.5, None])
def test_single_active_never_runs_two_copies(n_active, dist, rate):
    tracker = Tracker()
    n = 4 if rate is None else None  # finite sources when there is no rate
    mux = StochasticMux(
        tracked_streams(4, tracker, n=n),
        n_active,
        rate,
        mode="single_active",
        dist=dist,
        random_state=11,
    )
    assert len(list(mux.iterate(max_iter=600))) == 600
    # >= 150 refills, each missing a given streamer with probability <= 3/4: P(fail) < 1e-18
    assert set(tracker.max_running) == {0, 1, 2, 3}
    assert max(tracker.max_running.values()) == 1
    assert len(tracker.starts) > 4  # streamers were re-activated


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n_active", [1, 2])
def test_rate_none_first_active_set_is_permanent(mode, n_active):
    for seed in range(4):
        tracker = Tracker()
        mux = StochasticMux(
            tracked_streams(4, tracker), n_active, None, mode=mode, random_state=seed
        )
        items = list(mux.iterate(max_iter=500))
        assert len(items) == 500
        assert len(tracker.starts) == n_active
        assert set(items) <= set(tracker.starts)
        if mode != "with_replacement":
            assert len(set(tracker.starts)) == n_active


@pytest.mark.parametrize("mode", ["with_replacement", "single_active"])
def test_rate_none_finite_sources_are_replaced(mode):
    mux = StochasticMux(
        [Streamer("ab"), Streamer("cd"), Streamer("ef")], 2, None, mode=mode, random_state=2
    )
    assert len(list(mux.iterate(max_iter=300))) == 300


@pytest.mark.parametrize("mode", ["with_replacement", "single_active"])
@pytest.mark.parametrize("dist", DISTS)
def test_infinite_modes_yield_exactly_max_iter(mode, dist):
    mux = StochasticMux(
        [Streamer("abc"), Streamer("d"), Streamer([])], 2, 2, mode=mode, dist=dist, random_state=5
    )
    for n in (0, 1, 7, 250):
        assert len(list(mux.iterate(max_iter=n))) == n
    assert len(list(mux(max_iter=33))) == 33
    assert len(list(mux.cycle(max_iter=33))) == 33


@pytest.mark.parametrize("prune", [True, 1, "yes", 2.5, [0]])
@pytest.mark.parametrize("mode", ["with_replacement", "single_active"])
def test_any_truthy_prune_drops_empty_streamer(prune, mode):
    """A pruned streamer is activated once and never again (also in single_active)."""
    for seed in range(3):
        tracker = Tracker()
        streams = [Streamer(tracked, 0, tracker, 0), Streamer(tracked, 1, tracker)]
        mux = StochasticMux(
            streams,
            1,
            2,
            mode=mode,
            prune_empty_streams=prune,
            dist="constant",
            random_state=seed,
        )
        items = list(mux.iterate(max_iter=300))
        assert items == [1] * 300
        assert tracker.count(1) == 150  # 150 refills, each a chance to draw streamer 0
        assert tracker.count(0) <= 1


@pytest.mark.parametrize("prune", [False, 0, None, ""])
@pytest.mark.parametrize("mode", ["with_replacement", "single_active"])
def test_falsy_prune_keeps_empty_streamer(prune, mode):
    """Without pruning the empty streamer keeps being drawn (P(never) <= 2**-100)."""
    tracker = Tracker()
    streams = [Streamer(tracked, 0, tracker, 0), Streamer(tracked, 1, tracker)]
    mux = StochasticMux(
        streams, 1, 2, mode=mode, prune_empty_streams=prune, dist="constant", random_state=0
    )
    items = list(mux.iterate(max_iter=400))
    assert items == [1] * 400
    # each of the >= 200 refills picks streamer 0 with probability 1/2
    assert tracker.count(0) >= 2


def test_exhaustive_prune_irrelevant():
    for prune in (True, False):
        tracker = Tracker()
        streams = [Streamer(tracked, 0, tracker, 0), Streamer(tracked, 1, tracker, 5)]
        mux = StochasticMux(
            streams, 1, None, mode="exhaustive", prune_empty_streams=prune, random_state=1
        )
        assert list(mux) == [1] * 5
        assert sorted(tracker.starts) == [0, 1]


# --------------------------------------------------------------------------- weights


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("rate", [None, 2])
@pytest.mark.parametrize("n_active", [1, 2])
def test_zero_weight_streamer_never_activated(mode, rate, n_active):
    for seed in range(3):
        tracker = Tracker()
        n = 3 if rate is None else None
        mux = StochasticMux(
            tracked_streams(4, tracker, n=n),
            n_active,
            rate,
            weights=[1.0, 0.0, 2.0, 0.0],
            mode=mode,
            random_state=seed,
        )
        items = list(mux.iterate(max_iter=300))
        assert set(tracker.starts) <= {0, 2}
        assert set(items) <= {0, 2}
        if mode == "exhaustive":
            assert sorted(tracker.starts) == [0, 2]
        else:
            assert len(items) == 300


@pytest.mark.parametrize("seed", range(20))
def test_zero_weight_never_stalls_the_mux(seed):
    """3.0 activated the weight-0 streamer half the time and then yielded nothing (#161)."""
    mux = StochasticMux(
        [Streamer("abc"), Streamer("xyz")], 1, None, weights=[1, 0], random_state=seed
    )
    assert list(mux.iterate(max_iter=3)) == list("abc")
    shuffled = ShuffledMux([Streamer("abc"), Streamer("xyz")], weights=[0, 1], random_state=seed)
    assert set(shuffled.iterate(max_iter=30)) == set("xyz")


def test_zero_weight_never_started_in_shuffled_mux():
    tracker = Tracker()
    mux = ShuffledMux(tracked_streams(3, tracker, n=2), weights=[0, 1, 3], random_state=0)
    items = list(mux.iterate(max_iter=200))
    assert 0 not in tracker.starts and 0 not in items
    assert set(items) == {1, 2}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dist", DISTS)
def test_integer_weights_same_as_float_weights(mode, dist):
    def run(weights):
        streams = [Streamer(letters, c, 6) for c in "abcd"]
        mux = StochasticMux(streams, 2, 3, weights=weights, mode=mode, dist=dist, random_state=4)
        return list(mux.iterate(max_iter=60))

    expected = run([1.0, 2.0, 3.0, 4.0])
    assert run([1, 2, 3, 4]) == expected
    assert run(np.array([1, 2, 3, 4], dtype=np.int32)) == expected
    assert run((1, 2, 3, 4)) == expected


def test_shuffled_integer_weights_same_as_float_weights():
    """§7 [pinned]: integer weights give the same sequence as the equivalent floats."""
    streams = [Streamer(letters, c, 50) for c in "abc"]
    a = list(ShuffledMux(streams, weights=[1, 2, 3], random_state=9).iterate(max_iter=100))
    b = list(ShuffledMux(streams, weights=[1.0, 2.0, 3.0], random_state=9).iterate(max_iter=100))
    assert a == b


@pytest.mark.parametrize("cls", [StochasticMux, ShuffledMux])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_callers_weights_never_modified(cls, dtype):
    weights = np.array([1, 2, 5], dtype=dtype)
    original = weights.copy()
    args = (2, 3) if cls is StochasticMux else ()
    mux = cls([Streamer("ab"), Streamer("cd"), Streamer("ef")], *args, weights=weights)
    list(mux.iterate(max_iter=50))
    assert weights.dtype == dtype
    np.testing.assert_array_equal(weights, original)
    assert mux.weights is not weights
    weights[0] = 1000  # and later changes by the caller do not reach the mux
    assert mux.weights[0] != 1000


def test_weights_list_unmodified():
    weights = [3, 1]
    StochasticMux([Streamer("a"), Streamer("b")], 1, 2, weights=weights)
    assert weights == [3, 1]


def test_exhaustive_zero_weight_gives_first_stream_exactly():
    """§6.7 [pinned]: exhaustive, weights [1.0, 0.0], n_active=2, rate=256."""
    first, second = "a" * 100, "b" * 100
    for seed in range(5):
        mux = StochasticMux(
            [Streamer(first), Streamer(second)],
            2,
            256,
            weights=[1.0, 0.0],
            mode="exhaustive",
            random_state=seed,
        )
        assert "".join(mux) == first


def test_exhaustive_half_weight_interleaves():
    """§6.7 [pinned]: with [1.0, 0.5] the output is not just the first stream then the second.

    Both streams are active from the start; the first 100 items all come from stream 0 with
    probability (2/3)**100 < 3e-18.
    """
    first, second = "a" * 100, "b" * 100
    mux = StochasticMux(
        [Streamer(first), Streamer(second)],
        2,
        256,
        weights=[1.0, 0.5],
        mode="exhaustive",
        random_state=0,
    )
    out = "".join(mux)
    assert sorted(out) == sorted(first + second)
    assert out != first + second


def test_exhaustive_tiny_weight_comes_last():
    """§6.7 [pinned]: [1e10, 1e-10] -> the first stream, then the second (tiny one kept).

    Each of the first 100 draws picks the tiny slot with probability 1e-20.
    """
    first, second = "a" * 100, "b" * 100
    for seed in range(5):
        mux = StochasticMux(
            [Streamer(first), Streamer(second)],
            2,
            256,
            weights=[1e10, 1e-10],
            mode="exhaustive",
            random_state=seed,
        )
        assert "".join(mux) == first + second


# --------------------------------------------------------------------------- A7: no waste


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dist", DISTS)
def test_rate_limited_activation_computes_exactly_its_items(mode, dist):
    tracker = Tracker()
    mux = StochasticMux(tracked_streams(6, tracker), 3, 2.5, mode=mode, dist=dist, random_state=8)
    it = mux.iterate(max_iter=500)
    items = list(it)
    it.close()
    # every item computed by a source was delivered: no extra pulls anywhere
    assert len(items) == sum(k for _, k in tracker.produced)
    assert all(k >= 1 for _, k in tracker.produced)
    if dist == "constant":
        # every activation ended by its budget computed exactly ceil(2.5) = 3 items;
        # only the (at most 3) activations closed by the end of the iteration may be shorter
        assert sum(k != 3 for _, k in tracker.produced) <= 3


# --------------------------------------------------------------------------- A2: seeds


SEEDS = [
    0,
    12345,
    2**40 + 3,
    np.int64(7),
    np.uint32(8),
    lambda: np.random.RandomState(3),
    lambda: np.random.default_rng(4),
    lambda: np.random.SeedSequence(5),
]


def seed_value(seed):
    return seed() if callable(seed) else seed


def sample_streams():
    return [Streamer(letters, c, 7) for c in "abcd"] + [Streamer(endless, "z")]


MUX_FACTORIES = {
    "stochastic-wr": lambda rs: StochasticMux(sample_streams(), 2, 3, random_state=rs),
    "stochastic-single": lambda rs: StochasticMux(
        sample_streams(), 2, 3, mode="single_active", dist="poisson", random_state=rs
    ),
    "stochastic-exhaustive": lambda rs: StochasticMux(
        [Streamer(letters, c, 30) for c in "abcd"], 2, None, mode="exhaustive", random_state=rs
    ),
    "shuffled": lambda rs: ShuffledMux(sample_streams(), weights=[1, 2, 3, 4, 1], random_state=rs),
    "roundrobin-permuted": lambda rs: RoundRobinMux(
        sample_streams()[:4], mode="permuted_cycle", random_state=rs
    ),
    "chain-cycle": lambda rs: ChainMux(sample_streams()[:4], mode="cycle", random_state=rs),
    "tree": lambda rs: ShuffledMux(
        [
            StochasticMux(sample_streams(), 2, 2),
            RoundRobinMux(sample_streams()[:3], mode="permuted_cycle"),
            StochasticMux(sample_streams(), 1, 4, dist="constant"),
        ],
        random_state=rs,
    ),
}


def take(mux, n=60):
    return list(mux.iterate(max_iter=n))


@pytest.mark.parametrize("name", sorted(MUX_FACTORIES))
@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: type(seed_value(s)).__name__)
def test_seeded_mux_replays_every_iteration(name, seed):
    mux = MUX_FACTORIES[name](seed_value(seed))
    first = take(mux)
    assert take(mux) == first
    assert list(mux.iterate(max_iter=60)) == first
    # an identical recipe built separately gives the same sequence
    assert take(MUX_FACTORIES[name](seed_value(seed))) == first


RANDOM_MUXES = sorted(set(MUX_FACTORIES) - {"chain-cycle"})  # ChainMux is deterministic


@pytest.mark.parametrize("name", RANDOM_MUXES)
def test_different_seeds_differ(name):
    """600 items hold enough random choices that two seeds coincide with P < 1e-20."""
    outputs = {tuple(take(MUX_FACTORIES[name](seed), 600)) for seed in (1, 2, 3)}
    assert len(outputs) == 3


def test_tree_seeded_only_at_the_top_is_reproducible():
    def build(seed):
        inner = [
            StochasticMux([Streamer(letters, c, 3) for c in "abc"], 2, 2),
            StochasticMux([Streamer(letters, c, 3) for c in "xyz"], 1, 3, mode="single_active"),
            ShuffledMux([Streamer(letters, c, 5) for c in "pq"]),
        ]
        middle = StochasticMux(inner, 2, 5, mode="with_replacement")
        return ShuffledMux(
            [middle, RoundRobinMux(inner, mode="permuted_cycle")], random_state=seed
        )

    a = take(build(21), 300)
    assert take(build(21), 300) == a
    mux = build(21)
    assert take(mux, 300) == a and take(mux, 300) == a
    assert take(build(22), 300) != a


def test_unseeded_children_of_a_seeded_parent_are_not_clones():
    """Two identical unseeded children get different seeds from their parent."""
    children = [ShuffledMux([Streamer(endless, c) for c in "ab"]) for _ in range(2)]
    mux = RoundRobinMux(children, random_state=3)
    items = take(mux, 400)
    first, second = items[0::2], items[1::2]  # P(equal) = 2**-200
    assert first != second


@pytest.mark.parametrize("name", RANDOM_MUXES)
def test_unseeded_mux_differs_across_iterations(name, global_rng):
    mux = MUX_FACTORIES[name](None)
    np.random.seed(0)
    outputs = {tuple(take(mux, 600)) for _ in range(3)}  # P(coincidence) < 1e-20
    assert len(outputs) == 3


@pytest.mark.parametrize("name", sorted(MUX_FACTORIES))
def test_unseeded_mux_reproducible_under_global_seed(name, global_rng):
    mux = MUX_FACTORIES[name](None)
    np.random.seed(1234)
    a = [take(mux), take(mux)]
    np.random.seed(1234)
    b = [take(mux), take(mux)]
    assert a == b
    np.random.seed(1234)
    assert [take(MUX_FACTORIES[name](None)), take(mux)] == a


def test_callers_random_state_never_advanced():
    rs = np.random.RandomState(17)
    before = rs.get_state()
    gen = np.random.default_rng(18)
    gen_before = gen.bit_generator.state
    seq = np.random.SeedSequence(19)
    spawned = seq.n_children_spawned
    for random_state in (rs, gen, seq):
        for factory in MUX_FACTORIES.values():
            mux = factory(random_state)
            take(mux)
            pickle.loads(pickle.dumps(mux))
    after = rs.get_state()
    assert np.array_equal(after[1], before[1]) and after[2:] == before[2:]
    assert gen.bit_generator.state == gen_before
    assert seq.n_children_spawned == spawned


def test_random_state_object_snapshot_taken_at_iteration():
    """A RandomState is a recipe: its *current* state seeds each iteration, never advanced."""
    rs = np.random.RandomState(5)
    mux = ShuffledMux([Streamer(endless, c) for c in "abcd"], random_state=rs)
    a = take(mux)
    assert take(mux) == a


@pytest.mark.parametrize("name", sorted(MUX_FACTORIES))
@pytest.mark.parametrize("seed", [None, *SEEDS], ids=lambda s: type(seed_value(s)).__name__)
def test_every_mux_pickles(name, seed, global_rng):
    mux = MUX_FACTORIES[name](seed_value(seed))
    clone = pickle.loads(pickle.dumps(mux, protocol=pickle.HIGHEST_PROTOCOL))
    assert type(clone) is type(mux)
    if seed is None:
        np.random.seed(99)
        expected = take(mux)
        np.random.seed(99)
        assert take(clone) == expected
    else:
        assert take(clone) == take(mux)


def test_chain_of_generator_function_pickles():
    mux = ChainMux(abc_source, mode="cycle", random_state=1)
    clone = pickle.loads(pickle.dumps(mux))
    assert "".join(take(clone, 7)) == "".join(take(mux, 7)) == "abcdeab"


def test_activated_mux_pickles_after_iteration():
    mux = StochasticMux(sample_streams(), 2, 3, random_state=1)
    take(mux)  # iterating leaves the recipe picklable
    clone = pickle.loads(pickle.dumps(mux))
    assert take(clone) == take(mux)


def _run_in_child(mux):
    return list(mux.iterate(max_iter=50))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [None, 3, np.random.SeedSequence(4)], ids=["None", "int", "seq"])
def test_mux_round_trips_through_spawn(seed):
    mux = MUX_FACTORIES["tree"](seed)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        child = pool.apply(_run_in_child, (mux,))
    assert len(child) == 50
    if seed is not None:
        assert child == _run_in_child(mux)


# --------------------------------------------------------------------------- A6: nothing hangs


def empty_streams():
    return [
        Streamer([]),
        Streamer(nothing),
        Streamer(""),
        Streamer(letters, "", 3),
        ChainMux([Streamer([])]),
    ]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("prune", [True, False, 1, 0])
@pytest.mark.parametrize("rate", [None, 1, 3.5])
@pytest.mark.parametrize("dist", DISTS)
def test_stochastic_all_empty_ends(mode, prune, rate, dist):
    for n_active in (1, 3, 7):
        if mode != "with_replacement" and n_active > 5:
            continue
        mux = StochasticMux(
            empty_streams(),
            n_active,
            rate,
            mode=mode,
            prune_empty_streams=prune,
            dist=dist,
            random_state=n_active,
        )
        assert list(mux) == []
        assert list(mux.cycle()) == []
        assert list(mux(max_iter=10, cycle=True)) == []


@pytest.mark.timeout(10)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("prune", [True, False])
def test_stochastic_empty_plus_zero_weight_ends(mode, prune):
    """The only streamer with data has weight 0: nothing can be produced, so it ends."""
    mux = StochasticMux(
        [Streamer([]), Streamer("abc"), Streamer(nothing)],
        2,
        2,
        weights=[1, 0, 1],
        mode=mode,
        prune_empty_streams=prune,
        random_state=0,
    )
    assert list(mux) == []


@pytest.mark.timeout(10)
@pytest.mark.parametrize("weights", [None, [1, 2, 3, 4, 5], [0, 0, 1, 0, 0]])
def test_shuffled_all_empty_ends(weights):
    assert list(ShuffledMux(empty_streams(), weights=weights, random_state=0)) == []
    assert list(ShuffledMux(empty_streams(), weights=weights).cycle()) == []


@pytest.mark.timeout(10)
@pytest.mark.parametrize("mode", ["exhaustive", "cycle", "permuted_cycle"])
def test_roundrobin_all_empty_ends(mode):
    assert list(RoundRobinMux(empty_streams(), mode=mode, random_state=0)) == []
    assert list(RoundRobinMux(empty_streams(), mode=mode).cycle(max_iter=5)) == []


def empty_source():
    yield Streamer([])
    yield Streamer(nothing)


def no_source():
    return
    yield  # pragma: no cover


@pytest.mark.timeout(10)
@pytest.mark.parametrize("mode", ["exhaustive", "cycle"])
@pytest.mark.parametrize(
    "streamers", [empty_streams, lambda: [], lambda: empty_source, lambda: no_source]
)
def test_chain_all_empty_ends(mode, streamers):
    assert list(ChainMux(streamers(), mode=mode)) == []
    assert list(ChainMux(streamers(), mode=mode).cycle()) == []


@pytest.mark.timeout(10)
def test_nested_all_empty_ends():
    leaves = [
        StochasticMux(empty_streams(), 2, None, prune_empty_streams=False),
        ShuffledMux(empty_streams()),
        RoundRobinMux(empty_streams(), mode="cycle"),
        ChainMux(empty_streams(), mode="cycle"),
    ]
    for top in (
        StochasticMux(leaves, 2, 3, prune_empty_streams=False, mode="single_active"),
        StochasticMux(leaves, 6, 3, prune_empty_streams=0),
        ShuffledMux(leaves),
        RoundRobinMux(leaves, mode="permuted_cycle"),
        ChainMux(leaves, mode="cycle"),
    ):
        assert list(top.iterate()) == []
        assert list(top.cycle()) == []


@pytest.mark.timeout(10)
@pytest.mark.parametrize("mode", ["with_replacement", "single_active"])
def test_unpruned_mix_of_empty_and_data_keeps_going(mode):
    mux = StochasticMux(
        [*empty_streams(), Streamer("x")],
        2,
        2,
        mode=mode,
        prune_empty_streams=False,
        random_state=3,
    )
    assert list(mux.iterate(max_iter=200)) == ["x"] * 200


# --------------------------------------------------------------------------- errors


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


# --------------------------------------------------------------------------- ShuffledMux


def test_shuffled_restarts_ended_streams():
    mux = ShuffledMux([Streamer("ab"), Streamer("xyz")], random_state=0)
    items = "".join(take(mux, 600))
    first = "".join(c for c in items if c in "ab")
    second = "".join(c for c in items if c in "xyz")
    assert first == ("ab" * 600)[: len(first)]
    assert second == ("xyz" * 600)[: len(second)]
    assert len(first) > 100 and len(second) > 100  # P(fail) < 1e-40


def test_shuffled_drops_streamer_empty_since_its_restart():
    """§7 [pinned]: dropped for the rest of the iteration, even if it gave data earlier."""

    def once(log):
        log.append(1)
        if len(log) == 1:
            yield from "xy"

    log = []
    mux = ShuffledMux([Streamer(once, log), Streamer("ab")], random_state=0)
    items = "".join(take(mux, 300))
    assert items.count("x") == 1 and items.count("y") == 1
    assert len(log) == 2  # ran once with data, once empty, then never again
    assert len(items) == 300


def test_shuffled_drops_empty_streams_pinned():
    """§7 [pinned]: seed 1234, after 30 samples the empty streams' weights are 0."""
    mux = ShuffledMux([Streamer(x) for x in ["a", "b", [], [], "c"]], random_state=1234)
    with mux as active:
        assert len(active.streams_) == 5
        np.testing.assert_allclose(active.stream_weights_, [0.2] * 5)
        np.testing.assert_array_equal(active.stream_counts_, [0] * 5)
        out = list(active.iterate(max_iter=30))
        assert len(out) == 30 and set(out) == {"a", "b", "c"}
        weights = np.asarray(active.stream_weights_)
        assert weights[2] == 0 and weights[3] == 0
        assert np.all(weights[[0, 1, 4]] > 0)


def test_shuffled_ends_only_when_all_streams_empty():
    mux = ShuffledMux([Streamer([]), Streamer("a"), Streamer([])], random_state=0)
    assert take(mux, 100) == ["a"] * 100
    assert list(ShuffledMux([Streamer(iter("ab")), Streamer([])])) == ["a", "b"]


def test_shuffled_context_manager_attributes():
    mux = ShuffledMux([Streamer("ab"), Streamer("cd")], weights=[3, 1], random_state=0)
    with mux as active:
        assert active.is_activated_copy
        assert len(active.streams_) == 2
        np.testing.assert_allclose(active.stream_weights_, [0.75, 0.25])
        np.testing.assert_array_equal(active.stream_counts_, [0, 0])
    assert mux.active == 0


def test_stochastic_context_manager_attributes():
    mux = StochasticMux(
        [Streamer(endless, i) for i in range(4)], 2, 5, weights=[1, 2, 3, 4], random_state=0
    )
    with mux as active:
        assert mux.active == 1
        assert active.is_activated_copy
        assert len(active.streams_) == 2
        idxs = np.asarray(active.stream_idxs_)
        assert idxs.shape == (2,) and set(idxs) <= {0, 1, 2, 3}
        weights = np.asarray(active.stream_weights_, dtype=float)
        # each slot's weight is its streamer's weight, up to normalisation
        np.testing.assert_allclose(weights / weights.sum(), (idxs + 1) / (idxs + 1).sum())
        np.testing.assert_array_equal(active.stream_counts_, [0, 0])
        out = list(active.iterate(max_iter=3))
        assert len(out) == 3 and set(out) <= {0, 1, 2, 3}
        assert 0 <= sum(active.stream_counts_) <= 3
    assert mux.active == 0


def test_originals_active_counts_unchanged_inside_mux():
    """§5.3.4 [pinned]: only the mux's own ``active`` changes."""
    streams = [Streamer(endless, i) for i in range(3)]
    mux = StochasticMux(streams, 2, 3, random_state=0)
    it = mux.iterate()
    for _ in range(20):
        next(it)
        assert mux.active == 1
        assert [s.active for s in streams] == [0, 0, 0]
    it.close()
    assert mux.active == 0


# --------------------------------------------------------------------------- RoundRobinMux


def test_roundrobin_pinned_example():
    mux = RoundRobinMux([Streamer(x) for x in ["aa", "bb", [], [], [], "cccc"]])
    assert "".join(mux) == "abcabccc"
    assert "".join(mux) == "abcabccc"  # restartable


def test_roundrobin_cycle_restarts_all_when_all_ended():
    mux = RoundRobinMux([Streamer("a"), Streamer("bb"), Streamer("c")], mode="cycle")
    assert "".join(mux.iterate(max_iter=12)) == "abcb" * 3


def test_roundrobin_permuted_cycle_pinned_counts():
    mux = RoundRobinMux(
        [Streamer("a"), Streamer("bb"), Streamer("c")], "permuted_cycle", random_state=0
    )
    out = "".join(mux.iterate(max_iter=12))
    assert collections.Counter(out) == {"a": 3, "b": 6, "c": 3}
    assert out[:4] == "abcb"


def test_roundrobin_permuted_cycle_passes_are_permutations():
    """First pass in order; every later pass visits all streamers in some order.

    With 300 later passes, each of the 6 orders is missed with probability (5/6)**300, so a
    correct library fails this with probability < 6 * (5/6)**300 < 1e-22.
    """
    words = ["a", "b", "c"]
    for seed in range(3):
        mux = RoundRobinMux([Streamer(w) for w in words], "permuted_cycle", random_state=seed)
        out = "".join(mux.iterate(max_iter=3 * 301))
        passes = [out[k : k + 3] for k in range(0, len(out), 3)]
        assert passes[0] == "abc"
        assert all(sorted(p) == words for p in passes)
        assert {p for p in passes[1:]} == {"".join(p) for p in itertools.permutations("abc")}


def test_roundrobin_concurrent_iterations_independent():
    mux = RoundRobinMux([Streamer("ab"), Streamer("cd")])
    a, b = mux.iterate(), mux.iterate()
    assert [next(a), next(a), next(b), next(a), next(b), next(b), next(b)] == list("acabcbd")


# --------------------------------------------------------------------------- ChainMux


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
    mux = ShuffledMux([ChainMux([Streamer(ints("k", 5))])], random_state=0)
    assert take(mux, 5) == [f"k{i}" for i in range(5)]
