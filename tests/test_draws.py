"""The private block-drawn streams behind the muxes' per-item decisions (pescador/mux/_draws.py,
pescador/mux/_slot_draws.py).

These tests use the streams directly, with seeded numpy generators. Exactness is checked
against the same uniforms read straight from an identical generator; resumption against the
uninterrupted stream. Statistical tests are chi-square tests at ``ALPHA = 1e-7`` on i.i.d.
draws (the weights do not change between the draws of one test), with at least 300 expected
draws per category: each fails a correct implementation with probability at most 1e-7.
"""

from __future__ import annotations

import bisect
import gc
import inspect
import itertools
import json
import math
import textwrap
import weakref
from bisect import bisect_right
from itertools import islice

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from pescador.mux._draws import BLOCK, Mapped, Uniforms, indices, searched
from pescador.mux._slot_draws import (
    MAX_TRIALS,
    EqualSlotDraws,
    TreeSlotDraws,
    WeightedSlotDraws,
)

ALPHA = 1e-7

#: The two ways of drawing weighted slots: a table recomputed from the changed slot on
#: (StochasticMux), and sum and max trees, O(log n) per change (ShuffledMux).
WEIGHTED = pytest.mark.parametrize("kind", [WeightedSlotDraws, TreeSlotDraws])


def reference(seed, n):
    """The first ``n`` uniforms of a generator seeded like ``np.random.default_rng(seed)``,
    drawn in blocks as the streams draw them."""
    gen = np.random.default_rng(seed)
    blocks = -(-n // BLOCK)
    return np.concatenate([gen.random(BLOCK) for _ in range(blocks)])[:n].tolist()


def round_trip(state):
    return json.loads(json.dumps(state))


def test_uniforms_are_the_generators_numbers():
    u = Uniforms(np.random.default_rng(3))
    got = [u() for _ in range(10)] + list(islice(u.stream, 3000)) + [u.draw() for _ in range(5)]
    assert got == reference(3, len(got))


@pytest.mark.parametrize("k", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2500])
def test_uniforms_resume_exactly(k):
    u = Uniforms(np.random.default_rng(5))
    head = list(islice(u.stream, k))
    again = Uniforms(np.random.default_rng(99))
    again.load(round_trip(u.state()))
    assert head + list(islice(again.stream, 2000)) == reference(5, k + 2000)


def test_uniforms_are_freed_by_reference_counting():
    gc.disable()
    try:
        u = Uniforms(np.random.default_rng(0))
        u()
        ref = weakref.ref(u)
        stream = u.stream
        del u
        assert ref() is None
        assert len(list(stream)) == BLOCK - 1  # the block drawn, then the end
    finally:
        gc.enable()


def test_stop_ends_the_stream():
    u = Uniforms(np.random.default_rng(0))
    next(u.stream)
    u.stop()
    assert list(u.stream) == []


def test_indices_match_python_and_remap_keeps_the_position():
    m = Mapped(np.random.default_rng(1), indices(7))
    first = list(islice(m.stream, 1500))
    m.remap(indices(3))
    second = list(islice(m.stream, 1000))
    us = reference(1, 2500)
    assert first == [int(u * 7) for u in us[:1500]]
    assert second == [int(u * 3) for u in us[1500:]]


def test_searched_matches_bisect():
    table = np.array([0.1, 0.35, 0.9, math.inf])
    values = np.array([10, 11, 12, 13])
    m = Mapped(np.random.default_rng(2), searched(table, 2.0, values))
    us = reference(2, 2000)
    assert list(islice(m.stream, 2000)) == [10 + bisect_right(table, u * 2.0) for u in us]


def test_streams_sharing_a_generator_resume_exactly():
    """Several streams and scalar draws on one generator: their states, then the generator's
    own state, restore everything (the owner's protocol)."""

    def build(seed):
        gen = np.random.default_rng(seed)
        return gen, Uniforms(gen), Mapped(gen, indices(5))

    def run(gen, a, b, start, n):
        out = []
        for i in range(start, start + n):
            out.append(a() if i % 3 else next(b.stream))
            if i % 250 == 0:
                out.append(float(gen.random()))
        return out

    gen, a, b = build(4)
    full = run(gen, a, b, 0, 3000)
    gen, a, b = build(4)
    head = run(gen, a, b, 0, 1700)
    saved = round_trip([a.state(), b.state(), gen.bit_generator.state])
    gen2, a2, b2 = build(77)
    a2.load(saved[0])
    b2.load(saved[1])
    gen2.bit_generator.state = saved[2]
    assert head + run(gen2, a2, b2, 1700, 1300) == full


