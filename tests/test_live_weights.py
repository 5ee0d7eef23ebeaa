"""Weights that change while a StochasticMux or ShuffledMux runs (pescador.mux._live).

``it.set_weights(vector)``, ``it.set_weight(i, w)`` and a :class:`~pescador.WeightSchedule` as
``weights``: shares follow each vector, a resumed iteration continues exactly across changes,
invalid weights raise ``PescadorError`` and leave the iteration as it was, and the states of
iterations whose weights never changed are as before (no new keys).

Statistical tests state the probability that a correct library fails them:

* ShuffledMux draws each item independently, in proportion to the weights in force: before and
  after a change, chi-square at ``ALPHA`` per segment.
* StochasticMux (``with_replacement``, constant budgets ``c``): after the change, the
  activations opened draw their streamers i.i.d. in proportion to the new weights, each for
  ``c`` items. Of ``N`` items delivered after the change, those of streamer ``i`` are ``c``
  times its activations opened after the change, up to ``2 n_active c`` (what the activations
  running at the change still deliver, and the unfinished ones); Freedman's inequality over the
  openings (``freedman`` of ``test_mux_stats``) bounds the activations' counts at ``ALPHA``
  split over the streamers.
"""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
from scipy import stats
from test_mux_stats import freedman

import pescador
from conftest import endless, letters
from pescador import (
    ChainMux,
    PescadorError,
    RoundRobinMux,
    ShuffledMux,
    StochasticMux,
    Streamer,
    WeightSchedule,
)

ALPHA = 1e-7
NEW_KEYS = {"weights", "sched", "cap", "proposing"}


def endless_streams(n):
    return [Streamer(endless, i) for i in range(n)]


def take(it, n):
    return [next(it) for _ in range(n)]


def round_trip(state):
    return json.loads(json.dumps(state))


def counts(items, n):
    return np.bincount(np.asarray(items, dtype=np.int64), minlength=n)


# --------------------------------------------------------------------------- shares


@pytest.mark.parametrize("how", ["vector", "one"])
def test_shuffled_shares_follow_each_vector(how):
    """ShuffledMux: i.i.d. draws by the weights in force. P(false fail) <= 1e-7 (chi-square
    per segment at 5e-8, every expected count in the thousands)."""
    mux = ShuffledMux(endless_streams(4), weights=[1, 2, 3, 4], random_state=5)
    it = mux.iterate()
    before = counts(take(it, 40_000), 4)
    if how == "vector":
        it.set_weights([4, 0, 1, 5])
        after_w = [4, 0, 1, 5]
    else:
        it.set_weight(3, 10)
        after_w = [1, 2, 3, 10]
    after = counts(take(it, 40_000), 4)
    assert stats.chisquare(before, np.array([1, 2, 3, 4]) / 10 * 40_000).pvalue > ALPHA / 2
    positive = [i for i in range(4) if after_w[i]]
    expected = np.array(after_w)[positive] / sum(after_w) * 40_000
    assert stats.chisquare(after[positive], expected).pvalue > ALPHA / 2
    assert all(after[i] == 0 for i in range(4) if not after_w[i])


@pytest.mark.parametrize("how", ["vector", "one", "before-start"])
def test_stochastic_shares_follow_the_new_vector(how):
    """StochasticMux, with_replacement, constant budgets: the item shares after a change follow
    the new weights. P(false fail) <= 1e-7 (Freedman; module docstring)."""
    n, n_active, c = 5, 3, 4
    old_w, new_w = [1, 1, 1, 1, 1], [6, 0, 1, 2, 1]
    mux = StochasticMux(
        endless_streams(n), n_active, c, weights=old_w, dist="constant", random_state=9
    )
    it = mux.iterate()
    if how == "before-start":
        it.set_weights(new_w)
    else:
        take(it, 5000)
        if how == "vector":
            it.set_weights(new_w)
        else:
            it.set_weight(1, 0)
            it.set_weight(0, 6)
            it.set_weight(3, 2)
    assert it.weights.tolist() == (np.array(new_w) / 10).tolist()
    total = 60_000
    got = counts(take(it, total), n)
    pi = np.array(new_w) / sum(new_w)
    openings = total // c + n_active
    for i in range(n):
        t = freedman(openings, pi[i] * (1 - pi[i]), 1.0, ALPHA / n)
        bound = c * t + 2 * n_active * c * (1 + pi[i])
        assert abs(got[i] - pi[i] * total) <= bound, (i, got / total, pi)
    assert got[1] == 0 or how != "before-start"


