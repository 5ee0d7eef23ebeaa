"""Test bodies for pescador.keras, run in a worker process with a Keras backend (see
framework_worker.py; tests/test_keras.py calls them). Each returns nothing or plain values and
raises AssertionError (with a message: no pytest rewriting here) when a check fails."""

from __future__ import annotations

import doctest
import json
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

import pescador
from pescador.keras import Checkpoint, StreamDataset

BACKEND = keras.backend.backend()
if BACKEND == "torch":
    import torch

    torch.set_num_threads(1)  # bit-identical arithmetic from run to run

W = np.array([[2.0], [-1.0]], np.float32)
ROWS = 8  # rows per batch


# ------------------------------------------------------------------------------ data
def batches(tag: int, rng=pescador.ACTIVATION_RNG):
    """Endless batches of a noiseless line; column 0 of ``x`` is the batch's id."""
    j = 0
    while True:
        features = rng.random((ROWS, 2), dtype=np.float32)
        ident = np.full((ROWS, 1), tag * 10_000 + j, np.float32)
        yield {"x": np.hstack([ident, features]), "y": features @ W + 0.5}
        j += 1


def train_stream(seed: int = 0) -> Any:
    streams = [pescador.Streamer(batches, tag) for tag in range(1, 5)]
    return pescador.StochasticMux(streams, n_active=2, rate=4, random_state=seed)


# ------------------------------------------------------------------------------ the model
SEEN: dict[str, list[float]] = {"train": [], "val": []}


class Recorder(keras.layers.Layer):
    """Records the id of every batch the model runs on (run_eagerly), then drops the id.

    Ids are >= 1000: Keras also runs layers on placeholder data (ones) to infer shapes."""

    def call(self, x: Any, training: Any = None) -> Any:
        if not isinstance(x, keras.KerasTensor):
            ident = float(keras.ops.convert_to_numpy(x[0, 0]))
            if ident >= 1000:
                SEEN["train" if training else "val"].append(ident)
        return x[:, 1:]


def make_model(lr: float = 0.1) -> Any:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), Recorder(), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(lr, momentum=0.5), "mse", run_eagerly=True)
    return model


def reset() -> None:
    SEEN["train"].clear()
    SEEN["val"].clear()


class Crash(Exception):
    pass


class CrashAt(keras.callbacks.Callback):
    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.count = at, 0

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.count += 1
        if self.count == self.at:
            raise Crash(f"killed after {self.at} batches")


class EpochMarks(keras.callbacks.Callback):
    """Splits SEEN['val'] by epoch (validation runs before on_epoch_end)."""

    def __init__(self) -> None:
        super().__init__()
        self.val: list[list[float]] = []

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        done = sum(map(len, self.val))
        self.val.append(SEEN["val"][done:])


def weights(model: Any) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.get_weights()]


# ------------------------------------------------------------------------------ cases
def fit_learns() -> tuple[float, float]:
    """A fit on the stream learns the line: the loss falls by more than 10x."""
    reset()
    model = make_model()
    train = StreamDataset(train_stream(), "x", "y")
    history = model.fit(train, steps_per_epoch=30, epochs=3, shuffle=False, verbose=0)
    first, last = history.history["loss"][0], history.history["loss"][-1]
    assert last < first / 10, f"loss {first} -> {last}"
    assert len(SEEN["train"]) == 90, len(SEEN["train"])
    # the batches trained are the stream's first 90, in order
    expected = [b["x"][0, 0] for b in train_stream().iterate(max_iter=90)]
    assert SEEN["train"] == expected, "fit did not train on the stream's batches in order"
    return first, last


