"""The muxes' selection policies, driven through their contract without streams.

pescador/mux/_policies.py and pescador/mux/_stochastic.py, on the contract of
pescador/mux/_loop.py. Fakes stand in for everything but the policy: :class:`FakeStream` for a
streamer (scripted items per activation; its child counts what it delivered and has a
checkpoint), and :class:`ScriptedDraws` for the block-drawn slot draws (it yields scripted slot
indices and keeps the live slots' weights as the real draws do). The tests call the contract's
entry points (``order``, ``exhausted``, ``spent``, ``state``) as the mux loop does, or run the
loop itself (``mux_loop``) over the fakes. Nothing here is random except StochasticMux's
candidate pool, and the tests only assert what holds for every draw of it.
"""

from __future__ import annotations

import json
from itertools import islice

import pytest

from pescador._seeds import Seed
from pescador.mux._budgets import UNLIMITED
from pescador.mux._loop import NOTHING, mux_loop
from pescador.mux._policies import ChainPolicy, RoundRobinPolicy, ShuffledPolicy
from pescador.mux._slots import SlotTable
from pescador.mux._stochastic import StochasticPolicy

SEED = Seed(7)


class FakeChild:
    """A child iterator: the items of one activation, counted as they are delivered."""

    def __init__(self, items, start):
        self.items = items
        self.items_delivered = start
        self.closed = False
        self.iterator = self._deliver()

    def _deliver(self):
        for item in self.items[self.items_delivered :]:
            self.items_delivered += 1
            yield item

    def __iter__(self):
        return self.iterator

    def close(self):
        self.closed = True
        self.iterator.close()

    def _state_dict(self):
        return {"n": self.items_delivered}


class FakeStream:
    """Stands in for a streamer. As with a real one, an activation depends on its seed alone:
    the mux's activation ``n`` (seed ``(SEED, n)``) yields ``(name, n, j)`` for ``j`` in
    ``range(length(n))``. Records the activations it was opened for."""

    def __init__(self, name, length):
        self.name = name
        self.length = length if callable(length) else lambda n: length
        self.opened = []

    def _open_child(self, seed, state=None):
        parent, n = seed
        assert parent == SEED
        self.opened.append(n)
        items = [(self.name, n, j) for j in range(self.length(n))]
        child = FakeChild(items, 0 if state is None else state["n"])
        return child, child.iterator

    def __repr__(self):
        return f"FakeStream({self.name!r})"


class ScriptedDraws:
    """Slot draws that yield the scripted slot indices (modulo the live slots: like the real
    draws, they never propose a retired slot), then end; ``w`` and ``total`` follow the live
    slots' weights as in the real draws."""

    def __init__(self, script):
        self.script = list(script)
        self.position = 0
        self.stopped = False
        self.w = []
        self.total = 0.0
        self.stream = self._draw()

    def _draw(self):
        while not self.stopped and self.position < len(self.script):
            self.position += 1
            yield self.script[self.position - 1] % len(self.w)

    def reset(self, weights):
        self.w = weights
        self.total = sum(weights)

    def set(self, k, weight):
        self.w[k] = weight
        self.total = sum(self.w)

    def remove(self, k):
        self.w[k] = self.w[-1]
        self.w.pop()
        self.total = sum(self.w)

    def stop(self):
        self.stopped = True

    def state(self):
        return self.position

    def load(self, position, where="state", path="sel"):
        self.position = position


def table_of(*streams):
    return SlotTable("mux", list(streams), SEED)


def pull(policy, k):
    """What the loop does with a draw of slot ``k``: an item, or NOTHING."""
    table = policy.table
    try:
        item = next(table.sources[k])
    except StopIteration:
        return policy.exhausted(k)
    table.left[k] -= 1
    if not table.left[k]:
        policy.spent(k)
    return item


def round_trip(state):
    return json.loads(json.dumps(state))


def names(items):
    return "".join(item[0] for item in items)


# --------------------------------------------------------------------------- ShuffledPolicy


def test_shuffled_gives_every_positive_weight_streamer_a_slot():
    a, b, c = FakeStream("a", 5), FakeStream("b", 5), FakeStream("c", 5)
    draws = ScriptedDraws([])
    policy = ShuffledPolicy(table_of(a, b, c), [1.0, 0.0, 3.0], draws=draws)
    assert policy.table.streamer_ids == [0, 2]
    assert policy.table.left == [UNLIMITED, UNLIMITED]
    assert draws.w == [1.0, 3.0]
    assert b.opened == []
    assert [a.opened, c.opened] == [[0], [1]]