def test_a_streamer_set_to_zero_is_closed_and_never_drawn_again():
    for mode in ("with_replacement", "single_active"):
        mux = StochasticMux(endless_streams(4), 3, 50, mode=mode, random_state=1)
        it = mux.iterate()
        take(it, 10)
        it.set_weights([0, 1, 1, 1])
        assert 0 not in it.policy.table.streamer_ids[: it.policy.slots.n_live]
        assert 0 not in take(it, 3000)
        it.set_weight(0, 5.0)  # a candidate again
        assert 0 in take(it, 3000)


def test_shuffled_zero_weight_closes_the_slot_and_a_positive_one_opens_it():
    closed = []

    def tracked(i):
        try:
            yield from endless(i)
        finally:
            closed.append(i)

    mux = ShuffledMux([Streamer(tracked, i) for i in range(3)], weights=[1, 0, 1], random_state=2)
    it = mux.iterate()
    assert set(take(it, 200)) == {0, 2}
    it.set_weights([0, 1, 1])
    assert closed == [0]
    assert set(take(it, 200)) == {1, 2}


def test_shuffled_dropped_streamer_stays_dropped():
    """A streamer that came up empty is dropped for the iteration; a change of its weight does
    not revive it (unless it went through 0, which closes its slot: docs)."""
    streams = [Streamer([]), Streamer(endless, 1), Streamer(endless, 2)]
    it = ShuffledMux(streams, random_state=3).iterate()
    take(it, 100)
    it.set_weights([5, 1, 1])
    assert set(take(it, 300)) == {1, 2}