def resume_matches(workdir: str) -> int:
    """Killed mid-epoch after a checkpoint, then resumed: the batches trained and the final
    weights are those of the uninterrupted run."""
    steps, epochs, every, crash_at = 6, 3, 4, 10  # last save at 8: epoch 1, step 2
    root = Path(workdir)

    reset()
    model = make_model()
    reference = Checkpoint(
        root / "reference", StreamDataset(train_stream(), "x", "y"), every=every
    )
    reference.fit(model, epochs=epochs, steps_per_epoch=steps, verbose=0)
    expected, final = list(SEEN["train"]), weights(model)
    assert len(expected) == steps * epochs

    reset()
    model = make_model()
    checkpoint = Checkpoint(root / "run", StreamDataset(train_stream(), "x", "y"), every=every)
    try:
        checkpoint.fit(
            model, epochs=epochs, steps_per_epoch=steps, verbose=0, callbacks=[CrashAt(crash_at)]
        )
    except Crash:
        pass
    else:
        raise AssertionError("the run was not interrupted")
    before = list(SEEN["train"])
    assert len(before) == crash_at, before
    record = json.loads((root / "run" / "checkpoint.json").read_text())
    assert (record["epoch"], record["step"], record["trained"]) == (1, 2, 8), record

    reset()
    checkpoint = Checkpoint(root / "run", StreamDataset(train_stream(), "x", "y"), every=every)
    model = checkpoint.restore(custom_objects={"Recorder": Recorder})
    assert model is not None
    checkpoint.fit(model, epochs=epochs, steps_per_epoch=steps, verbose=0)
    resumed = list(SEEN["train"])
    assert before[:8] + resumed == expected, (before, resumed, expected)
    for a, b in zip(weights(model), final, strict=True):
        assert np.array_equal(a, b), "the resumed weights differ from the uninterrupted run's"
    return len(resumed)


def fits_continue_exactly() -> None:
    """With a Checkpoint, a second fit continues after the last batch trained by the first
    (TensorFlow reads ahead: those batches are not lost), and the state after each fit is the
    state after its last trained batch (here rebuilt by replaying the stream: with no saves
    planned, no state was kept when batch 10 was read)."""
    reset()
    model = make_model()
    train = StreamDataset(train_stream(), "x", "y")
    checkpoint = Checkpoint(None, train, at_epoch_end=False)
    model.fit(train, steps_per_epoch=5, epochs=2, callbacks=[checkpoint], shuffle=False, verbose=0)
    state = checkpoint.state_dict()
    model.fit(train, steps_per_epoch=7, epochs=1, callbacks=[checkpoint], shuffle=False, verbose=0)
    expected = [b["x"][0, 0] for b in train_stream().iterate(max_iter=17)]
    assert SEEN["train"] == expected, (SEEN["train"], expected)
    assert state["trained"] == 10 and state["data"]["batches"] == 10
    after = train_stream().iterate(state=state["data"]["stream"])
    assert [next(after)["x"][0, 0] for _ in range(7)] == expected[10:]


def data_gen(filename: str, m: int):
    """The seeds' validation generator: the first m examples of an npz file."""
    data = np.load(filename)
    X = data["X"]
    Y = data["Y"]
    for i in range(m):
        yield dict(X=X[i], y=Y[i])


def validation_identical(workdir: str) -> list[int]:
    """The seeds' ChainMux(mode='cycle') validation stream, batched: every epoch's
    validation sees the same batches, the stream's first ones."""
    rng = np.random.default_rng(0)
    val_files = []
    for k in range(3):
        path = os.path.join(workdir, f"val{k}.npz")
        X = rng.random((20, 3), dtype=np.float32)
        X[:, 0] = 1000 + k * 100 + np.arange(20)  # the example's id
        np.savez(path, X=X, Y=rng.random((20, 1), dtype=np.float32))
        val_files.append(path)
    N, M = len(val_files), 10
    val_streams = [pescador.Streamer(data_gen, fn, M) for fn in val_files]
    val_stream = pescador.ChainMux(val_streams, mode="cycle")
    val_batches = pescador.Streamer(pescador.buffer_stream, val_stream, 4)
    steps = 5  # 20 of the N * M = 30 examples: a cycle-aligned count is not needed
    val = StreamDataset(val_batches, "X", "y", steps=steps)

    reset()
    model = make_model()
    marks = EpochMarks()
    train = StreamDataset(train_stream(), "x", "y")
    model.fit(
        train,
        steps_per_epoch=4,
        epochs=3,
        validation_data=val,
        callbacks=[marks],
        shuffle=False,
        verbose=0,
    )
    expected = [b["X"][0, 0] for b in val_batches.iterate(max_iter=steps)]
    assert len(marks.val) == 3
    for epoch, seen in enumerate(marks.val):
        assert seen == expected, f"epoch {epoch}: validation saw {seen}, expected {expected}"
    losses = [model.evaluate(val, verbose=0) for _ in range(2)]
    assert losses[0] == losses[1], losses
    assert N * M == 30
    return [int(v) - 1000 for v in expected]


