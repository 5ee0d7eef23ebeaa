"""Property-based tests (hypothesis) of the structural guarantees of the four muxes.

Items are tagged ``(source, position)`` so that the output can be traced back to its sources.
These properties hold for every random outcome, so they have no false-failure probability.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from pescador import ChainMux, RoundRobinMux, ShuffledMux, StochasticMux, Streamer

SETTINGS = settings(max_examples=60, deadline=None)

lengths = st.lists(st.integers(0, 6), min_size=1, max_size=6)
seeds = st.integers(0, 2**32 - 1)
dists = st.sampled_from(["binomial", "constant", "poisson"])


def tagged(lens):
    return [[(s, k) for k in range(n)] for s, n in enumerate(lens)]


def streams_of(sources):
    return [Streamer(src) for src in sources]


def by_source(items, n):
    out = [[] for _ in range(n)]
    for item in items:
        out[item[0]].append(item)
    return out


def round_robin_model(sources):
    """One item from each non-ended source in turn (RoundRobinMux as documented)."""
    iters = [iter(s) for s in sources]
    out = []
    live = list(range(len(sources)))
    while live:
        still = []
        for i in live:
            for item in iters[i]:
                out.append(item)
                still.append(i)
                break
        live = still
    return out


def endless_source(tag):
    k = 0
    while True:
        yield (tag, k)
        k += 1


# --------------------------------------------------------------------------- ChainMux


@SETTINGS
@given(lengths)
def test_chain_concatenates_in_order(lens):
    sources = tagged(lens)
    expected = [item for src in sources for item in src]
    mux = ChainMux(streams_of(sources))
    assert list(mux) == expected
    assert list(mux) == expected  # restartable


@SETTINGS
@given(lengths, st.integers(0, 40))
def test_chain_cycle_repeats_the_concatenation(lens, n):
    sources = tagged(lens)
    once = [item for src in sources for item in src]
    out = list(ChainMux(streams_of(sources), mode="cycle").iterate(max_iter=n))
    if once:
        assert out == (once * (n // len(once) + 1))[:n]
    else:
        assert out == []


@SETTINGS
@given(lengths)
def test_chain_of_generator_function_concatenates(lens):
    sources = tagged(lens)

    def source():
        for src in sources:
            yield Streamer(src)

    assert list(ChainMux(source)) == [item for src in sources for item in src]


# --------------------------------------------------------------------------- RoundRobinMux


@SETTINGS
@given(lengths)
def test_roundrobin_is_an_order_preserving_merge(lens):
    sources = tagged(lens)
    out = list(RoundRobinMux(streams_of(sources)))
    assert len(out) == sum(lens)
    assert by_source(out, len(sources)) == sources
    assert out == round_robin_model(sources)


@SETTINGS
@given(lengths, st.integers(0, 60))
def test_roundrobin_cycle_repeats_the_merge(lens, n):
    sources = tagged(lens)
    once = round_robin_model(sources)
    out = list(RoundRobinMux(streams_of(sources), mode="cycle").iterate(max_iter=n))
    assert out == ((once * (n // len(once) + 1))[:n] if once else [])


@SETTINGS
@given(lengths, seeds, st.integers(1, 4))
def test_roundrobin_permuted_cycle_passes_are_merges(lens, seed, passes):
    sources = tagged(lens)
    total = sum(lens)
    mux = RoundRobinMux(streams_of(sources), mode="permuted_cycle", random_state=seed)
    out = list(mux.iterate(max_iter=total * passes))
    assert len(out) == total * passes
    assert out[:total] == round_robin_model(sources)  # the first pass is in order
    for p in range(passes):
        one_pass = out[p * total : (p + 1) * total]
        assert by_source(one_pass, len(sources)) == sources


# --------------------------------------------------------------------------- StochasticMux


@SETTINGS
@given(lengths, seeds, dists, st.data())
def test_exhaustive_without_rate_yields_each_item_once_in_order(lens, seed, dist, data):
    sources = tagged(lens)
    n = len(sources)
    n_active = data.draw(st.integers(1, n), label="n_active")
    weights = data.draw(
        st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0]), min_size=n, max_size=n).filter(any),
        label="weights",
    )
    mux = StochasticMux(
        streams_of(sources),
        n_active,
        None,
        weights=weights,
        mode="exhaustive",
        dist=dist,
        random_state=seed,
    )
    out = list(mux)
    expected = [src if w > 0 else [] for src, w in zip(sources, weights, strict=True)]
    assert by_source(out, n) == expected
    assert list(mux) == out  # seeded: replays


@SETTINGS
@given(lengths, seeds, dists, st.floats(1, 6), st.data())
def test_exhaustive_with_rate_takes_one_prefix_per_source(lens, seed, dist, rate, data):
    sources = tagged(lens)
    n = len(sources)
    n_active = data.draw(st.integers(1, n), label="n_active")
    mux = StochasticMux(
        streams_of(sources), n_active, rate, mode="exhaustive", dist=dist, random_state=seed
    )
    out = by_source(list(mux), n)
    for got, src in zip(out, sources, strict=True):
        assert got == src[: len(got)]
        assert len(got) >= min(1, len(src))  # every budget is at least 1
        if dist == "constant":
            assert len(got) == min(len(src), math.ceil(rate))


@SETTINGS
@given(lengths, seeds, st.sampled_from(["with_replacement", "single_active"]))
def test_one_slot_without_rate_runs_whole_sources(lens, seed, mode):
    """A single slot with no rate runs each activation to its end: runs of whole sources."""
    sources = tagged(lens)
    out = list(
        StochasticMux(streams_of(sources), 1, None, mode=mode, random_state=seed).iterate(
            max_iter=80
        )
    )
    pos = 0
    while pos < len(out):
        src = sources[out[pos][0]]
        run = out[pos : pos + len(src)]
        assert run == src[: len(run)]  # only the last run may be cut by max_iter
        pos += len(src)


# --------------------------------------------------------------------------- max_iter


@st.composite
def infinite_muxes(draw):
    """A mux that never ends (some source with positive weight has items), and its seed."""
    lens = draw(st.lists(st.integers(0, 5), min_size=1, max_size=5).filter(any))
    sources = tagged(lens)
    streams = streams_of(sources)
    seed = draw(seeds)
    kind = draw(
        st.sampled_from(["stochastic", "stochastic-endless", "shuffled", "roundrobin", "chain"])
    )
    if kind == "stochastic":
        mode = draw(st.sampled_from(["with_replacement", "single_active"]))
        n_active = draw(st.integers(1, len(lens) if mode == "single_active" else 8))
        rate = draw(st.one_of(st.none(), st.floats(1, 10)))
        prune = draw(st.booleans())
        dist = draw(dists)
        return StochasticMux(
            streams,
            n_active,
            rate,
            mode=mode,
            prune_empty_streams=prune,
            dist=dist,
            random_state=seed,
        )
    if kind == "stochastic-endless":
        endless = [Streamer(endless_source, s) for s in range(len(lens))]
        n_active = draw(st.integers(1, len(lens)))
        mode = draw(st.sampled_from(["with_replacement", "single_active", "exhaustive"]))
        return StochasticMux(endless, n_active, None, mode=mode, random_state=seed)
    if kind == "shuffled":
        weights = [
            draw(st.sampled_from([0.5, 1, 2])) if n else draw(st.sampled_from([0, 1]))
            for n in lens
        ]
        return ShuffledMux(streams, weights=weights, random_state=seed)
    if kind == "roundrobin":
        mode = draw(st.sampled_from(["cycle", "permuted_cycle"]))
        return RoundRobinMux(streams, mode=mode, random_state=seed)
    return ChainMux(streams, mode="cycle")


@SETTINGS
@given(infinite_muxes(), st.integers(0, 300))
def test_max_iter_on_infinite_mux_yields_exactly_n(mux, n):
    assert len(list(mux.iterate(max_iter=n))) == n
    assert len(list(mux(max_iter=n))) == n


@SETTINGS
@given(lengths.filter(any), seeds, st.integers(0, 200))
def test_cycle_of_finite_mux_yields_exactly_n(lens, seed, n):
    sources = tagged(lens)
    mux = StochasticMux(
        streams_of(sources), 2 if len(lens) > 1 else 1, None, mode="exhaustive", random_state=seed
    )
    assert len(list(mux.cycle(max_iter=n))) == n
    assert len(list(mux(max_iter=n, cycle=True))) == n