def test_equal_slots_stay_in_range_as_slots_die():
    s = EqualSlotDraws(np.random.default_rng(0))
    s.reset([2.0] * 8)
    assert s.total == 16.0
    seen = []
    for n in range(8, 0, -1):
        draws = list(islice(s.stream, 400))
        assert set(draws) <= set(range(n))
        seen.append(len(set(draws)))
        s.remove(0)
    assert seen[0] == 8


def weighted_counts(slots, n_draws):
    return np.bincount(list(islice(slots.stream, n_draws)), minlength=len(slots.w))


@pytest.mark.parametrize(
    "weights, capacity, thinning",
    [
        ([1.0, 2.0, 3.0, 4.0], 4, True),  # even enough: thinning
        ([0.5, 0.7, 0.9, 0.6, 0.8], 5, True),
        ([1.0, 1.5, 1.0, 1.2], 6, True),  # two slots not live: never accepted
        ([100.0, 1.0, 2.0, 3.0], 5, False),  # 5 * 100 / 106 > 4 trials per draw: bisection
        ([1.0, 2.0, 3.0, 4.0], 16, False),  # too many slots not live
        ([1e-3, 5.0, 1e-3, 1e-3], 5, False),
    ],
)
@WEIGHTED
def test_weighted_draws_follow_weights(kind, weights, capacity, thinning):
    """P(false fail) <= 1e-7 (chi-square; >= 300 expected per slot)."""
    s = kind(np.random.default_rng(11), capacity)
    s.reset(list(weights))
    n_draws = int(300 * sum(weights) / min(weights)) + 1
    counts = weighted_counts(s, n_draws)
    assert s.thinning is thinning
    expected = np.array(weights) / sum(weights) * n_draws
    assert stats.chisquare(counts, expected).pvalue > ALPHA


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("capacity", [5, 12])  # thinning, then bisection
@WEIGHTED
def test_weighted_draws_follow_changed_weights(kind, seed, capacity):
    """Weights changed and a slot removed mid-block: the draws after the changes follow the
    new weights. P(false fail) <= 1e-7 each (chi-square)."""
    s = kind(np.random.default_rng(seed), capacity)
    s.reset([1.0, 1.0, 1.0, 1.0, 1.0])
    list(islice(s.stream, 100))  # mid-block
    s.set(1, 3.0)  # a larger weight than any before
    s.set(2, 0.5)
    s.remove(0)  # slot 4 moves into slot 0
    weights = list(s.w)
    assert weights == [1.0, 3.0, 0.5, 1.0]
    n_draws = int(300 * sum(weights) / min(weights)) + 1
    counts = weighted_counts(s, n_draws)
    expected = np.array(weights) / sum(weights) * n_draws
    assert stats.chisquare(counts, expected).pvalue > ALPHA


@pytest.mark.parametrize("capacity", [4, 6, 40])
@WEIGHTED
def test_weighted_draws_depend_on_the_live_weights_only(kind, capacity):
    """Canonical draws: the same live weights, reached by different histories (including
    switches between thinning and bisection), draw the same slots from the same uniforms."""
    a = kind(np.random.default_rng(8), capacity)
    a.reset([1.0, 2.0, 3.0, 0.5])
    list(islice(a.stream, 700))
    for k, x in [(0, 90.0), (3, 0.01), (0, 1.0), (3, 4.0), (1, 0.2)]:
        a.set(k, x)
    b = kind(np.random.default_rng(8), capacity)
    b.reset([1.0, 0.2, 3.0, 4.0])
    b.load(a.state())
    assert list(islice(a.stream, 3000)) == list(islice(b.stream, 3000))


@pytest.mark.parametrize("weights", [[1.0, 2.0, 3.0, 4.0], [100.0, 1.0, 2.0, 3.0]])
@pytest.mark.parametrize("k", [0, 1, 300, BLOCK - 1, 1700])
@WEIGHTED
def test_weighted_draws_resume_exactly(kind, weights, k):
    def build(seed):
        s = kind(np.random.default_rng(seed), 4)
        s.reset(list(weights))
        return s

    def script(s, start, n):
        """Draws, with weight changes and deaths at fixed positions."""
        out = []
        for i in range(start, start + n):
            if i == 500:
                s.set(2, 9.0)
            if i == 900:
                s.remove(1)
            if i == 1300:
                s.set(0, 0.25)
            out.append(next(s.stream))
        return out

    full = script(build(6), 0, 2500)
    s = build(6)
    head = script(s, 0, k)
    restored = build(123)
    restored.reset(list(s.w))
    restored.load(round_trip(s.state()))
    assert head + script(restored, k, 2500 - k) == full


@WEIGHTED
def test_weighted_stream_ends_when_stopped(kind):
    s = kind(np.random.default_rng(0), 2)
    s.reset([1.0, 2.0])
    next(s.stream)
    s.stop()
    assert list(s.stream) == []


