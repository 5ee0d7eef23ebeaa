"""Test bodies for pescador.tf, run in the TensorFlow backend's worker process (see
framework_worker.py; tests/test_tf.py calls them)."""

from __future__ import annotations

import doctest
import multiprocessing
import time
from typing import Any

import numpy as np
import tensorflow as tf

import pescador
from pescador.tf import to_dataset

ROWS = 4


def every_kind(n: int = 3, last: int = 2):
    """Batches holding every kind of value; the last batch is partial."""
    rng = np.random.default_rng(0)
    for i in range(n):
        rows = ROWS if i < n - 1 else last
        yield {
            "f16": rng.random((rows, 2)).astype(np.float16),
            "f32": rng.random((rows, 3, 2), dtype=np.float32),
            "f64": rng.random(rows),
            "i8": rng.integers(-5, 5, rows).astype(np.int8),
            "u16": rng.integers(0, 500, (rows, 2)).astype(np.uint16),
            "i64": np.arange(rows),
            "c64": (rng.random(rows) + 1j).astype(np.complex64),
            "bool": rng.random(rows) < 0.5,
            "text": np.array([f"row{r}" for r in range(rows)]),
            "raw": np.array([b"x" * r for r in range(rows)]),
            "pair": (np.zeros((rows, 1), np.float32), [np.ones(rows, np.int32), "tag"]),
            "count": i,
            "weight": 0.5,
            "flag": True,
            "name": f"batch{i}",
            "scalar": np.float32(i),
        }


