"""pescador.stats: exact per-streamer statistics, compared with counts taken outside the
library (items tag their source; activations are counted by the sources' own ``__iter__``)."""

from __future__ import annotations

import collections
import json
import subprocess
import sys

import numpy as np
import pytest

import pescador
import pescador.io
import pescador.stats
from conftest import REPO
from pescador.cli import write_corpus
from pescador.stats._recorder import Recorder


class Source:
    """``n`` items ``(tag, k)``; counts its activations (each ``iter()`` is one) in ``log``."""

    def __init__(self, tag, n, log):
        self.tag, self.n, self.log = tag, n, log

    def __iter__(self):
        self.log[self.tag] += 1
        return iter([(self.tag, k) for k in range(self.n)])


def sources(tags, n, log):
    return [pescador.Streamer(Source(tag, n, log)) for tag in tags]


def counts_of(items):
    return collections.Counter(tag for tag, _ in items)


def check_exact(stats, tags, items, log):
    """Each streamer's items and activations are those counted outside."""
    seen = counts_of(items)
    assert [s.items for s in stats.streamers] == [seen[t] for t in tags]
    assert [s.activations for s in stats.streamers] == [log[t] for t in tags]
    assert stats.items == sum(seen[t] for t in tags)
    assert stats.unreached() == [s.index for s in stats.streamers if not seen[tags[s.index]]]


# ------------------------------------------------------------------------------ one mux
@pytest.mark.parametrize("mode", ["with_replacement", "single_active", "exhaustive"])
@pytest.mark.parametrize("rate", [None, 3.0])
def test_stochastic_mux_counts_are_exact(mode, rate):
    log = collections.Counter()
    tags = list("abcdefg")
    weights = [1, 2, 0, 3, 1, 0.5, 2]
    mux = pescador.StochasticMux(
        sources(tags, 7, log), 3, rate, weights=weights, mode=mode, random_state=4
    )
    it = mux.iterate(max_iter=150)
    watched = pescador.stats.watch(it)
    items = list(it)
    stats = watched.snapshot()
    check_exact(stats, tags, items, log)
    assert stats.streamers[2].activations == 0  # weight 0: never activated
    assert 2 in stats.never_activated() and 2 in stats.unreached()
    if mode == "exhaustive":
        assert stats.targets() is None
    else:
        assert np.allclose(stats.targets(), np.array(weights) / sum(weights))
    assert stats.rate == rate
    ended = sum(s.ended for s in stats.streamers)
    assert stats.activations == ended  # the iteration ended: every activation with it
    assert stats.items_per_activation == pytest.approx(stats.items / stats.activations)


def test_snapshots_of_a_running_iterator_are_exact_at_every_item():
    log = collections.Counter()
    tags = list("abcde")
    mux = pescador.StochasticMux(sources(tags, 9, log), 2, 4, weights=[5, 1, 1, 2, 1])
    it = mux.iterate()
    watched = pescador.stats.watch(it)
    items = []
    for _ in range(120):
        items.append(next(it))
        check_exact(watched.snapshot(), tags, items, log)
    it.close()
    check_exact(watched.snapshot(), tags, items, log)


def test_round_robin_and_chain_muxes():
    log = collections.Counter()
    rr = pescador.RoundRobinMux(sources("xyz", 4, log), mode="cycle")
    it = rr.iterate(max_iter=30)
    watched = pescador.stats.watch(it)
    items = list(it)
    stats = watched.snapshot()
    check_exact(stats, list("xyz"), items, log)
    assert stats.targets().tolist() == pytest.approx([1 / 3] * 3)
    log.clear()
    chain = pescador.ChainMux(sources("pq", 5, log))
    it = chain.iterate()
    watched = pescador.stats.watch(it)
    items = list(it)
    stats = watched.snapshot()
    check_exact(stats, ["p", "q"], items, log)
    assert stats.targets() is None
    assert stats.items_per_activation == 5


def test_weights_that_change_change_the_targets():
    log = collections.Counter()
    mux = pescador.StochasticMux(sources("ab", 5, log), 2, 3, random_state=0)
    it = mux.iterate()
    watched = pescador.stats.watch(it)
    items = [next(it) for _ in range(40)]
    assert watched.snapshot().targets().tolist() == [0.5, 0.5]
    it.set_weights([1, 3])
    items += [next(it) for _ in range(40)]
    stats = watched.snapshot()
    assert stats.targets().tolist() == [0.25, 0.75]  # the weights in force
    check_exact(stats, ["a", "b"], items, log)
    it.close()


