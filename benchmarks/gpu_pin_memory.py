"""GPU check: StreamDataset items through DataLoader(pin_memory=True, num_workers=2) to CUDA.

Not a benchmark (``run.py`` does not run it): a check for a machine with a CUDA GPU, where the
test suite can only see that ``pin_memory=True`` is accepted. It verifies that

- every tensor the loader yields is pinned (``tensor.is_pinned()``), large ones (which leave
  the workers through pescador's shared-memory chunks) and small ones (inside the pickle), for
  dicts and for tuples, batched (``batch_size=4``) and not (``batch_size=None``);
- ``tensor.to("cuda", non_blocking=True)`` delivers the right values: every batch is copied
  while the loop goes on, and all of them are compared on the device after a synchronise, so
  a chunk reused under a copy still in flight would show;
- every item arrives exactly once.

Without CUDA it runs the same pipeline without pinning (the CPU path: values and coverage
checked), says that pinning was not checked, and exits 0; with ``--require-cuda`` it exits 2
instead. Exit 1: a check failed. A run takes a few seconds::

    PYTHONPATH=. .venv/bin/python benchmarks/gpu_pin_memory.py --require-cuda
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

import numpy as np

import pescador

N_STREAMS = 4
N_ITEMS = 24  # per stream
LARGE = 1 << 16  # float32 values: 256 KiB, through a shared-memory chunk
SMALL = 3  # int64 values: inside the pickle


def items(tag: int, n: int):
    for j in range(n):
        key = tag * 1000 + j
        yield {
            "X": np.full(LARGE, key, np.float32),
            "Y": np.arange(SMALL, dtype=np.int64) + key,
            "key": key,
        }


def loader(batch_size: int | None, pairs: bool, pin: bool) -> Any:
    from torch.utils.data import DataLoader

    from pescador.torch import StreamDataset

    streams = [pescador.Streamer(items, i, N_ITEMS) for i in range(N_STREAMS)]
    stream: Any = pescador.ChainMux(streams)
    if pairs:
        stream = pescador.Streamer(pescador.tuples, stream, "X", "Y")
    dataset = StreamDataset(stream, rank=0, world_size=1)
    return DataLoader(dataset, batch_size=batch_size, num_workers=2, pin_memory=pin)


def expected_keys(batch: Any, pairs: bool) -> list[int]:
    """The items' keys, read from the small tensor (``Y[0]`` is the key)."""
    small = batch[1] if pairs else batch["Y"]
    return [int(k) for k in small.reshape(-1, SMALL)[:, 0].tolist()]


def run(batch_size: int | None, pairs: bool, cuda: bool) -> list[str]:
    """One configuration; the failures found."""
    import torch

    failures: list[str] = []
    where = f"batch_size={batch_size}, {'tuples' if pairs else 'dicts'}"
    on_device: list[tuple[list[int], Any, Any]] = []
    seen: list[int] = []
    for batch in loader(batch_size, pairs, pin=cuda):
        large, small = (batch[0], batch[1]) if pairs else (batch["X"], batch["Y"])
        keys = expected_keys(batch, pairs)
        seen.extend(keys)
        if cuda:
            if not (large.is_pinned() and small.is_pinned()):
                failures.append(f"{where}: a tensor is not pinned (keys {keys})")
            # Copied while the loop goes on; compared after everything has been copied.
            x = large.to("cuda", non_blocking=True)
            y = small.to("cuda", non_blocking=True)
            on_device.append((keys, x, y))
        else:
            on_device.append((keys, large, small))  # held: their chunks must not be reused
        del batch, large, small
    if cuda:
        torch.cuda.synchronize()
    for keys, x, y in on_device:
        k = torch.tensor(keys, dtype=torch.float32, device=x.device)
        want_x = k.reshape(-1, 1).expand(len(keys), LARGE).reshape(x.shape)
        want_y = (
            torch.tensor(keys, dtype=torch.int64, device=y.device).reshape(-1, 1)
            + torch.arange(SMALL, device=y.device)
        ).reshape(y.shape)
        if not (torch.equal(x, want_x) and torch.equal(y, want_y)):
            failures.append(f"{where}: wrong values on {x.device} for keys {keys}")
    want = sorted(t * 1000 + j for t in range(N_STREAMS) for j in range(N_ITEMS))
    if sorted(seen) != want:
        failures.append(f"{where}: items not delivered exactly once ({len(seen)} of {len(want)})")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--require-cuda", action="store_true", help="exit 2 if no CUDA device is available"
    )
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("skipped: torch is not installed (pip install 'pescador[torch]')")
        return 2 if args.require_cuda else 0
    cuda = torch.cuda.is_available()
    if not cuda and args.require_cuda:
        print("no CUDA device available (--require-cuda)")
        return 2
    # torch's own advice (on worker counts, on pin_memory without a GPU) is not a failure.
    warnings.filterwarnings("ignore", category=UserWarning, module="torch.utils.data")
    failures: list[str] = []
    for batch_size in (None, 4):
        for pairs in (False, True):
            failures += run(batch_size, pairs, cuda)
    for failure in failures:
        print("FAILED:", failure)
    if failures:
        return 1
    if cuda:
        print(f"ok: pinned, and copied to {torch.cuda.get_device_name()} with correct values")
    else:
        print("ok (CPU path: values and coverage); CUDA not available: pinning not checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
