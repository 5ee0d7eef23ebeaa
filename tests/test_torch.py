"""pescador.torch.StreamDataset in torch's DataLoader: sharding, proportions, epochs, tensors,
errors and cleanup. (Exact resume under StatefulDataLoader: test_torch_resume.py; DDP and the
example: test_torch_ddp.py.)"""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

import pescador

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

from pescador._balance import balanced_groups, split_for  # noqa: E402
from pescador.torch import StreamDataset  # noqa: E402

CONFIGS = [(1, 0), (1, 2), (2, 1), (2, 2)]  # (world_size, num_workers)


def counting(tag: int, n: int):
    for j in range(n):
        yield {"tag": tag, "j": j}


def endless(tag: int, rng=pescador.ACTIVATION_RNG):
    j = 0
    while True:
        yield {"tag": tag, "j": j, "u": rng.random()}
        j += 1


def failing(n: int):
    yield from ({"x": np.arange(3)} for _ in range(n))
    raise ValueError("boom in the stream")


def whoami(paths):
    info = pescador.worker_info()
    assert info is not None
    for path in paths[info.index :: info.n_workers]:
        yield {
            "path": path,
            "index": info.index,
            "n": info.n_workers,
            "rank": info.rank,
            "world": info.world_size,
        }


def finite_streams(n_streams: int = 7) -> list[pescador.Streamer]:
    return [pescador.Streamer(counting, i, 2 + i % 4) for i in range(n_streams)]


def pairs(items) -> list[tuple[int, int]]:
    return [(int(item["tag"]), int(item["j"])) for item in items]


def loader_error(loader) -> BaseException:
    """The exception that iterating ``loader`` raises, with its traceback dropped so that the
    loader's iterator is freed at once: left to the garbage collector, torch's shutdown of
    its workers waits 5 s per worker (the queues' feeder threads are finalised first)."""
    try:
        for _ in loader:
            pass
    except Exception as exc:
        exc.__traceback__ = None
        return exc
    raise AssertionError(f"iterating {loader!r} raised nothing")


def run_ranks(make_stream, world_size, num_workers, **options):
    """Every rank's items (one DataLoader per rank, ranks given explicitly)."""
    out = []
    for rank in range(world_size):
        ds = StreamDataset(make_stream(), rank=rank, world_size=world_size, **options)
        loader = DataLoader(ds, batch_size=None, num_workers=num_workers)
        out.append(list(loader))
    return out


# ------------------------------------------------------------------------------ import
def test_import_pescador_imports_no_torch():
    code = "import pescador, sys; assert 'torch' not in sys.modules, 'torch was imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_pescador_torch_is_reachable_from_pescador():
    assert pescador.torch.StreamDataset is StreamDataset


def test_without_torch_the_error_names_the_extra():
    code = "import sys; sys.modules['torch'] = None; import pescador.torch"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    assert "pip install 'pescador[torch]'" in done.stderr


# ------------------------------------------------------------------------------ sharding
@pytest.mark.parametrize(("world_size", "num_workers"), CONFIGS)
@pytest.mark.parametrize("kind", ["chain", "exhaustive"])
def test_no_duplicates_and_full_coverage(world_size, num_workers, kind):
    def make():
        if kind == "chain":
            return pescador.ChainMux(finite_streams())
        return pescador.StochasticMux(
            finite_streams(), n_active=2, rate=None, mode="exhaustive", random_state=3
        )

    expected = sorted(pairs(make().iterate()))
    per_rank = run_ranks(make, world_size, num_workers)
    seen = [p for items in per_rank for p in pairs(items)]
    assert len(seen) == len(set(seen)), "an item was produced twice"
    assert sorted(seen) == expected
    if world_size == 2:  # each rank covers its own part, not the whole
        assert all(0 < len(items) < len(expected) for items in per_rank)


@pytest.mark.parametrize(("world_size", "num_workers"), CONFIGS)
def test_a_map_over_a_mux_is_split_at_the_mux(world_size, num_workers):
    def make():
        mux = pescador.ChainMux(finite_streams(8))
        return pescador.Streamer(pescador.buffer_stream, mux, 2, partial=True)

    expected = sorted(pairs(pescador.ChainMux(finite_streams(8)).iterate()))
    seen = []
    for items in run_ranks(make, world_size, num_workers):
        for batch in items:
            seen += list(zip(batch["tag"].tolist(), batch["j"].tolist(), strict=True))
    assert sorted(seen) == expected