def test_groups():
    log = collections.Counter()
    tags = list("abcdef")
    weights = [1, 1, 2, 2, 4, 0]
    mux = pescador.StochasticMux(sources(tags, 6, log), 3, 2, weights=weights, random_state=1)
    it = mux.iterate(max_iter=200)
    watched = pescador.stats.watch(it)
    items = list(it)
    seen = counts_of(items)
    labels = ["one", "one", "two", "two", "four", "zero"]
    groups = watched.snapshot().groups(labels)
    assert list(groups) == ["one", "two", "four", "zero"]
    for label, target in [("one", 2 / 10), ("two", 4 / 10), ("four", 4 / 10), ("zero", 0)]:
        members = [t for t, lab in zip(tags, labels, strict=True) if lab == label]
        g = groups[label]
        assert g.items == sum(seen[t] for t in members)
        assert g.share == g.items / 200
        assert g.target == pytest.approx(target)
        assert g.streamers == len(members)
    assert groups["zero"].unreached == 1
    by_function = watched.snapshot().groups(lambda i: i % 2)
    assert by_function[0].items == seen["a"] + seen["c"] + seen["e"]
    with pytest.raises(ValueError, match="labels: 2 given for 6 streamers"):
        watched.snapshot().groups(["x", "y"])


def test_an_empty_streamer_is_activated_but_never_reached():
    log = collections.Counter()
    streams = [*sources("ab", 4, log), pescador.Streamer(Source("e", 0, log))]
    mux = pescador.StochasticMux(streams, 3, 2, random_state=0)
    it = mux.iterate(max_iter=50)
    watched = pescador.stats.watch(it)
    items = list(it)
    stats = watched.snapshot()
    check_exact(stats, ["a", "b", "e"], items, log)
    assert stats.unreached() == [2] and stats.never_activated() == []
    assert stats.streamers[2].activations >= 1  # (pruned after its first empty activations)


# ------------------------------------------------------------------------------ nested
def test_nested_muxes_are_counted_per_streamer_of_each():
    log = collections.Counter()
    inner_a = pescador.StochasticMux(sources("abc", 5, log), 2, 2, weights=[1, 2, 3])
    inner_b = pescador.ShuffledMux(sources("xy", 3, log), weights=[3, 1])
    inner_c = pescador.RoundRobinMux(sources("pq", 2, log))
    plain = pescador.Streamer(Source("z", 4, log))
    outer = pescador.StochasticMux(
        [inner_a, inner_b, inner_c, plain], 3, 6, weights=[2, 1, 1, 1], random_state=7
    )
    it = outer.iterate(max_iter=500)
    watched = pescador.stats.watch(it)
    items = list(it)
    stats = watched.snapshot()
    seen = counts_of(items)
    leaves = {path: (s, target) for path, s, target in stats.leaves()}
    expect = {
        (0, 0): "a", (0, 1): "b", (0, 2): "c",
        (1, 0): "x", (1, 1): "y",
        (2, 0): "p", (2, 1): "q",
        (3,): "z",
    }  # fmt: skip
    assert set(leaves) == set(expect)
    for path, tag in expect.items():
        s, _ = leaves[path]
        assert (s.items, s.activations) == (seen[tag], log[tag]), tag
    assert leaves[(0, 2)][1] == pytest.approx(0.4 * 0.5)  # outer target x inner target
    assert leaves[(1, 0)][1] == pytest.approx(0.2 * 0.75)
    assert leaves[(3,)][1] == pytest.approx(0.2)
    inner = stats.streamers[0]
    assert inner.children is not None and inner.children.items == inner.items
    assert inner.activations == sum(1 for _ in range(inner.activations))  # (an int)
    assert stats.streamers[3].children is None