def test_shuffled_order_is_the_draws():
    a, b, c = FakeStream("a", 9), FakeStream("b", 9), FakeStream("c", 9)
    policy = ShuffledPolicy(table_of(a, b, c), None, draws=ScriptedDraws([2, 0, 0, 1, 2]))
    assert names(mux_loop(policy)) == "caabc"


def test_shuffled_restarts_an_ended_streamer_and_the_draw_takes_its_first_item():
    a, b = FakeStream("a", 2), FakeStream("b", 9)
    policy = ShuffledPolicy(table_of(a, b), None, draws=ScriptedDraws([]))
    assert [pull(policy, 0), pull(policy, 0)] == [("a", 0, 0), ("a", 0, 1)]
    assert pull(policy, 0) == ("a", 2, 0)  # ended: a new activation of the same streamer
    assert a.opened == [0, 2]
    assert policy.slots.n_live == 2


def test_shuffled_retires_a_streamer_that_yields_nothing_since_its_start():
    e, a, b = FakeStream("e", 0), FakeStream("a", 9), FakeStream("b", lambda n: n == 2)
    draws = ScriptedDraws([])
    policy = ShuffledPolicy(table_of(e, a, b), [1.0, 2.0, 3.0], draws=draws)
    assert pull(policy, 0) is NOTHING  # e: nothing at all; b moves into slot 0
    assert policy.table.streamer_ids[:2] == [2, 1]
    assert draws.w == [3.0, 2.0]
    assert pull(policy, 0) == ("b", 2, 0)
    assert pull(policy, 0) is NOTHING  # b restarts empty: retired
    assert b.opened == [2, 3]
    assert (policy.slots.n_live, draws.w, draws.stopped) == (1, [2.0], False)
    assert policy.views()[1] == [0.0, 2.0, 0.0]  # per streamer, retired ones weigh 0


def test_shuffled_stops_the_draws_when_every_streamer_is_retired():
    draws = ScriptedDraws([0, 0, 0])
    policy = ShuffledPolicy(table_of(FakeStream("e", 0), FakeStream("f", 0)), None, draws=draws)
    assert list(mux_loop(policy)) == []
    assert draws.stopped and draws.position == 2
    assert policy.table.children == [None, None]  # the loop closed them


def test_shuffled_state_round_trip():
    script = [0, 1, 1, 0, 0, 0, 1, 0, 1, 1, 1, 0]

    def build(resume=None):
        streams = FakeStream("a", 3), FakeStream("b", 2)
        draws = ScriptedDraws(script)
        if resume is not None:
            draws.load(resume["sel"])
        return ShuffledPolicy(table_of(*streams), [1.0, 2.0], resume, draws=draws)

    full = list(mux_loop(build()))
    for k in range(len(full)):
        policy = build()
        loop = mux_loop(policy)  # (kept: dropping it would close the slots)
        head = list(islice(loop, k))
        state = round_trip(policy.state())
        assert set(state) == {"opened", "slots", "sel"}
        assert head + list(mux_loop(build(state))) == full


# ------------------------------------------------------------------------ RoundRobinPolicy


def test_round_robin_takes_turns_and_skips_ended_streamers():
    policy = RoundRobinPolicy(
        table_of(FakeStream("a", 2), FakeStream("b", 3), FakeStream("c", 1)), "exhaustive"
    )
    assert names(mux_loop(policy)) == "abcabb"
    assert policy.produced == 6


def test_round_robin_exhausted_ends_the_streamers_turns():
    policy = RoundRobinPolicy(table_of(FakeStream("a", 1), FakeStream("b", 5)), "exhaustive")
    order = policy.order()
    assert [next(order), pull(policy, 0), next(order), pull(policy, 1)] == [
        0,
        ("a", 0, 0),
        1,
        ("b", 1, 0),
    ]
    assert next(order) == 0
    assert pull(policy, 0) is NOTHING
    assert policy.alive == [False, True]
    assert policy.table.children[0] is None
    assert [next(order), next(order)] == [1, 1]  # only b's turns are left


def test_round_robin_cycle_restarts_every_streamer_until_a_pass_yields_nothing():
    # Passes open activations 0-1, 2-3, 4-5: a yields 1, 2, 0 items; b yields 1, 0, 0.
    a, b = FakeStream("a", lambda n: {0: 1, 2: 2}.get(n, 0)), FakeStream("b", lambda n: n == 1)
    policy = RoundRobinPolicy(table_of(a, b), "cycle")
    assert list(mux_loop(policy)) == [("a", 0, 0), ("b", 1, 0), ("a", 2, 0), ("a", 2, 1)]
    assert (a.opened, b.opened) == ([0, 2, 4], [1, 3, 5])