# ------------------------------------------------------------- the docstrings' references
#
# Each draw stream's docstring gives a pure-Python reference: the same numbers from the same
# uniforms. These tests run the code of the docstring itself against the stream, over many
# random weights and histories of weight changes (hypothesis).

REFERENCE_SETTINGS = settings(max_examples=40, deadline=None)


def docstring_reference(obj):
    """The function defined in the first ``::`` code block of ``obj``'s docstring."""
    lines = inspect.getdoc(obj).splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith("::")) + 1
    block = []
    for line in lines[start:]:
        if line and not line.startswith(" "):
            break
        block.append(line)
    namespace = {
        "BLOCK": BLOCK,
        "MAX_TRIALS": MAX_TRIALS,
        "bisect": bisect,
        "itertools": itertools,
        "math": math,
    }
    exec(textwrap.dedent("\n".join(block)), namespace)
    functions = [v for v in namespace.values() if inspect.isfunction(v)]
    assert len(functions) == 1
    return functions[0]


uniforms_reference = docstring_reference(Uniforms)
mapped_reference = docstring_reference(Mapped)
index_reference = docstring_reference(indices)
search_reference = docstring_reference(searched)
equal_slot_reference = docstring_reference(EqualSlotDraws)
weighted_slot_reference = docstring_reference(WeightedSlotDraws)
tree_slot_reference = docstring_reference(TreeSlotDraws)

SEEDS = st.integers(0, 2**32 - 1)


@REFERENCE_SETTINGS
@given(seed=SEEDS, n=st.integers(0, 3 * BLOCK))
def test_uniforms_match_their_reference(seed, n):
    u = Uniforms(np.random.default_rng(seed))  # (its stream ends when it is dropped)
    reference = uniforms_reference(np.random.default_rng(seed))
    assert list(islice(u.stream, n)) == list(islice(reference, n))


@REFERENCE_SETTINGS
@given(seed=SEEDS, n=st.integers(1, 50), changes=st.lists(st.integers(1, 50), max_size=4))
def test_indices_match_their_reference_through_remaps(seed, n, changes):
    """Mapped(indices(n)) is mapped(gen, indices(n)); after remap(indices(m)), every later
    uniform gives index(u, m): none is skipped or used twice."""
    gen = np.random.default_rng(seed)
    m = Mapped(gen, indices(n))
    fixed = mapped_reference(np.random.default_rng(seed), indices(n))
    us = uniforms_reference(np.random.default_rng(seed))
    got, expected = [], []
    for step, size in enumerate([n, *changes]):
        if step:
            m.remap(indices(size))
        length = 700 * (step + 1)
        got += islice(m.stream, length)
        expected += [index_reference(u, size) for u in islice(us, length)]
    assert got == expected
    again = Mapped(np.random.default_rng(seed), indices(n))
    assert list(islice(again.stream, 2500)) == list(islice(fixed, 2500))


@REFERENCE_SETTINGS
@given(
    seed=SEEDS,
    pmf=st.lists(st.floats(0.01, 1.0), min_size=1, max_size=10),
    scale=st.floats(0.5, 2.0),
    with_values=st.booleans(),
)
def test_searched_matches_its_reference(seed, pmf, scale, with_values):
    table = np.cumsum(pmf)
    table[-1] = math.inf
    values = np.arange(len(table)) * 3 + 1 if with_values else None
    m = Mapped(np.random.default_rng(seed), searched(table, scale, values))
    us = uniforms_reference(np.random.default_rng(seed))
    expected = [search_reference(u, table, scale, values) for u in islice(us, 2000)]
    assert list(islice(m.stream, 2000)) == expected


def slot_histories(max_slots):
    """Live weights, a capacity, and changes at draw positions: (position, k, weight) sets
    slot k's weight, (position, k, None) removes slot k (never the last live one)."""

    @st.composite
    def build(draw):
        weights = draw(
            st.lists(
                st.one_of(st.floats(0.05, 10.0), st.sampled_from([1.0, 50.0, 1e-3])),
                min_size=1,
                max_size=max_slots,
            )
        )
        capacity = len(weights) + draw(st.integers(0, 6))
        positions = sorted(draw(st.lists(st.integers(0, 2500), max_size=8)))
        changes, live = [], len(weights)
        for position in positions:
            k = draw(st.integers(0, 10**6))
            if live > 1 and draw(st.booleans()):
                changes.append((position, k % live, None))
                live -= 1
            else:
                changes.append((position, k % live, draw(st.floats(0.05, 10.0))))
        return weights, capacity, changes

    return build()


def run_against_reference(draws, reference, weights, changes, seed, n=3000):
    """The stream's draws and the reference's, with the same changes at the same draws."""
    draws.reset(list(weights))
    us = uniforms_reference(np.random.default_rng(seed))
    w = list(weights)
    got, expected = [], []
    pending = list(changes)
    for position in range(n):
        while pending and pending[0][0] == position:
            _, k, weight = pending.pop(0)
            if weight is None:
                draws.remove(k)
                w[k] = w[-1]
                w.pop()
            else:
                draws.set(k, weight)
                w[k] = weight
        got.append(next(draws.stream))
        expected.append(reference(us, w))
    assert draws.w == w
    return got, expected