def test_a_map_over_a_mux_and_a_late_watch():
    log = collections.Counter()
    streams = [pescador.Streamer(tagged_dicts, i, 6) for i in range(2)]
    batched = pescador.buffer_stream(pescador.StochasticMux(streams, 2, 3, random_state=2), 4)
    watched = pescador.stats.watch(batched)  # the mux inside the map
    tags = np.concatenate([next(batched)["tag"] for _ in range(10)])
    assert [s.items for s in watched.snapshot().streamers] == np.bincount(tags).tolist()
    batched.close()
    mux = pescador.StochasticMux(sources("ab", 6, log), 2, 3, random_state=2)
    # Watched late: it counts from then on.
    it = mux.iterate()
    early = [next(it) for _ in range(13)]
    late_watch = pescador.stats.watch(it)
    late = [next(it) for _ in range(50)]
    stats = late_watch.snapshot()
    seen = counts_of(late)
    assert [s.items for s in stats.streamers] == [seen["a"], seen["b"]]
    assert len(early) == 13
    it.close()


def test_resumed_iteration_counts_from_its_checkpoint():
    log = collections.Counter()
    mux = pescador.StochasticMux(sources("abc", 8, log), 2, 4, random_state=3)
    it = mux.iterate()
    [next(it) for _ in range(17)]
    state = it.state_dict()
    resumed = mux.iterate(state=state)
    watched = pescador.stats.watch(resumed)
    after = [next(resumed) for _ in range(60)]
    stats = watched.snapshot()
    seen = counts_of(after)
    assert [s.items for s in stats.streamers] == [seen[t] for t in "abc"]
    resumed.close()
    it.close()


def test_unwatched_iterations_never_call_the_recorder(monkeypatch):
    def fail(*args):
        raise AssertionError("recorder called")

    for name in ("append", "ended", "started", "ending", "flush", "adopt"):
        monkeypatch.setattr(Recorder, name, fail)
    log = collections.Counter()
    inner = pescador.StochasticMux(sources("ab", 3, log), 1, 2)
    mux = pescador.StochasticMux([inner, *sources("cd", 3, log)], 2, 2, random_state=0)
    it = mux.iterate(max_iter=100)
    assert len(list(it)) == 100
    assert it.policy is None or it.policy.table.stats is None


def test_watch_errors():
    with pytest.raises(pescador.PescadorError, match="has no mux"):
        pescador.stats.watch(pescador.Streamer("abc").iterate())
    plain = pescador.ParallelStreamer(pescador.Streamer("abc"), n_workers=1).iterate()
    with pytest.raises(pescador.PescadorError, match="stream has no mux"):
        pescador.stats.watch(plain)
    plain.close()
    ps = pescador.ParallelStreamer(pescador.StochasticMux(["ab"], 1, 2), n_workers=1)
    it = ps.iterate(max_iter=3)
    next(it)
    with pytest.raises(pescador.PescadorError, match="before its first item"):
        pescador.stats.watch(it)
    it.close()


def test_json_form():
    log = collections.Counter()
    inner = pescador.StochasticMux(sources("ab", 3, log), 1, 2)
    mux = pescador.StochasticMux([inner, *sources("cd", 3, log)], 2, 2, random_state=0)
    it = mux.iterate(max_iter=60)
    watched = pescador.stats.watch(it)
    items = list(it)
    data = json.loads(json.dumps(watched.snapshot().to_dict()))
    assert data["items"] == len(items) == 60
    assert data["name"] == "StochasticMux"
    assert [s["items"] for s in data["streamers"][1:]] == [counts_of(items)[t] for t in "cd"]
    assert data["streamers"][0]["children"]["items"] == data["streamers"][0]["items"]
    assert data["items_per_second"] > 0


# ------------------------------------------------------------------------------ io
def test_window_streamers_count_the_bytes_they_read(tmp_path):
    # Both arrays larger than 64 KiB: read window by window (nothing read whole).
    write_corpus(tmp_path, files=4, rows=9000, features=4)
    streams = pescador.io.npz_streamers(tmp_path, 16, id_key="file")
    mux = pescador.StochasticMux(streams, 2, 5, random_state=0)
    it = mux.iterate(max_iter=300)
    watched = pescador.stats.watch(it)
    seen = collections.Counter(int(w["file"]) for w in it)
    stats = watched.snapshot()
    per_window = 16 * 4 * 4 + 16 * 8  # X float32 (16, 4), Y int64 (16,)
    for s in stats.streamers:
        assert s.items == seen[s.index]
        assert s.bytes_read == s.items * per_window
        assert s.name.endswith(f"example-{s.index:04d}.npz")
    assert stats.bytes_read == 300 * per_window
    # Small arrays are read whole, once per activation (here one: no rate).
    small = tmp_path / "small"
    small.mkdir()
    np.savez(small / "one.npz", X=np.zeros((50, 2), np.float32))
    [stream] = pescador.io.npz_streamers(small, 5)
    it = pescador.StochasticMux([stream], 1, None).iterate(max_iter=12)
    watched = pescador.stats.watch(it)
    assert len(list(it)) == 12
    [s] = watched.snapshot().streamers
    assert (s.activations, s.items, s.bytes_read) == (1, 12, 50 * 2 * 4)