def test_round_robin_permuted_cycle_draws_each_passs_order_from_the_seed():
    streams = [FakeStream(name, lambda n: n < 10) for name in "abcde"]  # two passes
    policy = RoundRobinPolicy(table_of(*streams), "permuted_cycle")
    items = list(mux_loop(policy))
    permutation = SEED.generator(0).permutation(5).tolist()
    assert names(items) == "abcde" + "".join("abcde"[i] for i in permutation)


def test_round_robin_state_round_trip():
    def build(resume=None):
        streams = [
            FakeStream(name, lambda n: (2, 1, 3, 1, 1, 1)[n] if n < 6 else 0) for name in "abc"
        ]
        return RoundRobinPolicy(table_of(*streams), "permuted_cycle", resume)

    full = list(mux_loop(build()))
    assert len(full) == 9
    for k in range(len(full)):
        policy = build()
        loop = mux_loop(policy)  # (kept: dropping it would close the slots)
        head = list(islice(loop, k))
        state = round_trip(policy.state())
        assert set(state) == {"opened", "slots", "turns", "turn", "produced", "sel"}
        assert head + list(mux_loop(build(state))) == full


# ----------------------------------------------------------------------------- ChainPolicy


def test_chain_runs_each_stream_to_its_end_and_opens_the_next_lazily():
    made = []

    def streams():
        for name in "abc":
            made.append(name)
            yield FakeStream(name, 2)

    policy = ChainPolicy(SlotTable("mux", [], SEED), streams, cycle=False)
    assert policy.runs
    assert made == ["a"]
    order = policy.order()
    assert next(order) == 0
    assert names(policy.table.children[0]) == "aa"
    assert policy.exhausted(0) is NOTHING
    assert made == ["a", "b"]
    assert policy.table.streamer_ids[0] == 1
    assert "FakeStream('b')" in policy.describe(0)
    assert names(mux_loop(policy)) == "bbcc"
    assert not policy.live


def test_chain_cycle_starts_a_new_pass_until_one_yields_nothing():
    a, b = FakeStream("a", lambda n: n == 0), FakeStream("b", lambda n: 2 * (n == 1))
    policy = ChainPolicy(SlotTable("mux", [], SEED), [a, b].__iter__, cycle=True)
    assert names(mux_loop(policy)) == "abb"
    assert (a.opened, b.opened) == ([0, 2], [1, 3])


def test_chain_state_round_trip():
    def build(resume=None):
        streams = [FakeStream("a", 2), FakeStream("b", 0), FakeStream("c", 3)]
        return ChainPolicy(SlotTable("mux", [], SEED), streams.__iter__, True, resume)

    full = list(islice(mux_loop(build()), 12))
    for k in range(len(full)):
        policy = build()
        loop = mux_loop(policy)  # (kept: dropping it would close the slots)
        head = list(islice(loop, k))
        state = round_trip(policy.state())
        assert set(state) == {"opened", "produced", "slot"}
        assert head + list(islice(mux_loop(build(state)), 12 - k)) == full


# ------------------------------------------------------------------------ StochasticPolicy


def stochastic(streams, script, resume=None, **options):
    options = {
        "weights": None,
        "n_active": len(streams),
        "rate": None,
        "mode": "single_active",
        "dist": "constant",
        "prune": True,
        **options,
    }
    draws = ScriptedDraws(script)
    if resume is not None:
        draws.load(resume["sel"])
    return StochasticPolicy(table_of(*streams), resume=resume, draws=draws, **options)


def test_stochastic_fills_the_working_set_from_the_pool():
    streams = [FakeStream(name, 9) for name in "abcd"]
    policy = stochastic(
        streams, [], n_active=3, rate=4, weights=[1.0, 1.0, 0.0, 2.0], stationary=False
    )
    table = policy.table
    assert sorted(table.streamer_ids) == [0, 1, 3]  # single_active: three different ones
    assert table.left == [4, 4, 4]
    assert table.activation_ids == [0, 1, 2]
    assert policy.slots.draws.w == [[1.0, 1.0, 0.0, 2.0][i] for i in table.streamer_ids]


def test_stochastic_order_is_the_draws():
    a, b = FakeStream("a", 9), FakeStream("b", 9)
    policy = stochastic([a, b], [0, 1, 1, 0, 1])
    running = ["ab"[i] for i in policy.table.streamer_ids]
    assert sorted(running) == ["a", "b"]
    assert names(mux_loop(policy)) == "".join(running[k] for k in [0, 1, 1, 0, 1])