def item_kinds() -> dict[str, Any]:
    """Every item kind reaches the model with its shapes and dtypes: tuples, dicts with lists
    of keys, dicts {input name: key}, sample weights, integer labels, float16 and bool
    inputs."""
    rng = np.random.default_rng(0)

    def items(n=4):
        for _ in range(n):
            yield {
                "a": rng.random((ROWS, 3), dtype=np.float32),
                "b": rng.random((ROWS, 2)).astype(np.float16),
                "mask": rng.random((ROWS, 1)) < 0.5,
                "label": rng.integers(0, 3, ROWS),
                "w": np.where(rng.random(ROWS) < 0.5, 0.0, 1.0).astype(np.float32),
            }

    report: dict[str, Any] = {}
    data = list(items())

    # tuples, as keras_tuples gives
    pairs = StreamDataset(pescador.keras_tuples(data, "a", "label"))
    x, y = pairs[0]
    assert x.dtype == np.float32 and x.shape == (ROWS, 3) and y.dtype == np.int64
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(pairs, steps_per_epoch=4, epochs=1, shuffle=False, verbose=0)
    report["tuple"] = [x.shape, str(y.dtype)]

    # a list of inputs, and sample weights: (x, y, sample_weight)
    weighted = StreamDataset(pescador.Streamer(data), ["a", "b", "mask"], "label", "w")
    x, y, w = weighted[0]
    assert isinstance(x, tuple) and [v.dtype for v in x] == [np.float32, np.float16, np.bool_]
    assert w.shape == (ROWS,)
    ins = [keras.Input((3,)), keras.Input((2,)), keras.Input((1,))]
    cast = [keras.ops.cast(t, "float32") for t in ins]
    out = keras.layers.Dense(3)(keras.layers.Concatenate()(cast))
    model = keras.Model(ins, out)
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(weighted, steps_per_epoch=4, epochs=1, shuffle=False, verbose=0)
    report["list"] = [v.shape for v in x]

    # named inputs: a dict {input name: key}
    named = StreamDataset(pescador.Streamer(data), {"first": "a", "second": "b"}, "label")
    x, y = named[0]
    assert set(x) == {"first", "second"} and x["second"].dtype == np.float16
    a, b = keras.Input((3,), name="first"), keras.Input((2,), name="second")
    out = keras.layers.Dense(3)(keras.layers.Concatenate()([a, keras.ops.cast(b, "float32")]))
    model = keras.Model({"first": a, "second": b}, out)
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(named, steps_per_epoch=4, epochs=1, shuffle=False, verbose=0)
    report["dict"] = sorted(x)

    # zero sample weights: no gradient from those rows
    zero = [dict(d, w=np.zeros(ROWS, np.float32)) for d in data]
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    before = weights(model)
    model.fit(
        StreamDataset(pescador.Streamer(zero), "a", "label", "w"),
        steps_per_epoch=4,
        epochs=1,
        shuffle=False,
        verbose=0,
    )
    assert all(np.array_equal(p, q) for p, q in zip(before, weights(model), strict=True))
    return report