def test_schedule_shares_follow_each_evaluation():
    """ShuffledMux with a schedule: each block of ``every`` items follows its weights (chi-square
    per block at 1e-7 / 4)."""

    def schedule(n):
        return [[1, 1, 1], [1, 8, 1], [0, 1, 4], [3, 3, 3]][n // 5000]

    mux = ShuffledMux(endless_streams(3), weights=WeightSchedule(schedule, 5000), random_state=4)
    items = list(mux.iterate(max_iter=20_000))
    for k in range(4):
        w = np.array(schedule(k * 5000), dtype=float)
        got = counts(items[k * 5000 : (k + 1) * 5000], 3)
        positive = w > 0
        assert np.all(got[~positive] == 0)
        expected = w[positive] / w.sum() * 5000
        assert stats.chisquare(got[positive], expected).pvalue > ALPHA / 4


# --------------------------------------------------------------------------- exact resume

MUXES = {
    "stochastic-wr-binomial": lambda w: StochasticMux(
        endless_streams(6), 3, 5, weights=w, random_state=11
    ),
    "stochastic-single-poisson": lambda w: StochasticMux(
        endless_streams(6), 3, 5, weights=w, mode="single_active", dist="poisson", random_state=12
    ),
    "stochastic-wr-constant-finite": lambda w: StochasticMux(
        [Streamer(letters, c, 9) for c in "abcdef"],
        2,
        3.5,
        weights=w,
        dist="constant",
        random_state=13,
    ),
    "stochastic-unlimited": lambda w: StochasticMux(
        [Streamer(letters, c, 20) for c in "abcdef"], 2, None, weights=w, random_state=14
    ),
    "shuffled": lambda w: ShuffledMux(endless_streams(6), weights=w, random_state=15),
    "shuffled-finite": lambda w: ShuffledMux(
        [Streamer(letters, c, 7) for c in "abcdef"], weights=w, random_state=16
    ),
}

#: Changes, at item positions: a full vector, one streamer, equal weights again, zeros.
CHANGES = [
    (40, ("all", [1, 5, 0, 2, 2, 1])),
    (90, ("one", 2, 7.5)),
    (91, ("one", 0, 0.0)),
    (150, ("all", [1, 1, 1, 1, 1, 1])),
    (151, ("one", 4, 3.0)),
    (230, ("all", [0, 0, 3, 0, 1, 0])),
]


def apply(it, change):
    if change[0] == "all":
        it.set_weights(change[1])
    else:
        it.set_weight(change[1], change[2])


def run(it, start, stop):
    """Items ``start .. stop - 1`` of the scripted run (changes applied at their positions)."""
    out = []
    for position in range(start, stop):
        for at, change in CHANGES:
            if at == position:
                apply(it, change)
        try:
            out.append(next(it))
        except StopIteration:
            break
    return out


@pytest.mark.parametrize("name", sorted(MUXES))
@pytest.mark.parametrize("cut", [0, 39, 40, 41, 90, 91, 92, 151, 200, 231])
def test_resume_across_changes_is_exact(name, cut):
    full = run(MUXES[name]([1, 2, 3, 1, 1, 1]).iterate(), 0, 300)
    it = MUXES[name]([1, 2, 3, 1, 1, 1]).iterate()
    head = run(it, 0, cut)
    state = round_trip(it.state_dict())
    resumed = MUXES[name]([1, 2, 3, 1, 1, 1]).iterate(state=state)
    assert head + run(resumed, cut, 300) == full


@pytest.mark.parametrize("name", sorted(MUXES))
def test_changing_weights_between_save_and_resume(name):
    """Resume, then set the weights: the same as changing them at that point of the run."""
    mux = MUXES[name](None)
    it = mux.iterate()
    take(it, 60)
    state = round_trip(it.state_dict())
    it.set_weights([3, 0, 1, 1, 2, 1])
    expected = [next(it) for _ in range(100)]
    resumed = mux.iterate(state=state)
    resumed.set_weights([3, 0, 1, 1, 2, 1])  # before its first item
    assert take(resumed, 100) == expected


def test_weights_set_before_the_start_give_its_stationary_start():
    mux = StochasticMux(endless_streams(4), 2, 6, random_state=3)
    it = mux.iterate()
    it.set_weights([5, 1, 1, 0])
    assert it.weights.tolist() == [5 / 7, 1 / 7, 1 / 7, 0]
    items = take(it, 200)
    assert 3 not in items
    reference = StochasticMux(endless_streams(4), 2, 6, weights=[5, 1, 1, 0], random_state=3)
    assert items == take(reference.iterate(), 200)  # the same start: a function of the seed
    state = it.state_dict()
    assert "weights" in state  # they differ from the mux's
    assert take(mux.iterate(state=round_trip(state)), 50) == take(it, 50)


def test_schedule_resume_is_exact_at_every_boundary():
    def schedule(n):
        return [1 + (n // 100) % 3, 1, 0 if n % 300 == 200 else 2, 1]

    for mux in (
        StochasticMux(
            endless_streams(4), 2, 4, weights=WeightSchedule(schedule, 100), random_state=1
        ),
        ShuffledMux(endless_streams(4), weights=WeightSchedule(schedule, 100), random_state=1),
    ):
        full = list(mux.iterate(max_iter=700))
        for cut in [0, 1, 99, 100, 101, 299, 300, 450, 699]:
            it = mux.iterate(max_iter=700)
            head = take(it, cut)
            state = round_trip(it.state_dict())
            assert "weights" not in state and state["sched"] == (max(cut - 1, 0)) // 100
            assert head + list(mux.iterate(max_iter=700, state=state)) == full, cut


def test_a_schedule_is_evaluated_every_every_items_from_zero():
    calls = []

    def schedule(n):
        calls.append(n)
        return [1, 1]

    mux = ShuffledMux(endless_streams(2), weights=WeightSchedule(schedule, 250), random_state=0)
    assert calls == [0]  # when the mux is built (an iteration starts with those weights)
    list(mux.iterate(max_iter=1000))
    assert calls == [0, 250, 500, 750]  # (the last block ends the iteration)
    np.testing.assert_allclose(mux.weights, [0.5, 0.5])
    assert mux.weight_schedule.every == 250


def test_a_plain_function_is_a_schedule_every_default_items():
    mux = ShuffledMux(endless_streams(2), weights=lambda n: [1, 0] if n < 1000 else [0, 1])
    assert mux.weight_schedule.every == 1000
    items = list(mux.iterate(max_iter=2000))
    assert set(items[:1000]) == {0} and set(items[1000:]) == {1}


# --------------------------------------------------------------------------- invalid weights

BAD = [
    [1, 2, 3],  # wrong length
    [1, -1, 1, 1],
    [1, math.nan, 1, 1],
    [1, math.inf, 1, 1],
    [0, 0, 0, 0],
    ["a", "b", "c", "d"],
    [[1, 1, 1, 1]],
]


@pytest.mark.parametrize("bad", BAD, ids=str)
@pytest.mark.parametrize("kind", ["stochastic", "shuffled"])
def test_invalid_vectors_raise_and_leave_the_stream_untouched(bad, kind):
    def build():
        if kind == "shuffled":
            return ShuffledMux(endless_streams(4), weights=[1, 2, 3, 4], random_state=2)
        return StochasticMux(endless_streams(4), 2, 3, weights=[1, 2, 3, 4], random_state=2)

    expected = take(build().iterate(), 300)
    it = build().iterate()
    head = take(it, 100)
    before = it.state_dict()
    with pytest.raises(PescadorError, match="weights"):
        it.set_weights(bad)
    assert it.state_dict() == before
    assert head + take(it, 200) == expected


@pytest.mark.parametrize(
    ("i", "weight", "match"),
    [
        (4, 1.0, "range"),
        (-5, 1.0, "range"),
        (1.0, 1.0, "range"),
        (0, -1.0, "non-negative"),
        (0, math.nan, "finite"),
        (0, "2", "number"),
        (0, True, "number"),
    ],
)
def test_invalid_single_weights_raise_and_leave_the_stream_untouched(i, weight, match):
    mux = StochasticMux(endless_streams(4), 2, 3, weights=[1, 2, 3, 4], random_state=2)
    expected = take(mux.iterate(), 300)
    it = mux.iterate()
    head = take(it, 100)
    with pytest.raises(PescadorError, match=match):
        it.set_weight(i, weight)
    assert head + take(it, 200) == expected


def test_the_last_positive_weight_cannot_go():
    it = StochasticMux(endless_streams(3), 1, 3, weights=[0, 1, 0], random_state=0).iterate()
    take(it, 5)
    with pytest.raises(PescadorError, match="positive"):
        it.set_weight(1, 0)
    it.set_weight(1, 2.0)  # fine
    assert set(take(it, 20)) == {1}


def test_weights_that_cannot_change():
    streams = endless_streams(3)
    for mux in (RoundRobinMux(streams), ChainMux([Streamer("ab")])):
        it = mux.iterate()
        with pytest.raises(PescadorError, match="no weights"):
            it.set_weights([1, 1, 1])
        with pytest.raises(PescadorError, match="no weights"):
            it.set_weight(0, 1.0)
    exhaustive = StochasticMux(streams, 2, 3, mode="exhaustive").iterate()
    with pytest.raises(PescadorError, match="exhaustive"):
        exhaustive.set_weights([1, 2, 3])
    with pytest.raises(PescadorError, match="exhaustive"):
        StochasticMux(streams, 2, 3, mode="exhaustive", weights=lambda n: [1, 1, 1])
    scheduled = ShuffledMux(streams, weights=WeightSchedule(lambda n: [1, 1, 1], 10)).iterate()
    with pytest.raises(PescadorError, match="schedule"):
        scheduled.set_weights([1, 2, 3])
    with pytest.raises(PescadorError, match="schedule"):
        scheduled.set_weight(0, 2.0)


def test_invalid_schedules():
    streams = endless_streams(3)
    with pytest.raises(PescadorError, match="every"):
        WeightSchedule(lambda n: [1, 1, 1], every=0)
    with pytest.raises(PescadorError, match="callable"):
        WeightSchedule([1, 1, 1])
    with pytest.raises(PescadorError, match=r"weights\(0\)"):
        ShuffledMux(streams, weights=lambda n: [1, 1])

    def late(n):
        return [1, 1, 1] if n < 20 else [1, -1, 1]

    it = ShuffledMux(streams, weights=WeightSchedule(late, 10), random_state=0).iterate()
    take(it, 20)
    before = it.state_dict()
    with pytest.raises(PescadorError, match=r"weights\(20\)"):
        next(it)
    assert it.state_dict() == before  # untouched: nothing drawn, the weights as they were
    with pytest.raises(PescadorError, match=r"weights\(20\)"):
        next(it)  # evaluated again

    fixed = [False]

    def recovers(n):
        return [1, 1, 1] if n < 20 or fixed[0] else [1, -1, 1]

    it = ShuffledMux(streams, weights=WeightSchedule(recovers, 10), random_state=0).iterate()
    expected = list(ShuffledMux(streams, weights=[1, 1, 1], random_state=0).iterate(max_iter=60))
    head = take(it, 20)
    with pytest.raises(PescadorError):
        next(it)
    fixed[0] = True
    assert head + take(it, 40) == expected


# --------------------------------------------------------------------------- states


@pytest.mark.parametrize("name", sorted(MUXES))
def test_unchanged_iterations_have_no_new_state_keys(name):
    it = MUXES[name]([1, 2, 3, 1, 1, 0]).iterate()
    take(it, 50)
    assert not NEW_KEYS & set(it.state_dict())


def test_state_holds_the_weights_in_force_exactly():
    it = StochasticMux(endless_streams(3), 2, 3, random_state=0).iterate()
    take(it, 10)
    weights = [0.1, 1 / 3, 2.0**-40]
    it.set_weights(weights)
    state = it.state_dict()
    resumed = StochasticMux(endless_streams(3), 2, 3, random_state=0).iterate(state=state)
    assert resumed.weights.tolist() == it.weights.tolist()
    assert (np.array(weights) / sum(weights)).tolist() == it.weights.tolist()


def test_a_corrupt_weights_entry_is_a_state_error():
    it = StochasticMux(endless_streams(3), 2, 3, random_state=0).iterate()
    take(it, 10)
    it.set_weights([1, 2, 3])
    state = it.state_dict()
    state["weights"] = "not base64!"
    with pytest.raises(pescador.StateError):
        next(StochasticMux(endless_streams(3), 2, 3, random_state=0).iterate(state=state))


def test_nested_muxes_change_the_iterator_they_are_called_on():
    inner = StochasticMux(endless_streams(3), 2, 3, random_state=1)
    outer = ShuffledMux([inner, Streamer(endless, "x")], random_state=2)
    it = outer.iterate()
    take(it, 20)
    it.set_weights([0, 1])  # the outer mux's own streamers: the inner mux, and "x"
    assert set(take(it, 100)) == {"x"}


def test_schedules_pickle_and_run_in_workers():
    mux = StochasticMux(endless_streams(4), 2, 4, weights=WeightSchedule(halves, 50))
    copy = pickle.loads(pickle.dumps(mux))
    assert copy.weight_schedule.every == 50
    items = list(pescador.ParallelStreamer(copy, 2, random_state=0).iterate(max_iter=400))
    assert len(items) == 400 and set(items) <= {0, 1, 2, 3}


def halves(n):
    """First streamers 0 and 1, then 2 and 3 (module-level: it pickles)."""
    return [1, 1, 0, 0] if n < 100 else [0, 0, 1, 1]


def test_the_readme_example_of_changing_weights():
    """The README's tour (run as written in test_readme) shows a schedule and live changes."""
    from test_readme import README, tour_code

    namespace: dict[str, object] = {"__name__": "readme_tour"}
    exec(compile(tour_code(), str(README), "exec"), namespace)
    curriculum = namespace["curriculum"]
    assert curriculum.weight_schedule.every == 1000
    anneal = namespace["anneal"]
    assert anneal(0)[0] == 10 * anneal(0)[999] and np.all(anneal(20_000) == 1.0)
    assert len(namespace["early"]) == 100
    running = namespace["running"]
    np.testing.assert_allclose(running.weights, np.full(1000, 1 / 1000))
    running.close()


# --------------------------------------------------------------------------- random scripts


def finite(i, n):
    for k in range(n):
        yield (i, k)


def random_mux(kind, seed):
    rng = np.random.default_rng(seed)
    streams = [Streamer(finite, i, n) for i, n in enumerate([0, 3, 7, 50, 2, 11, 0, 30])]
    weights = [1, 2, 0, 3, 1, 1, 1, 2]
    if kind == "shuffled":
        return ShuffledMux(streams, weights=weights, random_state=seed)
    return StochasticMux(
        streams,
        int(rng.integers(1, 5)),
        [None, 2.5, 4, 9][rng.integers(4)],
        weights=weights,
        mode=["with_replacement", "single_active"][rng.integers(2)],
        dist=["binomial", "constant", "poisson"][rng.integers(3)],
        prune_empty_streams=bool(rng.integers(2)),
        random_state=seed,
    )


def random_changes(seed, n):
    rng = np.random.default_rng(seed + 1000)
    changes: dict[int, list] = {}
    for _ in range(int(rng.integers(1, 9))):
        position = int(rng.integers(0, n))
        if rng.random() < 0.5:
            w = rng.choice([0, 0, 1, 2, 0.5, 3.7], size=8)
            w[3] += not w.any()
            changes.setdefault(position, []).append(("all", w.tolist()))
        else:
            change = ("one", int(rng.integers(8)), float(rng.choice([0, 1, 2.5, 6])))
            changes.setdefault(position, []).append(change)
    return changes


def scripted(it, changes, start, stop):
    out = []
    for position in range(start, stop):
        for change in changes.get(position, []):
            try:
                apply(it, change)
            except PescadorError as exc:  # (the last positive weight set to 0)
                out.append(("refused", str(exc)))
        try:
            out.append(next(it))
        except StopIteration:
            break
    return out


@pytest.mark.parametrize("kind", ["stochastic", "shuffled"])
@pytest.mark.parametrize("seed", range(25))
def test_random_changes_resume_exactly(kind, seed):
    """Random modes, dists, pruning, empty and finite streamers, random changes (vectors and
    single weights, zeros included), a checkpoint at a random item: resumed, the same items."""
    changes = random_changes(seed, 300)
    full = scripted(random_mux(kind, seed).iterate(), changes, 0, 300)
    cut = int(np.random.default_rng(seed).integers(0, len(full) + 1))
    it = random_mux(kind, seed).iterate()
    head = scripted(it, changes, 0, cut)
    resumed = random_mux(kind, seed).iterate(state=round_trip(it.state_dict()))
    assert head + scripted(resumed, changes, cut, 300) == full


def test_the_design_documents_example_runs():
    """docs/design.md, "Weights that change": its code block runs as written."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "design.md").read_text()
    section = text.split("### Weights that change", 1)[1].split("\n### ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    namespace: dict[str, object] = {"__name__": "design_example"}
    exec(compile(code, "docs/design.md", "exec"), namespace)
    assert namespace["state"]["weights"]


@pytest.mark.parametrize("seed", range(20))
def test_shuffled_set_weight_is_set_weights_with_one_value_changed(seed):
    """ShuffledMux's O(log n) ``set_weight`` (a slot's weight changed in the draws' trees, a slot
    retired or added) gives the same items as ``set_weights`` with the whole vector, through
    random single changes (zeros, new values, equal weights again), finite and empty streamers
    and the way of drawing switching; and a state taken after them resumes exactly."""
    rng = np.random.default_rng(seed)
    n = 40
    lengths = rng.choice([0, 5, 60, 10**6], size=n).tolist()
    weights = rng.choice([0.0, 1.0, 1.0, 2.0, 30.0], size=n)
    weights[0] = 1.0

    def mux():
        streams = [Streamer(finite, i, m) for i, m in enumerate(lengths)]
        return ShuffledMux(streams, weights=weights, random_state=seed)

    changes: dict[int, tuple[int, float]] = {}
    for position in rng.integers(0, 1500, size=60).tolist():
        changes[position] = (int(rng.integers(n)), float(rng.choice([0.0, 1.0, 0.5, 7.0, 80.0])))

    def scripted_run(it, vector, start, stop, w):
        out = []
        for position in range(start, stop):
            if position in changes:
                i, x = changes[position]
                before = w.copy()
                w[i] = x
                try:
                    it.set_weights(w.copy()) if vector else it.set_weight(i, x)
                except PescadorError:  # (the last positive weight set to 0)
                    w[:] = before
                    out.append("refused")
            try:
                out.append(next(it))
            except StopIteration:
                break
        return out

    by_vector = scripted_run(mux().iterate(), True, 0, 1500, weights.copy())
    w = weights.copy()
    it = mux().iterate()
    head = scripted_run(it, False, 0, 1000, w)
    assert head == by_vector[: len(head)]
    resumed = mux().iterate(state=round_trip(it.state_dict()))
    assert head + scripted_run(resumed, False, 1000, 1500, w) == by_vector