@REFERENCE_SETTINGS
@given(seed=SEEDS, history=slot_histories(12))
def test_weighted_slot_draws_match_their_reference(seed, history):
    weights, capacity, changes = history
    draws = WeightedSlotDraws(np.random.default_rng(seed), capacity)
    got, expected = run_against_reference(
        draws,
        lambda us, w: weighted_slot_reference(us, w, capacity),
        weights,
        changes,
        seed,
    )
    assert got == expected


@REFERENCE_SETTINGS
@given(
    seed=SEEDS,
    n=st.integers(1, 40),
    removals=st.lists(st.tuples(st.integers(0, 2500), st.integers(0, 10**6)), max_size=6),
)
def test_equal_slot_draws_match_their_reference(seed, n, removals):
    changes, live = [], n
    for position, k in sorted(removals):
        if live > 1:
            changes.append((position, k % live, None))
            live -= 1
    draws = EqualSlotDraws(np.random.default_rng(seed))
    got, expected = run_against_reference(draws, equal_slot_reference, [2.5] * n, changes, seed)
    assert got == expected


@REFERENCE_SETTINGS
@given(seed=SEEDS, history=slot_histories(12), adds=st.lists(st.integers(0, 2500), max_size=4))
def test_tree_slot_draws_match_their_reference(seed, history, adds):
    """TreeSlotDraws through changes, removals and slots added (beyond its capacity too): every
    draw is its docstring's reference for the live weights and the capacity at that draw."""
    weights, capacity, changes = history
    adding = [(position, -1, 0.5 + position % 7) for position in adds]
    events = sorted(changes + adding, key=lambda event: event[0])
    draws = TreeSlotDraws(np.random.default_rng(seed), capacity)
    draws.reset(list(weights))
    us = uniforms_reference(np.random.default_rng(seed))
    w, got, expected = list(weights), [], []
    for position in range(3000):
        while events and events[0][0] == position:
            _, k, weight = events.pop(0)
            if k == -1:
                draws.add(weight)
                w.append(weight)
                capacity = max(capacity, len(w))
            elif weight is None:
                k %= len(w)
                if len(w) > 1:
                    draws.remove(k)
                    w[k] = w[-1]
                    w.pop()
            else:
                k %= len(w)
                draws.set(k, weight)
                w[k] = weight
        got.append(next(draws.stream))
        expected.append(tree_slot_reference(us, w, capacity))
    assert draws.w == w and draws.capacity == capacity
    assert got == expected


@pytest.mark.parametrize("n", [1, 2, 3, 100, 1000])
def test_tree_sums_are_those_of_a_fresh_build_after_any_changes(n):
    """The trees depend on the live weights alone: after many single changes, removals and
    additions, the sums, maxima, total and top equal those of a tree built afresh."""
    rng = np.random.default_rng(n)
    a = TreeSlotDraws(np.random.default_rng(0), n)
    a.reset(rng.random(n).tolist())
    for _ in range(3 * n):
        r = rng.random()
        if r < 0.2 and len(a.w) > 1:
            a.remove(int(rng.integers(len(a.w))))
        elif r < 0.3:
            a.add(float(rng.choice([1e-9, 1.0, 1e9])))
        else:
            a.set(int(rng.integers(len(a.w))), float(rng.random() * 10.0 ** rng.integers(-6, 7)))
    b = TreeSlotDraws(np.random.default_rng(0), a.capacity)
    b.reset(list(a.w))
    assert a.leaves == b.leaves
    assert a.sums.tolist() == b.sums.tolist() and a.tops == b.tops
    assert (a.total, a.top, a.thinning) == (b.total, b.top, b.thinning)


def test_tree_slot_draws_switch_between_equal_and_weighted_ways():
    """set_equal switches the way at the same position in the block: equal weights draw a
    uniform index, unequal ones follow the weights (P(false fail) <= 1e-7, chi-square)."""
    s = TreeSlotDraws(np.random.default_rng(3), 4, equal=True)
    s.reset([1.0] * 4)
    head = list(islice(s.stream, 100))
    assert set(head) <= set(range(4))
    s.set(0, 7.0)
    s.set_equal(False)
    weights = [7.0, 1.0, 1.0, 1.0]
    n_draws = 3000
    counts = weighted_counts(s, n_draws)
    assert stats.chisquare(counts, np.array(weights) / 10 * n_draws).pvalue > ALPHA
    s.set(0, 1.0)
    s.set_equal(True)
    assert s.equal and s.total == 4.0