def test_a_stream_without_a_mux_shards_through_worker_info():
    paths = [f"file-{i}" for i in range(11)]
    per_rank = run_ranks(lambda: pescador.Streamer(whoami, paths), 2, 2)
    seen = [item["path"] for items in per_rank for item in items]
    assert sorted(seen) == sorted(paths)
    for rank, items in enumerate(per_rank):
        assert {int(item["rank"]) for item in items} == {rank}
        assert {int(item["world"]) for item in items} == {2}
        assert {int(item["n"]) for item in items} == {4}
        assert {int(item["index"]) for item in items} == {2 * rank, 2 * rank + 1}
    assert pescador.worker_info() is None  # the main process (num_workers=0) restores it


def test_worker_info_outside_a_loader_is_restored_with_num_workers_0():
    ds = StreamDataset(pescador.Streamer(whoami, ["a", "b", "c"]), rank=1, world_size=2)
    items = list(DataLoader(ds, batch_size=None))
    assert [item["path"] for item in items] == ["b"]
    assert pescador.worker_info() is None


def test_more_consumers_than_streamers_is_an_error_at_the_first_iter():
    mux = pescador.ChainMux(finite_streams(3))
    error = loader_error(DataLoader(StreamDataset(mux, rank=0, world_size=2), num_workers=2))
    assert isinstance(error, pescador.PescadorError) and "4 consumers" in str(error)
    with pytest.raises(pescador.PescadorError, match="4 consumers"):
        StreamDataset(mux, rank=0, world_size=4)  # known at once


def test_zero_weight_streamers_do_not_count_as_streamers():
    weights = [1.0, 0.0, 0.0, 0.0]
    mux = pescador.StochasticMux(finite_streams(4), 1, 2, weights=weights, random_state=0)
    with pytest.raises(pescador.PescadorError, match="1 streamer that can yield"):
        StreamDataset(mux, rank=0, world_size=2)
    weights = [1.0, 0.0, 0.0, 1.0]
    mux = pescador.StochasticMux(finite_streams(4), 1, 2, weights=weights, random_state=0)
    error = loader_error(DataLoader(StreamDataset(mux, rank=0, world_size=2), num_workers=2))
    assert isinstance(error, pescador.PescadorError)
    assert "2 streamers that can yield" in str(error)


def test_balanced_groups():
    assert balanced_groups([1] * 7, 3) == [[0, 3, 6], [1, 4], [2, 5]]
    assert balanced_groups([5, 1, 1, 1, 1, 1], 2) == [[0], [1, 2, 3, 4, 5]]
    groups = balanced_groups([4, 2, 2, 1, 1, 1, 1, 2, 2], 4)
    totals = [sum([4, 2, 2, 1, 1, 1, 1, 2, 2][i] for i in g) for g in groups]
    assert totals == [4, 4, 4, 4]


def test_split_leaves_equal_weights_alone_and_lays_out_the_rest():
    mux = pescador.StochasticMux(finite_streams(6), 2, 3, random_state=0)
    assert split_for(mux, 2) is mux
    weighted = pescador.StochasticMux(
        finite_streams(6), 2, 3, weights=[5, 1, 1, 1, 1, 1], random_state=0
    )
    batches = pescador.Streamer(pescador.buffer_stream, weighted, 4)
    split = split_for(batches, 2)
    laid = split.args[0]
    assert split is not batches and batches.args[0] is weighted  # the user's stream is intact
    # (mux.weights is normalised, as in pescador 3.0: each half carries half of the weight)
    assert (
        laid.weights[0::2].sum() == pytest.approx(laid.weights[1::2].sum()) == pytest.approx(0.5)
    )
    assert laid.streamers[0] is weighted.streamers[0]