# ------------------------------------------------------------------------------ parallel
def tagged_dicts(tag, n):
    for _ in range(n):
        yield {"tag": np.array(tag)}


def tagged(tag, n):
    for k in range(n):
        yield (tag, k)


def test_parallel_streamer_counts_merge_its_workers():
    tags = [f"s{i}" for i in range(9)]
    streams = [pescador.Streamer(tagged, tag, 4 + i) for i, tag in enumerate(tags)]
    mux = pescador.StochasticMux(streams, 2, 3, weights=range(1, 10), random_state=0)
    ps = pescador.ParallelStreamer(mux, n_workers=3, snapshot_every=0)
    it = ps.iterate(max_iter=200)
    watched = pescador.stats.watch(it)
    items = []
    for k, item in enumerate(it):
        items.append(item)
        if k in (0, 57):  # a snapshot while it runs: every worker reported with each item
            stats = watched.snapshot()
            seen = counts_of(items)
            assert [s.items for s in stats.streamers] == [seen[t] for t in tags]
            assert stats.unattributed == 0
    stats = watched.snapshot()
    seen = counts_of(items)
    assert [s.items for s in stats.streamers] == [seen[t] for t in tags]
    assert np.allclose(stats.targets(), np.arange(1, 10) / 45)
    assert stats.name == "StochasticMux"
    # Finite, with the default snapshot_every: exact once it ended.
    finite = pescador.StochasticMux(streams, 2, None, mode="exhaustive", random_state=0)
    it = pescador.ParallelStreamer(finite, n_workers=2).iterate()
    watched = pescador.stats.watch(it)
    items = list(it)
    stats = watched.snapshot()
    assert stats.unattributed == 0
    assert [s.items for s in stats.streamers] == [4 + i for i in range(9)]
    assert [s.activations for s in stats.streamers] == [1] * 9


# ------------------------------------------------------------------------------ imports
def test_import_pescador_imports_no_plotting_or_terminal_library():
    code = (
        "import sys, pescador, pescador.stats, pescador.cli\n"
        "heavy = {'matplotlib', 'rich', 'torch', 'ray', 'keras', 'tensorflow'}\n"
        "assert not heavy & set(sys.modules), heavy & set(sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=50
    )
    assert done.returncode == 0, done.stderr


def test_a_shuffled_mux_whose_weights_change():
    log = collections.Counter()
    mux = pescador.ShuffledMux(sources("abcd", 3, log), weights=[1, 2, 3, 4], random_state=5)
    it = mux.iterate()
    watched = pescador.stats.watch(it)
    items = [next(it) for _ in range(60)]
    it.set_weight(3, 0.0)  # its slot is retired
    it.set_weight(0, 5.0)
    items += [next(it) for _ in range(60)]
    stats = watched.snapshot()
    check_exact(stats, list("abcd"), items, log)
    assert stats.targets().tolist() == pytest.approx([5 / 10, 2 / 10, 3 / 10, 0])
    assert all(tag != "d" for tag, _ in items[60:])
    it.close()


def test_many_activations_are_added_up_in_bulk_exactly():
    log = collections.Counter()
    tags = [f"t{i}" for i in range(40)]
    mux = pescador.StochasticMux(sources(tags, 3, log), 4, 1, dist="constant", random_state=9)
    it = mux.iterate(max_iter=6000)  # an activation per item: the log fills twice
    watched = pescador.stats.watch(it)
    items = list(it)
    stats = watched.snapshot()
    check_exact(stats, tags, items, log)
    # (the activations open when it stopped ended with it, some before their item)
    assert stats.activations >= 6000
    assert stats.items_per_activation == pytest.approx(6000 / stats.activations)