def test_stochastic_stationary_start_fills_with_budgets_partly_used():
    streams = [FakeStream(name, 9) for name in "abcd"]
    policy = stochastic(streams, [], n_active=3, rate=4, weights=[1.0, 1.0, 0.0, 2.0])
    table = policy.table
    assert sorted(table.streamer_ids) == [0, 1, 3]  # single_active: three different ones
    assert all(1 <= left <= 4 for left in table.left)  # the rest of a budget of 4
    assert table.activation_ids == [0, 1, 2]
    assert policy.slots.draws.w == [[1.0, 1.0, 0.0, 2.0][i] for i in table.streamer_ids]


def test_stochastic_spent_budget_opens_a_new_activation():
    a, b = FakeStream("a", 9), FakeStream("b", 9)
    policy = stochastic([a, b], [], rate=2, stationary=False)
    table = policy.table
    i = table.streamer_ids[0]
    assert pull(policy, 0) == ("ab"[i], 0, 0)
    assert table.left[0] == 1
    assert pull(policy, 0) == ("ab"[i], 0, 1)  # the last of its budget: replaced at once
    # single_active with both streamers running: the only candidate is the one released.
    assert (table.streamer_ids[0], table.left[0], table.activation_ids[0]) == (i, 2, 2)
    assert pull(policy, 0) == ("ab"[i], 2, 0)


def test_stochastic_ended_stream_is_replaced():
    policy = stochastic([FakeStream("a", 1), FakeStream("b", 1)], [])
    first = pull(policy, 0)
    assert pull(policy, 0) is NOTHING
    assert policy.table.activation_ids[0] == 2
    assert pull(policy, 0)[0] == first[0]


def test_stochastic_prunes_a_streamer_that_yields_nothing():
    e, a = FakeStream("e", 0), FakeStream("a", 9)
    policy = stochastic([e, a], [], weights=[3.0, 1.0])
    k = policy.table.streamer_ids.index(0)
    assert pull(policy, k) is NOTHING
    assert policy.pruned == [True, False]
    # e is pruned and a is checked out: no candidate is left, so the slot is retired.
    assert policy.slots.n_live == 1
    assert policy.table.streamer_ids[0] == 1
    assert policy.slots.draws.w == [1.0]
    assert len(e.opened) == 1


def test_stochastic_without_pruning_ends_when_every_candidate_came_up_empty():
    draws_script = [0, 1, 0, 1, 0, 1]
    policy = stochastic([FakeStream("e", 0), FakeStream("f", 0)], draws_script, prune=False)
    assert list(mux_loop(policy)) == []
    assert policy.slots.draws.stopped
    assert policy.slots.n_live == 0
    assert policy.slots.draws.position == 2


def test_stochastic_exhaustive_activates_each_streamer_once_then_ends():
    streams = [FakeStream(name, 3) for name in "abcd"]
    policy = stochastic(streams, [0] * 100, mode="exhaustive", n_active=2)
    items = list(mux_loop(policy))
    assert sorted((name, j) for name, _, j in items) == [(x, j) for x in "abcd" for j in range(3)]
    assert [len(stream.opened) for stream in streams] == [1, 1, 1, 1]
    assert policy.slots.n_live == 0 and policy.slots.draws.stopped


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "with_replacement", "rate": 2, "n_active": 3},
        {"mode": "single_active", "rate": 3, "dist": "poisson", "weights": [1.0, 2.0, 3.0]},
        {"mode": "exhaustive", "n_active": 2},
        {"mode": "with_replacement", "prune": False, "rate": 2},
    ],
    ids=["with_replacement", "single_active", "exhaustive", "no-prune"],
)
def test_stochastic_state_round_trip(options):
    script = [0, 1, 1, 0, 2, 2, 0, 1, 0, 0, 2, 1, 1, 1, 0, 2, 0] * 2

    def build(resume=None):
        streams = [
            FakeStream("a", lambda n: 3 * (n < 4)),
            FakeStream("b", lambda n: 2 * (n % 3 == 1)),
            FakeStream("c", 4),
        ]
        return stochastic(streams, script, resume, **options)

    full = list(mux_loop(build()))
    assert full
    for k in range(len(full)):
        policy = build()
        loop = mux_loop(policy)  # (kept: dropping it would close the slots)
        head = list(islice(loop, k))
        state = round_trip(policy.state())
        assert {"opened", "slots", "sel", "uni", "budgets", "gen", "pruned"} <= set(state)
        assert head + list(mux_loop(build(state))) == full