def test_proportions_of_the_combined_output_hold():
    """Category shares over all ranks and workers within a Hoeffding bound (alpha = 1e-4,
    items treated as independent in runs of 2 * rate, the rule of thumb of
    pescador.testing.assert_proportions). The stride split [c::4] would put weight 7 of 16 in
    one share and give streamer 0 a share of 1/7 instead of 1/4, outside the bound."""
    weights = [4, 2, 2, 1, 1, 1, 1, 2, 2]
    rate = 4
    n_total = 16_000

    def make():
        streams = [pescador.Streamer(endless, i) for i in range(len(weights))]
        mux = pescador.StochasticMux(streams, 4, rate, weights=weights, random_state=7)
        return pescador.Streamer(pescador.buffer_stream, mux, 50)

    counts: Counter[int] = Counter()
    for rank in range(2):
        ds = StreamDataset(make(), rank=rank, world_size=2, samples_per_epoch=n_total // 50)
        for batch in DataLoader(ds, batch_size=None, num_workers=2):
            counts.update(batch["tag"].tolist())
    assert sum(counts.values()) == n_total
    alpha, k = 1e-4, len(weights)
    bound = math.sqrt(math.log(2 * k / alpha) / (2 * n_total / (2 * rate)))
    total = sum(weights)
    for tag, w in enumerate(weights):
        assert abs(counts[tag] / n_total - w / total) <= bound, (tag, counts, bound)
    assert abs(1 / 7 - 4 / 16) > bound  # the test would catch the unbalanced split


# ------------------------------------------------------------------------------ epochs
@pytest.mark.parametrize(("world_size", "num_workers"), CONFIGS)
def test_samples_per_epoch_gives_every_rank_the_same_count(world_size, num_workers):
    def make():  # finite and uneven: shares of very different lengths, restarted to fill
        return pescador.ChainMux(finite_streams(5))

    per_rank = run_ranks(make, world_size, num_workers, samples_per_epoch=30)
    assert [len(items) for items in per_rank] == [30 // world_size] * world_size
    ds = StreamDataset(make(), rank=0, world_size=world_size, samples_per_epoch=30)
    assert len(ds) == 30 // world_size
    assert len(DataLoader(ds, batch_size=None, num_workers=num_workers)) == len(ds)


def test_samples_per_epoch_rounds_up_per_rank_and_splits_among_workers():
    mux = pescador.StochasticMux([pescador.Streamer(endless, i) for i in range(4)], 2, 3)
    ds = StreamDataset(mux, rank=1, world_size=2, samples_per_epoch=11)
    assert len(ds) == 6
    assert len(list(DataLoader(ds, batch_size=None, num_workers=2))) == 6
    assert len(list(DataLoader(ds, batch_size=4, num_workers=2))) == 2  # 3 + 3 items


def test_a_share_that_yields_nothing_cannot_fill_an_epoch():
    streams = [pescador.Streamer(counting, 0, 5), pescador.Streamer(counting, 1, 0)]
    ds = StreamDataset(pescador.ChainMux(streams), samples_per_epoch=10)
    error = loader_error(DataLoader(ds, batch_size=None, num_workers=2))
    assert isinstance(error, pescador.PescadorError) and "yields nothing" in str(error)


def test_len_without_samples_per_epoch_is_a_type_error():
    with pytest.raises(TypeError, match="samples_per_epoch"):
        len(StreamDataset(pescador.ChainMux(finite_streams())))


@pytest.mark.parametrize("persistent", [False, True])
def test_set_epoch_reseeds_deterministically(persistent):
    def make():
        streams = [pescador.Streamer(endless, i) for i in range(4)]
        mux = pescador.StochasticMux(streams, 2, 3, random_state=11)
        return StreamDataset(mux, samples_per_epoch=12)

    def epochs(ds, which):
        loader = DataLoader(ds, batch_size=None, num_workers=2, persistent_workers=persistent)
        out = []
        for epoch in which:
            ds.set_epoch(epoch)
            out.append([float(item["u"]) for item in loader])
        return out

    first = epochs(make(), [0, 1, 2])
    again = epochs(make(), [0, 1, 2])
    assert first == again
    assert len({tuple(e) for e in first}) == 3  # each epoch its own items
    assert epochs(make(), [2])[0] == first[2]
    with pytest.raises(pescador.PescadorError, match="set_epoch"):
        make().set_epoch(-1)


def test_the_dataset_seed_overrides_the_mux_seed():
    streams = [pescador.Streamer(endless, i) for i in range(3)]
    mux = pescador.StochasticMux(streams, 2, 3, random_state=11)
    a = list(DataLoader(StreamDataset(mux, samples_per_epoch=6), batch_size=None))
    b = list(DataLoader(StreamDataset(mux, samples_per_epoch=6, random_state=12), None))
    c = list(DataLoader(StreamDataset(mux, samples_per_epoch=6, random_state=11), None))
    assert [float(x["u"]) for x in a] == [float(x["u"]) for x in c]
    assert [float(x["u"]) for x in a] != [float(x["u"]) for x in b]


# ------------------------------------------------------------------------------ ranks
def test_ranks_come_from_the_environment(monkeypatch):
    mux = pescador.ChainMux(finite_streams())
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    ds = StreamDataset(mux)
    assert (ds.rank, ds.world_size) == (1, 3)
    assert StreamDataset(mux, rank=0).world_size == 3
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    ds = StreamDataset(mux)
    assert (ds.rank, ds.world_size) == (0, 1)


@pytest.mark.parametrize(
    ("rank", "world_size", "match"),
    [(2, 2, "less than"), (-1, 2, "rank"), (0, 0, "world_size"), (True, 2, "rank")],
)
def test_bad_ranks(rank, world_size, match):
    with pytest.raises(pescador.PescadorError, match=match):
        StreamDataset(pescador.ChainMux(finite_streams()), rank=rank, world_size=world_size)


def test_bad_arguments():
    mux = pescador.ChainMux(finite_streams())
    with pytest.raises(pescador.PescadorError, match="samples_per_epoch"):
        StreamDataset(mux, samples_per_epoch=0)
    with pytest.raises(pescador.PescadorError, match="ParallelStreamer"):
        StreamDataset(pescador.ParallelStreamer(mux, 2))


# ------------------------------------------------------------------------------ tensors
def test_arrays_become_tensors_without_a_copy():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)

    def same():
        while True:
            yield {"X": array, "y": np.int64(3)}

    ds = StreamDataset(pescador.Streamer(same), samples_per_epoch=2)
    batch = next(iter(DataLoader(ds, batch_size=None)))
    assert isinstance(batch["X"], torch.Tensor)
    assert batch["X"].data_ptr() == array.ctypes.data  # shares the array's memory


@pytest.mark.parametrize("num_workers", [0, 2])
def test_batch_size_stacks_dicts_and_tuples(num_workers):
    def windows(i):
        for j in range(6):
            yield {"X": np.full((2, 3), i * 10 + j, np.float32), "Y": np.int64(j)}

    streams = [pescador.Streamer(windows, i) for i in range(4)]
    ds = StreamDataset(pescador.ChainMux(streams))
    batches = list(DataLoader(ds, batch_size=3, num_workers=num_workers))
    assert len(batches) == 8
    assert all(b["X"].shape == (3, 2, 3) and b["X"].dtype == torch.float32 for b in batches)
    tuples = pescador.Streamer(pescador.tuples, pescador.ChainMux(streams), "X", "Y")
    batches = list(DataLoader(StreamDataset(tuples), batch_size=4, num_workers=num_workers))
    assert all(isinstance(b, list | tuple) and b[0].shape == (4, 2, 3) for b in batches)
    assert sum(len(b[1]) for b in batches) == 24


@pytest.mark.filterwarnings("ignore:.*pin_memory.*:UserWarning")
def test_pin_memory_works():
    streams = [pescador.Streamer(endless, i) for i in range(2)]
    ds = StreamDataset(pescador.StochasticMux(streams, 2, 2), samples_per_epoch=8)
    loader = DataLoader(ds, batch_size=4, num_workers=2, pin_memory=True)
    batches = list(loader)
    assert len(batches) == 2 and batches[0]["u"].shape == (4,)
    if torch.cuda.is_available():  # only a machine with an accelerator can pin
        assert batches[0]["u"].is_pinned()


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("num_workers", [0, 2])
def test_an_exception_in_a_worker_reaches_the_loop_with_its_traceback(num_workers):
    streams = [pescador.Streamer(failing, 3), pescador.Streamer(failing, 3)]
    ds = StreamDataset(pescador.ChainMux(streams))
    error = loader_error(DataLoader(ds, batch_size=None, num_workers=num_workers))
    assert isinstance(error, ValueError) and "boom in the stream" in str(error)
    if num_workers:  # torch's re-raise carries the worker's traceback in the message
        assert "Traceback" in str(error) and "in failing" in str(error)


def shared_memory_of(pids) -> list[str]:
    if not os.path.isdir("/dev/shm"):
        return []
    names = [f"pescador-{pid}-torch-" for pid in pids]
    return [n for n in os.listdir("/dev/shm") if n.startswith(tuple(names))]


def large(tag: int):
    while True:
        yield {"X": np.full(1 << 16, tag, np.float32)}


def test_closing_the_loader_early_leaves_no_process_or_shared_memory():
    streams = [pescador.Streamer(large, i) for i in range(4)]
    ds = StreamDataset(pescador.StochasticMux(streams, 2, 2))
    loader = DataLoader(ds, batch_size=None, num_workers=2)
    it = iter(loader)
    workers = list(it._workers)
    for _ in range(5):
        next(it)
    assert all(w.is_alive() for w in workers)
    assert len(shared_memory_of(w.pid for w in workers)) == 2  # a directory per worker
    del it
    gc.collect()
    for w in workers:
        w.join(5)
    assert not any(w.is_alive() for w in workers)
    assert not multiprocessing.active_children()
    assert shared_memory_of(w.pid for w in workers) == []


def test_a_finite_share_restarted_to_fill_the_epoch_keeps_its_share():
    # samples_per_epoch above the share's length: the share restarts, and each restart's
    # outermost mux takes the share again (not the whole mux: rank 1's items).
    streams = [pescador.Streamer(range(i * 10, i * 10 + 3)) for i in range(4)]
    dataset = StreamDataset(pescador.ChainMux(streams), rank=0, world_size=2, samples_per_epoch=24)
    assert sorted(int(x) for x in dataset) == sorted([0, 1, 2, 20, 21, 22] * 2)