def errors() -> dict[str, str]:
    """What goes wrong says what to do."""
    out = {}
    model = make_model()

    def expect(text: str, action: Any) -> str:
        try:
            action()
        except Exception as exc:  # TensorFlow wraps errors raised while reading data
            message = str(exc)
            assert text in message, f"{text!r} not in {message!r}"
            return type(exc).__name__
        raise AssertionError(f"no error (expected {text!r})")

    finite = StreamDataset(train_stream().iterate(max_iter=3), "x", "y")
    out["ended"] = expect(
        "the stream ended after 3 batches",
        lambda: model.fit(finite, steps_per_epoch=5, epochs=1, shuffle=False, verbose=0),
    )
    shuffled = StreamDataset(train_stream(), "x", "y", steps=5)
    out["shuffle"] = expect(
        "pass shuffle=False", lambda: model.fit(shuffled, epochs=1, shuffle=True, verbose=0)
    )
    missing = StreamDataset(train_stream(), "x", "Y")
    out["key"] = expect(
        "an item has no key 'Y'",
        lambda: model.fit(missing, steps_per_epoch=2, epochs=1, shuffle=False, verbose=0),
    )
    out["generator"] = expect(
        "Unrecognized data type",
        lambda: model.fit(pescador.keras_tuples(train_stream(), "x", "y"), steps_per_epoch=2),
    )
    train = StreamDataset(train_stream(), "x", "y")
    checkpoint = Checkpoint(None, train)
    out["steps"] = expect(
        "fit needs steps_per_epoch",
        lambda: model.fit(train, epochs=1, callbacks=[checkpoint], shuffle=False, verbose=0),
    )
    for bad, text in [
        (lambda: StreamDataset(train_stream(), "x", steps=0), "steps=0"),
        (lambda: StreamDataset(train_stream(), 3.5), "inputs=3.5"),
        (lambda: StreamDataset(train_stream(), "x", None, "w"), "needs outputs"),
        (lambda: Checkpoint(None, StreamDataset(train_stream(), "x", steps=2)), "steps=2"),
        (lambda: Checkpoint(None, train), "already has a Checkpoint"),
        (lambda: Checkpoint(None, train_stream()), "expected a pescador.keras.StreamDataset"),
        (lambda: setattr(train, "workers", 4), "workers=4"),
        (lambda: setattr(train, "use_multiprocessing", True), "use_multiprocessing=True"),
    ]:
        try:
            bad()
        except pescador.PescadorError as exc:
            assert text in str(exc), (text, str(exc))
        else:
            raise AssertionError(f"no error for {text}")
    return out


def doctests() -> tuple[int, int]:
    """The docstring examples of pescador.keras."""
    result = doctest.testmod(
        pescador.keras, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    failed, attempted = result.failed, result.attempted
    assert failed == 0, f"{failed} doctest(s) failed"
    assert attempted > 0
    return failed, attempted


def readme(workdir: str) -> float:
    """The README's Keras example runs as written (in ``workdir``: it saves a checkpoint),
    and a second run resumes from its checkpoint instead of starting over."""
    import re

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = text.split("## Keras 3 and tf.data", 1)[1].split("\n## ", 1)[0]
    code = "\n".join(re.findall(r"```python\n(.*?)```", section, re.S))
    assert "Checkpoint" in code
    here = os.getcwd()
    os.chdir(workdir)
    try:
        first: dict[str, Any] = {"__name__": "readme_keras"}
        exec(compile(code, "README.md", "exec"), first)
        again: dict[str, Any] = {"__name__": "readme_keras"}
        exec(compile(code, "README.md", "exec"), again)
    finally:
        os.chdir(here)
    assert first["checkpoint"].trained == 300
    assert again["checkpoint"].trained == 300  # restored at the end: nothing left to train
    loss = first["model"].evaluate(first["val"], verbose=0)
    assert loss < 0.01, loss
    return float(loss)
