"""StreamDataset under DistributedDataParallel: two ranks (gloo, loopback only), each on its own
shard, train a tiny model for a few steps and exit cleanly. Also runs examples/torch_train.py.

The test starts this file twice as a script, as ``torchrun`` would: ``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR=127.0.0.1`` and ``MASTER_PORT`` in the environment; the dataset finds its rank
through ``torch.distributed``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

import pescador

REPO = Path(__file__).resolve().parent.parent
STEPS = 6
BATCH = 8


def examples(tag: int, rng=pescador.ACTIVATION_RNG):
    while True:
        x = rng.normal(size=4).astype(np.float32)
        yield {"X": x, "y": np.float32(x.sum()), "tag": tag}


def rank_main() -> None:
    """One rank: DDP over a linear model, a few SGD steps; prints a JSON summary."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from pescador.torch import StreamDataset

    torch.set_num_threads(1)
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))
    try:
        torch.manual_seed(0)
        model = DistributedDataParallel(torch.nn.Linear(4, 1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        streams = [pescador.Streamer(examples, i) for i in range(6)]
        mux = pescador.StochasticMux(streams, n_active=4, rate=4, random_state=3)
        batches = pescador.Streamer(pescador.buffer_stream, mux, BATCH)
        dataset = StreamDataset(batches, samples_per_epoch=STEPS * 2)  # rank from dist
        loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=1)
        tags, losses = set(), []
        for batch in loader:
            prediction = model(batch["X"]).squeeze(-1)
            loss = torch.nn.functional.mse_loss(prediction, batch["y"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            tags.update(batch["tag"].tolist())
            losses.append(loss.item())
        weights = [float(v) for p in model.parameters() for v in p.detach().flatten()]
        summary = {
            "rank": dataset.rank,
            "world_size": dataset.world_size,
            "steps": len(losses),
            "tags": sorted(tags),
            "weights": weights,
        }
        dist.barrier()
    finally:
        dist.destroy_process_group()
    print(json.dumps(summary), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    python_path = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**env, "PYTHONPATH": os.pathsep.join(python_path), **extra}


def test_two_ranks_train_under_ddp_each_on_its_own_shard():
    pytest.importorskip("torch")
    port = str(free_port())
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--rank"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(
                RANK=str(rank),
                WORLD_SIZE="2",
                LOCAL_RANK=str(rank),
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=port,
                GLOO_SOCKET_IFNAME="lo",
            ),
        )
        for rank in range(2)
    ]
    outputs = []
    deadline = time.monotonic() + 90
    try:
        for process in processes:
            out, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert process.returncode == 0, err[-3000:]
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(5)
    assert [o["rank"] for o in outputs] == [0, 1]
    assert all(o["world_size"] == 2 for o in outputs)
    assert [o["steps"] for o in outputs] == [STEPS, STEPS]  # equal: no rank waits
    assert not set(outputs[0]["tags"]) & set(outputs[1]["tags"])  # each on its own shard
    assert set(outputs[0]["tags"]) | set(outputs[1]["tags"]) <= set(range(6))
    assert outputs[0]["weights"] == outputs[1]["weights"]  # DDP kept the replicas equal


def test_the_torch_training_example_runs(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("torchdata")
    script = REPO / "examples" / "torch_train.py"
    done = subprocess.run(
        [sys.executable, str(script), "--workdir", str(tmp_path), "--steps", "16"],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resumed run matches the uninterrupted run" in done.stdout


if __name__ == "__main__" and sys.argv[1:] == ["--rank"]:
    rank_main()
