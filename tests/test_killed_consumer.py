"""A consumer killed with its workers running: alone, or with its whole process group (what
``timeout``, job schedulers and service managers do), under ``fork`` and ``spawn``. Whoever
survives removes the consumer's ``/dev/shm`` directory; if nobody does (``SIGKILL`` of the
group), the next run reclaims it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from pescador import ParallelStreamer, Streamer

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.path.isdir("/dev/shm"),
    reason="reads /proc and /dev/shm",
)

CONSUMER = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    import pescador

    # As a process started from a shell or a scheduler: a test run under nohup (or with
    # SIGHUP ignored some other way) would hand that on, and the group's SIGHUP do nothing.
    for number in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)

    def pids():
        while True:
            yield {"pid": np.array(os.getpid()), "pad": np.zeros(1 << 12)}

    if __name__ == "__main__":
        kind, method = sys.argv[1:]
        if kind == "parallel":
            stream = pescador.ParallelStreamer(pescador.Streamer(pids), 2, start_method=method)
        else:
            from pescador.zmq_stream import ZMQStreamer
            stream = ZMQStreamer(pescador.Streamer(pids), start_method=method)
        it = stream.iterate()
        seen = {int(next(it)["pid"]) for _ in range(50)}
        print(os.getpid(), *seen, flush=True)
        for _ in it:
            pass
    """
)


def dirs_of(pid: int) -> list[str]:
    return [name for name in os.listdir("/dev/shm") if name.startswith(f"pescador-{pid}-")]


def running(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except FileNotFoundError:
        return False


def eventually(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def run_and_kill(tmp_path, kind: str, method: str, kill) -> tuple[int, list[int]]:
    """Start a consumer in its own process group, let items flow, ``kill`` it; its pid and its
    workers' pids."""
    if kind == "zmq":
        pytest.importorskip("zmq")
    script = tmp_path / "consumer.py"
    script.write_text(CONSUMER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    process = subprocess.Popen(
        [sys.executable, str(script), kind, method],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        consumer, *workers = (int(p) for p in process.stdout.readline().split())
        kill(process.pid)
        process.wait(30)
    finally:
        process.stdout.close()
        if process.poll() is None:  # pragma: no cover - the consumer never got going
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return consumer, workers


def clean(consumer: int, workers: list[int]) -> None:
    """Whatever a failed test left: not to be seen by the next ones."""
    for pid in workers:
        if running(pid):  # pragma: no cover - only after a failure
            os.kill(pid, signal.SIGKILL)
    for name in dirs_of(consumer):  # pragma: no cover - only after a failure
        shutil.rmtree(os.path.join("/dev/shm", name), ignore_errors=True)


def group(sig):
    return lambda pid: os.killpg(pid, sig)


@pytest.mark.parametrize("kind", ["parallel", "zmq"])
@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize(
    "kill",
    [
        pytest.param(group(signal.SIGTERM), id="group-SIGTERM"),
        pytest.param(group(signal.SIGHUP), id="group-SIGHUP"),
        pytest.param(lambda pid: os.kill(pid, signal.SIGKILL), id="consumer-SIGKILL"),
    ],
)
def test_the_survivors_remove_the_directory(tmp_path, kind, method, kill):
    consumer, workers = run_and_kill(tmp_path, kind, method, kill)
    try:
        assert eventually(lambda: not any(running(w) for w in workers))
        assert eventually(lambda: dirs_of(consumer) == [])
    finally:
        clean(consumer, workers)


@pytest.mark.parametrize("kind", ["parallel", "zmq"])
def test_the_next_run_reclaims_the_directory_of_a_killed_group(tmp_path, kind):
    consumer, workers = run_and_kill(tmp_path, kind, "fork", group(signal.SIGKILL))
    try:
        assert eventually(lambda: not any(running(w) for w in workers))
        assert len(dirs_of(consumer)) == 1  # nobody survived to remove it
        assert list(ParallelStreamer(Streamer([1, 2]), 1)) == [1, 2]  # a later run
        assert dirs_of(consumer) == []
    finally:
        clean(consumer, workers)
