"""Checkpoint a data stream next to a model, restart, and resume exactly.

A fake training loop (linear regression by SGD) reads batches from a pescador pipeline: a
``StochasticMux`` over 50 "recordings", batched by ``buffer_stream``. Every few steps it saves
the model *and the stream's state* together in one checkpoint directory, written atomically.
The script then demonstrates a restart, in three separate processes:

1. ``reference``: train for ``--steps`` steps without interruption;
2. ``crash``: the same run, killed abruptly (``os._exit``) a few steps after a checkpoint;
3. ``resume``: a new process loads the latest checkpoint and trains to the end.

and checks that the resumed run saw exactly the batches the uninterrupted run saw (the same
fingerprint at every step) and ends with bit-identical weights. Run it::

    python examples/checkpoint_training_loop.py [--workdir DIR]

Randomness: every random number of the data pipeline comes from the mux's seed, through
``pescador.ACTIVATION_RNG`` in the generator function; that is what makes resume exact. (A
generator that drew from ``np.random`` directly would resume only approximately.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import pescador

N_FEATURES = 8
BATCH = 32
CHECKPOINT_EVERY = 10
KEEP = 2  # checkpoints kept on disk
TRUE_W = np.linspace(-1.0, 1.0, N_FEATURES)


# ------------------------------------------------------------------------------ the data
def recording(index: int, rng: Any = pescador.ACTIVATION_RNG) -> Any:
    """Endless examples from one recording: features around its own offset, noisy targets.

    ``rng`` is a numpy Generator that pescador seeds for each activation from the mux's seed
    (and records in the stream's state), so the pipeline is reproducible and resumable.
    """
    offset = np.float32(index % 7 - 3)
    while True:
        x = (rng.normal(size=N_FEATURES) + offset).astype(np.float32)
        y = np.float32(x @ TRUE_W + 0.1 * rng.normal())
        yield {"X": x, "y": y}


def batches() -> pescador.Streamer:
    """The training stream: a restartable recipe (nothing runs until it is iterated)."""
    recordings = [pescador.Streamer(recording, i) for i in range(50)]
    mux = pescador.StochasticMux(recordings, n_active=8, rate=16, random_state=2024)
    return pescador.Streamer(pescador.buffer_stream, mux, BATCH)


# ------------------------------------------------------------------------------ the model
def initial_model() -> dict[str, np.ndarray]:
    return {"w": np.zeros(N_FEATURES), "b": np.zeros(1)}


def sgd_step(
    model: dict[str, np.ndarray], batch: dict[str, np.ndarray], lr: float = 0.01
) -> dict[str, np.ndarray]:
    error = batch["X"] @ model["w"] + model["b"] - batch["y"]
    return {
        "w": model["w"] - lr * (batch["X"].T @ error) / len(error),
        "b": model["b"] - lr * error.mean(keepdims=True),
    }


def fingerprint(batch: dict[str, np.ndarray]) -> str:
    return hashlib.sha1(batch["X"].tobytes() + batch["y"].tobytes()).hexdigest()[:16]


# ------------------------------------------------------------------------------ checkpoints
def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(
    root: Path, step: int, model: dict[str, np.ndarray], stream_state: dict[str, Any]
) -> Path:
    """Write ``root/step-NNNNNN/`` holding the model, the stream state and the step.

    The directory is written under a temporary name and renamed into place, so a crash
    leaves either a complete checkpoint or none (never a model without its stream state).
    """
    final = root / f"step-{step:06d}"
    partial = root / f".step-{step:06d}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    np.savez(partial / "model.npz", **model)
    (partial / "stream.json").write_text(json.dumps(stream_state))
    (partial / "meta.json").write_text(json.dumps({"step": step}))
    for name in ("model.npz", "stream.json", "meta.json"):
        _fsync(partial / name)
    os.rename(partial, final)  # atomic on POSIX and Windows
    _fsync(root)
    for old in sorted(root.glob("step-*"))[:-KEEP]:
        shutil.rmtree(old)
    return final


def latest_checkpoint(root: Path) -> Path | None:
    found = sorted(root.glob("step-*"))  # complete ones only: partial ones start with "."
    return found[-1] if found else None


def load_checkpoint(path: Path) -> tuple[int, dict[str, np.ndarray], dict[str, Any]]:
    with np.load(path / "model.npz") as arrays:
        model = {key: arrays[key] for key in arrays.files}
    stream_state = json.loads((path / "stream.json").read_text())
    step = json.loads((path / "meta.json").read_text())["step"]
    return step, model, stream_state


# ------------------------------------------------------------------------------ training
def train(root: Path, steps: int, log: Path, crash_at: int | None = None) -> None:
    """Train to ``steps``, resuming from the latest checkpoint under ``root`` if there is one."""
    root.mkdir(parents=True, exist_ok=True)
    checkpoint = latest_checkpoint(root)
    if checkpoint is None:
        step, model, stream_state = 0, initial_model(), None
    else:
        step, model, stream_state = load_checkpoint(checkpoint)
        print(f"  resuming from {checkpoint.name}")
    stream = batches().iterate(state=stream_state)  # None: from the start
    with open(log, "a") as out:
        for batch in stream:
            if step == steps:
                break
            out.write(f"{step} {fingerprint(batch)}\n")
            out.flush()
            model = sgd_step(model, batch)
            step += 1
            if step % CHECKPOINT_EVERY == 0:
                # The model has seen exactly the batches the stream has delivered: save both.
                save_checkpoint(root, step, model, stream.state_dict())
            if step == crash_at:
                os._exit(3)  # as if killed: no cleanup, no final checkpoint
    stream.close()
    np.savez(root / "final.npz", **model)


# ------------------------------------------------------------------------------ the demo
def run_phase(root: Path, steps: int, crash_at: int | None = None) -> int:
    """Run :func:`train` in a new Python process (a real restart), return its exit code."""
    command = [sys.executable, __file__, "--train", str(root), "--steps", str(steps)]
    if crash_at is not None:
        command += ["--crash-at", str(crash_at)]
    return subprocess.run(command, check=False).returncode


def read_log(path: Path) -> list[tuple[int, str]]:
    return [(int(step), digest) for step, digest in map(str.split, path.read_text().splitlines())]


def demo(workdir: Path, steps: int, crash_at: int) -> bool:
    reference, interrupted = workdir / "reference", workdir / "interrupted"
    print(f"1. an uninterrupted run of {steps} steps")
    assert run_phase(reference, steps) == 0
    print(f"2. the same run, killed after step {crash_at}")
    code = run_phase(interrupted, steps, crash_at)
    latest = latest_checkpoint(interrupted)
    assert code != 0 and latest is not None
    print(f"  exit code {code}; latest checkpoint: {latest.name}")
    print("3. a new process resumes from the latest checkpoint")
    assert run_phase(interrupted, steps) == 0

    expected = dict(read_log(reference / "log.txt"))
    seen = read_log(interrupted / "log.txt")  # steps after the checkpoint appear twice
    batches_match = all(expected[step] == digest for step, digest in seen)
    batches_match &= {step for step, _ in seen} == set(expected) == set(range(steps))
    with np.load(reference / "final.npz") as a, np.load(interrupted / "final.npz") as b:
        weights_match = all(np.array_equal(a[k], b[k]) for k in a.files)
    state = (latest_checkpoint(interrupted) or latest) / "stream.json"
    print(f"  the same batch at every step ({len(seen)} steps run in all): {batches_match}")
    print(f"  final weights bit-identical: {weights_match}")
    print(f"  stream state in a checkpoint: {state.stat().st_size} bytes of JSON")
    return batches_match and weights_match


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="where to write (default: a temp dir)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--crash-at", type=int, default=None)
    parser.add_argument("--train", type=Path, help=argparse.SUPPRESS)  # one training process
    args = parser.parse_args()
    if args.train is not None:
        train(args.train, args.steps, args.train / "log.txt", args.crash_at)
        return
    crash_at = 37 if args.crash_at is None else args.crash_at
    if args.workdir is None:
        with tempfile.TemporaryDirectory() as tmp:
            ok = demo(Path(tmp), args.steps, crash_at)
    else:
        ok = demo(args.workdir, args.steps, crash_at)
    print("resumed run matches the uninterrupted run" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