EXPECTED = {
    "f16": ((None, 2), tf.float16),
    "f32": ((None, 3, 2), tf.float32),
    "f64": ((None,), tf.float64),
    "i8": ((None,), tf.int8),
    "u16": ((None, 2), tf.uint16),
    "i64": ((None,), tf.int64),
    "c64": ((None,), tf.complex64),
    "bool": ((None,), tf.bool),
    "text": ((None,), tf.string),
    "raw": ((None,), tf.string),
    "count": ((), tf.int64),
    "weight": ((), tf.float64),
    "flag": ((), tf.bool),
    "name": ((), tf.string),
    "scalar": ((), tf.float32),
}


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO":
        return [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
    if isinstance(value, np.ndarray) and value.dtype.kind == "U":
        return value.tolist()
    return value


def signature_and_values() -> dict[str, Any]:
    """The inferred signature for every kind of value, and every value back as it went in
    (the partial last batch included)."""
    dataset = to_dataset(pescador.Streamer(every_kind))
    spec = dataset.element_spec
    for key, (shape, dtype) in EXPECTED.items():
        got = spec[key]
        assert (tuple(got.shape.as_list()) if got.shape.rank else (), got.dtype) == (
            shape,
            dtype,
        ), (key, got)
    assert isinstance(spec["pair"], tuple) and isinstance(spec["pair"][1], tuple)
    assert spec["pair"][1][1].dtype == tf.string
    items = list(dataset.as_numpy_iterator())
    expected = list(every_kind())
    assert len(items) == len(expected) == 3
    for got, want in zip(items, expected, strict=True):
        for key in EXPECTED:
            a, b = _plain(got[key]), _plain(want[key])
            assert np.array_equal(a, b), (key, a, b)
            assert np.asarray(got[key]).shape == np.asarray(want[key]).shape
        assert np.array_equal(got["pair"][1][0], want["pair"][1][0])
    assert items[-1]["i64"].shape == (2,)
    return {key: str(spec[key].dtype.name) for key in EXPECTED}


def tuples_and_arrays() -> list[Any]:
    """Tuple items (as keras_tuples gives, with lists of several keys) and bare arrays."""
    items = [{"a": np.ones((2, 3), np.float32), "b": np.zeros(2), "y": np.arange(2)}] * 2
    pairs = to_dataset(pescador.Streamer(pescador.keras_tuples, items, ["a", "b"], "y"))
    x, y = pairs.element_spec
    assert isinstance(x, tuple) and x[0].shape.as_list() == [None, 3]
    assert y.dtype == tf.int64
    got = list(pairs.as_numpy_iterator())
    assert len(got) == 2 and np.array_equal(got[0][1], np.arange(2))
    arrays = to_dataset(pescador.Streamer([np.arange(3), np.arange(5)]))
    assert arrays.element_spec.shape.as_list() == [None]
    return [len(v) for v in arrays.as_numpy_iterator()]


def endless(tag: int, rng=pescador.ACTIVATION_RNG):
    j = 0
    while True:
        yield {"tag": tag, "j": j, "X": rng.random(2)}
        j += 1


def restarts_each_iteration() -> None:
    """Each iteration of the dataset is a fresh iteration of the stream: a seeded stream
    gives the same items every time, the stream's own first items."""
    streams = [pescador.Streamer(endless, i) for i in range(5)]
    mux = pescador.StochasticMux(streams, n_active=2, rate=3, random_state=7)
    dataset = to_dataset(mux)

    def firsts(ds: Any) -> list[tuple[int, int]]:
        return [(int(d["tag"]), int(d["j"])) for d in ds.take(12)]

    expected = [(d["tag"], d["j"]) for d in mux.iterate(max_iter=12)]
    assert firsts(dataset) == expected
    assert firsts(dataset) == expected  # again: restarted, not continued
    it1, it2 = iter(dataset), iter(dataset)  # two at once are independent
    assert [int(next(it1)["j"]) for _ in range(3)] == [int(next(it2)["j"]) for _ in range(3)]


def signature_given_reads_nothing() -> None:
    """With an output_signature, nothing is read until the dataset is iterated."""
    started = []

    def gen():
        started.append(True)
        yield np.zeros(3, np.float32)

    dataset = to_dataset(pescador.Streamer(gen), tf.TensorSpec((3,), tf.float32))
    assert not started
    assert [v.shape for v in dataset.as_numpy_iterator()] == [(3,)]
    assert started == [True]


def _children_gone(timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not multiprocessing.active_children()


def parallel_workers(start_method: str | None = "forkserver") -> int:
    """n_workers: the stream runs in ParallelStreamer workers, every item once, and no worker
    outlives the iteration (finished, or dropped half-way). The generator is conftest's: the
    workers import its module, which must not be this one (it imports TensorFlow)."""
    from conftest import letters

    streams = [pescador.Streamer(letters, t, 5) for t in "abcdef"]
    dataset = to_dataset(pescador.ChainMux(streams), n_workers=2, start_method=start_method)
    got = sorted(v.decode() for v in dataset.as_numpy_iterator())
    assert got == [f"{t}{j}" for t in "abcdef" for j in range(5)], got
    assert _children_gone(), multiprocessing.active_children()
    # Dropped half-way: a stream too long for the workers to finish while we look.
    endless = [pescador.Streamer(letters, t, 10**7) for t in "abcdef"]
    dataset = to_dataset(pescador.ChainMux(endless), n_workers=2, start_method=start_method)
    it = iter(dataset)
    next(it)
    assert multiprocessing.active_children()
    del it
    assert _children_gone(), multiprocessing.active_children()
    return len(got)


def errors() -> dict[str, str]:
    out = {}
    try:
        to_dataset(pescador.Streamer([]))
    except pescador.PescadorError as exc:
        assert "yielded no item" in str(exc)
        out["empty"] = str(exc)
    else:
        raise AssertionError("an empty stream gave a dataset")
    try:
        to_dataset(pescador.Streamer([{"bad": np.array([object()])}]))
    except pescador.DataError as exc:
        assert "item['bad'] has dtype object" in str(exc), str(exc)
        out["dtype"] = str(exc)
    else:
        raise AssertionError("an object array gave a dataset")
    mismatched = [{"X": np.zeros((2, 3))}, {"X": np.zeros((2, 4))}]
    try:
        list(to_dataset(pescador.Streamer(mismatched)))
    except tf.errors.InvalidArgumentError as exc:
        out["shape"] = type(exc).__name__
    else:
        raise AssertionError("an item that does not fit the signature went through")
    return out


def keras_fit() -> float:
    """Keras (TensorFlow backend) trains on a to_dataset of (x, y) tuples."""
    import keras

    def line(rng=pescador.ACTIVATION_RNG):
        while True:
            x = rng.random((16, 1), dtype=np.float32)
            yield {"x": x, "y": 3 * x + 1}

    pairs = pescador.Streamer(pescador.keras_tuples, pescador.Streamer(line), "x", "y")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.2), "mse")
    history = model.fit(to_dataset(pairs), steps_per_epoch=40, epochs=2, shuffle=False, verbose=0)
    first, last = history.history["loss"]
    assert last < first / 4, history.history
    return last


def doctests() -> tuple[int, int]:
    import pescador.tf

    result = doctest.testmod(
        pescador.tf, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.failed == 0 and result.attempted > 0, result
    return result.failed, result.attempted
