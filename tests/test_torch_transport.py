"""How a StreamDataset's items travel from DataLoader workers: large tensors through reused
shared-memory chunks, small ones inside the pickle; held items stay intact; nothing is left
in /dev/shm."""

from __future__ import annotations

import gc
import os
import pickle

import numpy as np
import pytest

import pescador

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

from pescador.torch import StreamDataset, _transport  # noqa: E402
from pescador.transport import _pool, remove_directory  # noqa: E402

SHM = "/dev/shm"


def ours_in_shm() -> set[str]:
    if not os.path.isdir(SHM):
        return set()
    return {
        name
        for name in os.listdir(SHM)
        if name.startswith("pescador-") and name.split("-")[2].startswith("torch")
    }


def blocks(tag: int, n: int, size: int):
    for j in range(n):
        yield {
            "X": np.full(size, tag * 1000 + j, np.float32),  # large: through a chunk
            "Y": np.arange(3, dtype=np.int64) + j,  # small: inside the pickle
            "name": f"{tag}-{j}",
            "tag": tag,
        }


def check(item, size):
    tag, j = (int(v) for v in item["name"].split("-"))
    assert isinstance(item, dict) and type(item) is dict
    assert item["X"].shape == (size,) and item["X"].dtype == torch.float32
    assert torch.all(item["X"] == tag * 1000 + j)
    assert item["Y"].tolist() == [j, j + 1, j + 2]
    assert item["tag"] == tag


def loader(size=1 << 16, n=20, **options):
    streams = [pescador.Streamer(blocks, i, n, size) for i in range(4)]
    ds = StreamDataset(pescador.ChainMux(streams))
    return DataLoader(ds, num_workers=2, **{"batch_size": None, **options})


def test_items_arrive_intact_and_held_items_are_not_overwritten():
    before = ours_in_shm()
    held = list(loader())  # every item held: chunks cannot be reused under them
    assert len(held) == 80
    for item in held:
        check(item, 1 << 16)
    assert ours_in_shm() == before  # the workers removed their directories


def test_chunks_are_reused_when_items_are_dropped():
    it = iter(loader(n=60))
    for _ in range(200):
        item = next(it)
        check(item, 1 << 16)
        del item
    maps = _transport._MAPS.maps
    live = [d for d in maps if os.path.basename(d) in ours_in_shm()]
    assert len(live) == 2  # one directory per worker
    # Each worker has had at most its prefetched items and one held item in flight: 4 chunks
    # of 256 KiB, one file of 1 MiB.
    assert all(len(maps[d][0].maps) == 1 for d in live), {d: maps[d][0].maps for d in live}
    del it


def test_batches_and_tuples():
    for batch in loader(batch_size=4):
        assert batch["X"].shape == (4, 1 << 16) and len(batch["name"]) == 4
    streams = [pescador.Streamer(blocks, i, 5, 1 << 14) for i in range(2)]
    pairs = pescador.Streamer(pescador.tuples, pescador.ChainMux(streams), "X", "Y")
    items = list(DataLoader(StreamDataset(pairs), batch_size=None, num_workers=2))
    assert len(items) == 10
    assert all(type(x) is list and x[0].shape == (1 << 14,) for x in items)


def test_the_pickle_of_a_small_item_carries_its_arrays():
    item = _transport.wrap({"a": torch.arange(4), "b": "text", "c": torch.zeros(2, 2)})
    assert isinstance(item, dict)
    back = pickle.loads(pickle.dumps(item))
    assert type(back) is dict and back["b"] == "text"
    assert torch.equal(back["a"], torch.arange(4)) and back["c"].shape == (2, 2)
    pair = pickle.loads(pickle.dumps(_transport.wrap((torch.ones(3), 5))))
    assert type(pair) is list and torch.equal(pair[0], torch.ones(3)) and pair[1] == 5


def test_a_chunk_is_released_when_its_tensors_are_freed(monkeypatch):
    monkeypatch.setattr(_pool, "_POOL", None)
    item = _transport.wrap({"X": torch.ones(1 << 16)})
    data = pickle.dumps(item)
    pool = _pool._POOL
    assert pool is not None and pool.held is not None and pool.held[0] == 1
    try:
        back = pickle.loads(data)
        view = back["X"][10:20]
        del back
        gc.collect()
        assert pool.held[0] == 1  # a view still holds the chunk
        assert torch.all(view == 1)
        del view
        gc.collect()
        assert pool.held[0] == 0
        # The released chunk first, then the file's other three (4 of 256 KiB in a file).
        again = [pickle.dumps(_transport.wrap({"X": torch.zeros(1 << 16)})) for _ in range(4)]
        assert len(pool.files.maps) == 1 and len(pool.chunk_of) == 4  # reused
        assert all(torch.all(pickle.loads(data)["X"] == 0) for data in again)
    finally:
        remove_directory(pool.directory)


def test_a_copy_of_a_wrapped_item_does_not_pickle_it(monkeypatch):
    import copy

    monkeypatch.setattr(_pool, "_POOL", None)
    item = _transport.wrap({"X": torch.ones(1 << 16)})
    assert type(copy.copy(item)) is type(item)
    assert type(copy.deepcopy(item)) is dict
    assert _pool._POOL is None  # no chunk was taken
