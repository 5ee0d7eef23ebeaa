"""Train a small Keras 3 model on the demo corpus, checkpoint model, optimizer and data, kill
the process mid-epoch, resume, and check that nothing changed.

The data: ``pescador demo``'s synthetic corpus (NPZ files of ``X`` features), read as windows
of consecutive rows by ``pescador.io``, mixed by a ``StochasticMux`` and batched by
``buffer_stream``. ``pescador.keras.StreamDataset`` feeds the batches to ``model.fit``
(``inputs="X", outputs="X"``: a small MLP learns the mean of a window's rows from the window,
the loss computing the target from ``X``), and a fixed validation set (the first files, read
in order by a ``ChainMux``, restarted for each evaluation: ``steps=``) is scored at every
epoch's end.

``pescador.keras.Checkpoint`` saves the model (with its optimizer) and the data state that
matches it every few batches and at each epoch's end (Keras reads batches ahead of training: the
callback keeps the state after the last *trained* batch). The script demonstrates a restart,
in three separate processes:

1. ``reference``: train for ``--epochs`` epochs without interruption;
2. ``crash``: the same run, killed abruptly (``os._exit``) a few batches after a checkpoint,
   in the middle of an epoch, with batches read ahead that were never trained;
3. ``resume``: a new process restores the checkpoint and ``Checkpoint.fit`` trains to the end
   (it first finishes the interrupted epoch),

and checks that the final weights are bit-identical to the uninterrupted run's (they depend on
every batch trained, in order) and that every epoch's validation loss is the same. Run it with
any Keras backend::

    KERAS_BACKEND=torch python examples/keras_train.py [--workdir DIR] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import pescador
import pescador.io
from pescador.cli import write_corpus

FEATURES = 16
WINDOW = 8
BATCH = 16
STEPS_PER_EPOCH = 10
SAVE_EVERY = 7  # not a multiple of the epoch: checkpoints mid-epoch too
VALIDATION_FILES = 3


# ------------------------------------------------------------------------------ the data
def datasets(corpus: Path) -> tuple[Any, Any]:
    from pescador.keras import StreamDataset

    files = sorted(str(p) for p in corpus.glob("*.npz"))
    train_files, val_files = files[VALIDATION_FILES:], files[:VALIDATION_FILES]
    streams = pescador.io.npz_streamers(train_files, WINDOW, keys=["X"])
    mux = pescador.StochasticMux(streams, n_active=8, rate=8, random_state=0)
    train = StreamDataset(pescador.Streamer(pescador.buffer_stream, mux, BATCH), "X", "X")
    # validation: the same windows every epoch (a seeded ChainMux restarted each evaluation)
    val_streams = pescador.io.npz_streamers(val_files, WINDOW, keys=["X"])
    val_mux = pescador.ChainMux(val_streams, mode="cycle", random_state=1)
    val_batches = pescador.Streamer(pescador.buffer_stream, val_mux, BATCH)
    return train, StreamDataset(val_batches, "X", "X", steps=4)


# ------------------------------------------------------------------------------ training
def train(workdir: Path, epochs: int, crash_at: int | None = None) -> None:
    """One run (in its own process: Keras is imported here, with the backend that
    ``KERAS_BACKEND`` names), resuming from the checkpoint if there is one."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ log noise
    import keras

    from pescador.keras import Checkpoint

    if keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(1)  # bit-identical arithmetic from run to run

    @keras.saving.register_keras_serializable(package="keras_train")
    def window_mean_error(windows: Any, predicted: Any) -> Any:
        """Squared error of the prediction against the mean of the window's rows."""
        return keras.ops.mean(keras.ops.square(predicted - keras.ops.mean(windows, axis=1)))

    class CrashAt(keras.callbacks.Callback):
        """Kills the process, as a power cut would: no cleanup, batches read ahead lost."""

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if checkpoint.trained == crash_at:
                os._exit(3)

    train_data, val_data = datasets(workdir / "corpus")
    checkpoint = Checkpoint(workdir / "checkpoint", train_data, every=SAVE_EVERY)
    model = checkpoint.restore()  # the saved model and optimizer; None on the first run
    if model is None:
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((WINDOW, FEATURES)),
                keras.layers.Flatten(),
                keras.layers.Dense(32, activation="tanh"),
                keras.layers.Dense(FEATURES),
            ]
        )
        model.compile(keras.optimizers.SGD(0.05, momentum=0.9), window_mean_error)
    else:
        print(f"  resumed at epoch {checkpoint.epoch}, step {checkpoint.step}", flush=True)
    history = checkpoint.fit(
        model,
        epochs=epochs,
        steps_per_epoch=STEPS_PER_EPOCH,
        validation_data=val_data,
        callbacks=[] if crash_at is None else [CrashAt()],
        verbose=0,
    )
    weights = {f"w{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    np.savez(workdir / "final.npz", **weights)
    (workdir / "history.json").write_text(json.dumps(history.history))
    print(f"  Keras {keras.__version__}, backend {keras.backend.backend()}", flush=True)


# ------------------------------------------------------------------------------ the demo
def run_phase(workdir: Path, epochs: int, crash_at: int | None = None) -> int:
    command = [sys.executable, __file__, "--phase", "train", "--workdir", str(workdir)]
    command += ["--epochs", str(epochs)]
    if crash_at is not None:
        command += ["--crash-at", str(crash_at)]
    return subprocess.run(command, check=False, timeout=600).returncode


def demo(workdir: Path, epochs: int) -> bool:
    (workdir / "corpus").mkdir()
    write_corpus(workdir / "corpus", files=12, rows=200, features=FEATURES)
    for where in ("reference", "restarted"):
        (workdir / where).mkdir()
        (workdir / where / "corpus").symlink_to(workdir / "corpus")
    steps = epochs * STEPS_PER_EPOCH
    crash_at = SAVE_EVERY * max(1, steps // (2 * SAVE_EVERY)) + 3  # 3 after a checkpoint
    phases = [
        (f"reference: {epochs} epochs of {STEPS_PER_EPOCH} steps", "reference", None, 0),
        (
            f"crash:     killed after step {crash_at}, 3 after a checkpoint",
            "restarted",
            crash_at,
            3,
        ),
        ("resume:    from the checkpoint to the end", "restarted", None, 0),
    ]
    for text, where, crash, status in phases:
        print(text, flush=True)
        if run_phase(workdir / where, epochs, crash) != status:
            raise SystemExit(f"the phase {text.split(':')[0]!r} failed")

    a, b = (
        np.load(workdir / "reference" / "final.npz"),
        np.load(workdir / "restarted" / "final.npz"),
    )
    same_weights = all(np.array_equal(a[k], b[k]) for k in a)
    ref = json.loads((workdir / "reference" / "history.json").read_text())
    resumed = json.loads((workdir / "restarted" / "history.json").read_text())
    same_validation = ref["val_loss"][-len(resumed["val_loss"]) :] == resumed["val_loss"]
    print(f"loss:      {ref['loss'][0]:.4f} in epoch 1, {ref['loss'][-1]:.4f} in epoch {epochs}")
    print(f"val_loss:  {', '.join(f'{v:.4f}' for v in ref['val_loss'])}")
    if same_weights and same_validation:
        print("resumed run matches the uninterrupted run: bit-identical weights, same val_loss")
        return True
    print("MISMATCH between the resumed and the uninterrupted run")
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="where to write (default: a temp dir)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs (default 4)")
    parser.add_argument("--phase", choices=["demo", "train"], default="demo")
    parser.add_argument("--crash-at", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "train":
        train(args.workdir, args.epochs, args.crash_at)
        return
    if args.workdir is None:
        with tempfile.TemporaryDirectory() as tmp:
            ok = demo(Path(tmp), args.epochs)
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        ok = demo(args.workdir, args.epochs)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
