"""Exact resume of a StreamDataset under torchdata's StatefulDataLoader: prefetched batches
neither lost nor repeated, any snapshot interval, twice in a row, across epochs; states from
another configuration refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

import pescador

torch = pytest.importorskip("torch")
stateful = pytest.importorskip("torchdata.stateful_dataloader")
StatefulDataLoader = stateful.StatefulDataLoader

from pescador.torch import StreamDataset  # noqa: E402

# torchdata 0.11 calls a deprecated torch function when it builds a loader.
pytestmark = pytest.mark.filterwarnings("ignore:'set_vital' is deprecated:UserWarning")

CONFIGS = [(1, 0), (1, 2), (2, 1), (2, 2)]  # (world_size, num_workers)


def endless(tag: int, rng=pescador.ACTIVATION_RNG):
    j = 0
    while True:
        yield {"tag": tag, "j": j, "X": rng.random(3)}
        j += 1


def counting(tag: int, n: int):
    for j in range(n):
        yield {"tag": tag, "j": j, "X": np.full(3, j, np.float64)}


def random_dataset(rank, world_size, samples_per_epoch=24):
    streams = [pescador.Streamer(endless, i) for i in range(6)]
    mux = pescador.StochasticMux(streams, n_active=4, rate=3, random_state=5)
    return StreamDataset(
        mux, rank=rank, world_size=world_size, samples_per_epoch=samples_per_epoch
    )


def finite_dataset(rank, world_size):
    streams = [pescador.Streamer(counting, i, 3 + i) for i in range(5)]
    mux = pescador.StochasticMux(streams, n_active=2, rate=2, mode="exhaustive", random_state=1)
    return StreamDataset(pescador.Streamer(pescador.buffer_stream, mux, 2, partial=True))


def fingerprint(batch) -> tuple:
    """A batch as plain values (tensors compared exactly)."""
    if isinstance(batch, dict):
        return tuple((k, fingerprint(batch[k])) for k in sorted(batch))
    if isinstance(batch, torch.Tensor):
        return (tuple(batch.shape), tuple(batch.flatten().tolist()))
    return (batch,)


def loader_for(dataset, num_workers, **options):
    return StatefulDataLoader(dataset, num_workers=num_workers, **options)


def interrupted(make, num_workers, stops, options):
    """Take ``stops[0]`` batches, save, resume in a new loader (and dataset), take
    ``stops[1]``, save, resume again, ... then the rest: every batch delivered, in order."""
    state = None
    seen = []
    for stop in [*stops, None]:
        loader = loader_for(make(), num_workers, **options)
        if state is not None:
            loader.load_state_dict(state)
        it = iter(loader)
        if stop is None:
            seen += [fingerprint(b) for b in it]
        else:
            seen += [fingerprint(next(it)) for _ in range(stop)]
            state = loader.state_dict()
            json.dumps(state)  # a plain structure
        del it, loader
    return seen


@pytest.mark.parametrize(("world_size", "num_workers"), CONFIGS)
@pytest.mark.parametrize(
    ("every", "batch_size"), [(1, None), (3, None), (2, 2)], ids=["snap1", "snap3", "batch2"]
)
def test_resume_equals_the_uninterrupted_run(world_size, num_workers, every, batch_size):
    rank = world_size - 1
    options = {"snapshot_every_n_steps": every, "batch_size": batch_size}

    def make():
        return random_dataset(rank, world_size)

    full = [fingerprint(b) for b in loader_for(make(), num_workers, **options)]
    assert len(full) == (12 if batch_size is None else 6) * (2 // world_size)
    third = len(full) // 3
    for stops in ([0], [1], [len(full) // 2], [third, third]):  # resumed twice in a row
        assert interrupted(make, num_workers, stops, options) == full, stops


@pytest.mark.parametrize(("world_size", "num_workers"), [(1, 0), (2, 2)])
def test_resume_of_a_finite_stream_to_its_end(world_size, num_workers):
    def make():
        return finite_dataset(world_size - 1, world_size)

    options = {"batch_size": None}
    full = [fingerprint(b) for b in loader_for(make(), num_workers, **options)]
    for stops in ([2], [len(full)], [1, 1]):
        assert interrupted(make, num_workers, stops, options) == full, stops


@pytest.mark.parametrize(("num_workers", "persistent"), [(0, False), (2, False), (2, True)])
def test_resume_across_set_epoch(num_workers, persistent):
    options = {"batch_size": None, "persistent_workers": persistent}

    def epochs(dataset, loader, first, last, stop=None):
        out = []
        for epoch in range(first, last):
            dataset.set_epoch(epoch)
            for i, batch in enumerate(loader):
                out.append((epoch, fingerprint(batch)))
                if epoch == first and i + 1 == stop:
                    return out, loader.state_dict()
        return out, None

    ds = random_dataset(0, 1)
    full, _ = epochs(ds, loader_for(ds, num_workers, **options), 0, 3)
    ds = random_dataset(0, 1)
    head, state = epochs(ds, loader_for(ds, num_workers, **options), 1, 3, stop=7)
    assert head == full[24:31]
    ds = random_dataset(0, 1)
    loader = loader_for(ds, num_workers, **options)
    loader.load_state_dict(state)
    ds.set_epoch(1)
    rest, _ = epochs(ds, loader, 1, 3)
    assert head + rest == full[24:]


def test_a_state_saved_at_the_end_of_an_epoch_starts_the_next():
    ds = random_dataset(0, 1, samples_per_epoch=6)
    loader = loader_for(ds, 2, batch_size=None)
    ds.set_epoch(0)
    list(loader)
    state = loader.state_dict()
    ds.set_epoch(1)
    expected = [fingerprint(b) for b in loader]
    ds = random_dataset(0, 1, samples_per_epoch=6)
    loader = loader_for(ds, 2, batch_size=None)
    loader.load_state_dict(state)
    ds.set_epoch(1)
    assert [fingerprint(b) for b in loader] == expected


@pytest.mark.parametrize(
    ("saved", "loaded", "match"),
    [
        ((2, 1), (1, 1), "world_size=2 in the state, 1 here"),
        ((1, 2), (1, 1), "num_workers=2 in the state, 1 here"),
        ((1, 0), (2, 0), "world_size=1 in the state, 2 here"),
    ],
)
def test_a_state_from_another_configuration_is_refused(saved, loaded, match):
    loader = loader_for(random_dataset(0, saved[0]), saved[1], batch_size=None)
    it = iter(loader)
    next(it)
    state = loader.state_dict()
    del it, loader
    loader = loader_for(random_dataset(0, loaded[0]), loaded[1], batch_size=None)
    loader.load_state_dict(state)
    try:
        iter(loader)
    except pescador.StateError as exc:
        # Drop the traceback, which holds the half-built iterator in a reference cycle: left
        # to the garbage collector, torch's shutdown of its workers waits 5 s per worker.
        exc.__traceback__ = None
        assert match in str(exc)
    else:
        raise AssertionError("the state was accepted")


def state_after_one_item(dataset, num_workers):
    loader = loader_for(dataset, num_workers, batch_size=None)
    it = iter(loader)
    next(it)
    state = loader.state_dict()
    del it, loader
    return state


@pytest.mark.parametrize(("saved", "loaded"), [(0, 2), (2, 0), (2, 1)])
def test_load_loader_state_refuses_another_num_workers(saved, loaded):
    state = state_after_one_item(random_dataset(0, 1), saved)
    loader = loader_for(random_dataset(0, 1), loaded, batch_size=None)
    with pytest.raises(
        pescador.StateError, match=f"num_workers={saved} in the state, {loaded} here"
    ):
        pescador.torch.load_loader_state(loader, state)
    # Refused before anything was loaded: the loader starts afresh.
    assert loader.next_iter_state is None


@pytest.mark.parametrize(
    ("saved", "loaded", "match"),
    [
        ((2, 2), (1, 2), "world_size=2 in the state, 1 here"),
        ((1, 0), (2, 0), "world_size=1 in the state, 2 here"),
    ],
)
def test_load_loader_state_refuses_another_world_size(saved, loaded, match):
    state = state_after_one_item(random_dataset(0, saved[0]), saved[1])
    loader = loader_for(random_dataset(0, loaded[0]), loaded[1], batch_size=None)
    with pytest.raises(pescador.StateError, match=match):
        pescador.torch.load_loader_state(loader, state)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_load_loader_state_resumes_a_state_that_fits(num_workers):
    options = {"batch_size": None}
    full = [fingerprint(b) for b in loader_for(random_dataset(0, 1), num_workers, **options)]
    loader = loader_for(random_dataset(0, 1), num_workers, **options)
    it = iter(loader)
    head = [fingerprint(next(it)) for _ in range(5)]
    state = json.loads(json.dumps(loader.state_dict()))  # as a checkpoint file returns it
    del it, loader
    loader = loader_for(random_dataset(0, 1), num_workers, **options)
    pescador.torch.load_loader_state(loader, state)
    assert head + [fingerprint(b) for b in loader] == full
    pescador.torch.load_loader_state(loader, {})  # torchdata's "start afresh"
    assert [fingerprint(b) for b in loader] == full
    with pytest.raises(pescador.StateError, match="is a dict"):
        pescador.torch.load_loader_state(loader, [state])


def test_the_dataset_iterator_refuses_a_foreign_state_and_a_late_load():
    it = iter(random_dataset(0, 1))
    with pytest.raises(pescador.StateError, match="not the state"):
        it.load_state_dict({"kind": "StochasticMux"})
    state = it.state_dict()
    other = iter(random_dataset(0, 1, samples_per_epoch=12))
    with pytest.raises(pescador.StateError, match="samples_per_epoch=24 in the state, 12 here"):
        other.load_state_dict(state)
    next(it)
    with pytest.raises(pescador.StateError, match="before the first item"):
        it.load_state_dict(state)
