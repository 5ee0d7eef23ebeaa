"""Train a small PyTorch model on the demo corpus, checkpoint model, optimizer and data, kill
the process, resume, and check that nothing changed.

The data: ``pescador demo``'s synthetic corpus (NPZ files of ``X`` features), read as windows
of consecutive rows by ``pescador.io``, mixed by a ``StochasticMux`` and batched by
``buffer_stream``. ``pescador.torch.StreamDataset`` splits the mux between two DataLoader
workers, and torchdata's ``StatefulDataLoader`` checkpoints where the training loop is in the
stream. The model (a small MLP) learns the mean of a window's rows from the window.

Every few steps the script saves one checkpoint file, written atomically: the model's and the
optimizer's ``state_dict()``, the loader's ``state_dict()`` and the epoch. It then
demonstrates a restart, in three separate processes:

1. ``reference``: train for ``--steps`` steps without interruption;
2. ``crash``: the same run, killed abruptly (``os._exit``) a few steps after a checkpoint,
   with batches prefetched by the workers that the loop never saw;
3. ``resume``: a new process loads the checkpoint and trains to the end,

and checks that every step of the resumed run saw the batch the uninterrupted run saw, and
that the final weights are bit-identical. Run it::

    python examples/torch_train.py [--workdir DIR] [--steps 60]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torchdata.stateful_dataloader import StatefulDataLoader

import pescador
import pescador.io
from pescador.cli import write_corpus
from pescador.torch import StreamDataset

FEATURES = 16
WINDOW = 8
BATCH = 16
STEPS_PER_EPOCH = 10
CHECKPOINT_EVERY = 7  # not a multiple of the epoch: checkpoints mid-epoch too


# ------------------------------------------------------------------------------ the data
def make_loader(corpus: Path, num_workers: int) -> tuple[StreamDataset, StatefulDataLoader]:
    streams = pescador.io.npz_streamers(corpus, WINDOW, keys=["X"])
    mux = pescador.StochasticMux(streams, n_active=8, rate=8, random_state=0)
    batches = pescador.Streamer(pescador.buffer_stream, mux, BATCH)
    dataset = StreamDataset(batches, samples_per_epoch=STEPS_PER_EPOCH)
    loader = StatefulDataLoader(dataset, batch_size=None, num_workers=num_workers)
    return dataset, loader


def fingerprint(batch: dict[str, torch.Tensor]) -> str:
    return hashlib.sha1(batch["X"].numpy().tobytes()).hexdigest()[:16]


# ------------------------------------------------------------------------------ the model
def make_model() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(WINDOW * FEATURES, 32),
        torch.nn.Tanh(),
        torch.nn.Linear(32, FEATURES),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return model, optimizer


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: Any) -> float:
    x = batch["X"]  # (BATCH, WINDOW, FEATURES)
    loss = torch.nn.functional.mse_loss(model(x), x.mean(dim=1))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


# ------------------------------------------------------------------------------ checkpoints
def save_checkpoint(path: Path, **parts: Any) -> None:
    """One file with everything, replaced atomically: a crash while saving leaves the previous
    checkpoint (``torch.save`` to a temporary name, fsync, rename)."""
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as f:
        torch.save(parts, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def train(workdir: Path, steps: int, num_workers: int, crash_at: int | None = None) -> None:
    torch.set_num_threads(1)  # bit-identical arithmetic from run to run
    # torchdata 0.11 calls a function that torch has deprecated since; nothing to act on.
    warnings.filterwarnings("ignore", "'set_vital' is deprecated", UserWarning)
    checkpoint = workdir / "checkpoint.pt"
    log = open(workdir / "log.txt", "a")  # noqa: SIM115 - appended step by step
    dataset, loader = make_loader(workdir / "corpus", num_workers)
    model, optimizer = make_model()
    step, epoch = 0, 0
    if checkpoint.exists():  # resume: model, optimizer and data where they were
        saved = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        # Before iter(loader); a checkpoint of another num_workers raises StateError.
        pescador.torch.load_loader_state(loader, saved["data"])
        step, epoch = saved["step"], saved["epoch"]
    while step < steps:
        dataset.set_epoch(epoch)
        for batch in loader:
            loss = train_step(model, optimizer, batch)
            step += 1
            print(f"{step} {fingerprint(batch)} {loss:.6f}", file=log, flush=True)
            if step % CHECKPOINT_EVERY == 0:
                save_checkpoint(
                    checkpoint,
                    model=model.state_dict(),
                    optimizer=optimizer.state_dict(),
                    data=loader.state_dict(),
                    step=step,
                    epoch=epoch,
                )
            if step == crash_at:
                os._exit(3)  # as if killed: no cleanup, workers a few batches ahead
            if step == steps:
                break
        else:
            epoch += 1
    torch.save(model.state_dict(), workdir / "final.pt")


# ------------------------------------------------------------------------------ the demo
def run_phase(workdir: Path, steps: int, num_workers: int, crash_at: int | None = None) -> int:
    command = [sys.executable, __file__, "--phase", "train", "--workdir", str(workdir)]
    command += ["--steps", str(steps), "--num-workers", str(num_workers)]
    if crash_at is not None:
        command += ["--crash-at", str(crash_at)]
    return subprocess.run(command, check=False, timeout=600).returncode


def read_log(path: Path) -> dict[int, str]:
    entries: dict[int, str] = {}
    for line in path.read_text().split("\n"):
        if line:
            step, batch, loss = line.split()
            entries[int(step)] = f"{batch} {loss}"  # a resumed step overwrites a lost one
    return entries


def demo(workdir: Path, steps: int, num_workers: int) -> bool:
    (workdir / "corpus").mkdir()
    write_corpus(workdir / "corpus", files=12, rows=200, features=FEATURES)
    (workdir / "reference").mkdir()
    (workdir / "reference" / "corpus").symlink_to(workdir / "corpus")
    (workdir / "restarted").mkdir()
    (workdir / "restarted" / "corpus").symlink_to(workdir / "corpus")
    crash_at = min(steps - 1, CHECKPOINT_EVERY * (steps // (2 * CHECKPOINT_EVERY)) + 3)

    after = crash_at % CHECKPOINT_EVERY
    phases = [
        (f"reference: {steps} steps without interruption", "reference", None, 0),
        (
            f"crash:     killed at step {crash_at}, {after} after a checkpoint",
            "restarted",
            crash_at,
            3,
        ),
        ("resume:    from the checkpoint to the end", "restarted", None, 0),
    ]
    for text, where, crash, status in phases:
        print(text, flush=True)
        if run_phase(workdir / where, steps, num_workers, crash) != status:
            raise SystemExit(f"the phase {text.split(':')[0]!r} failed")

    expected = read_log(workdir / "reference" / "log.txt")
    got = read_log(workdir / "restarted" / "log.txt")
    same_batches = got == expected and len(got) == steps
    a = torch.load(workdir / "reference" / "final.pt")
    b = torch.load(workdir / "restarted" / "final.pt")
    same_weights = all(torch.equal(a[k], b[k]) for k in a)
    first, last = expected[1].split()[1], expected[steps].split()[1]
    print(f"loss:      {first} at step 1, {last} at step {steps}")
    if same_batches and same_weights:
        print("resumed run matches the uninterrupted run: same batches, bit-identical weights")
        return True
    print("MISMATCH between the resumed and the uninterrupted run")
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="where to write (default: a temp dir)")
    parser.add_argument("--steps", type=int, default=60, help="training steps (default 60)")
    parser.add_argument("--num-workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--phase", choices=["demo", "train"], default="demo")
    parser.add_argument("--crash-at", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "train":
        train(args.workdir, args.steps, args.num_workers, args.crash_at)
        return
    if args.workdir is None:
        with tempfile.TemporaryDirectory() as tmp:
            ok = demo(Path(tmp), args.steps, args.num_workers)
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        ok = demo(args.workdir, args.steps, args.num_workers)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
