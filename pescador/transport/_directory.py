"""The consumer's private directory and the worker processes that write into it (private;
see :mod:`pescador.transport`).

One life cycle for both ``ParallelStreamer`` and ``ZMQStreamer``: the consumer makes the
directory (:func:`make_directory`, in RAM where the platform has ``/dev/shm``) before it starts
its workers, and removes it (:func:`remove_directory`) after it has stopped them
(:func:`stop_processes`). A worker deletes it itself if the consumer's process dies first
(:func:`exit_with_consumer`): nobody else would.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from typing import Any

#: Where shared memory lives (a RAM file system), where there is one.
SHM = "/dev/shm"
#: The smallest default limit of a worker's chunk files (one file of the smallest chunks).
_MIN_LIMIT = 1 << 20


def shm_available() -> bool:
    """Whether chunk files can live in RAM here (Linux ``/dev/shm``, writable)."""
    return sys.platform.startswith("linux") and os.path.isdir(SHM) and os.access(SHM, os.W_OK)


def make_directory(tag: str = "", in_memory: bool = True) -> str:
    """A new private directory (mode 0700), named ``pescador-<consumer pid>-<tag>...``: on
    ``/dev/shm`` if ``in_memory`` and the platform has it, else in the temporary directory."""
    base = SHM if in_memory and shm_available() else None
    return tempfile.mkdtemp(prefix=f"pescador-{os.getpid()}-{tag}", dir=base)


def remove_directory(path: str) -> None:
    """Delete ``path``, trying again while another thread may still create files in it."""
    for _ in range(100):
        if not os.path.exists(path):
            return
        shutil.rmtree(path, ignore_errors=True)


def default_limit(directory: str, n_workers: int) -> int:
    """Bytes of chunk files per worker: half of the free space, shared among the workers."""
    try:
        stat = os.statvfs(directory)
        free = stat.f_bavail * stat.f_frsize
    except OSError:  # pragma: no cover - statvfs exists wherever /dev/shm does
        free = 1 << 30
    return max(_MIN_LIMIT, free // (2 * n_workers))


def exit_with_consumer(directory: str | None) -> None:
    """In a worker process: a daemon thread that ends the process at once if its parent, the
    consumer, dies, after removing the consumer's directory.

    A thread, so that it acts even while the main thread is blocked (on a full pipe, in the
    stream's own code).
    """
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return
    sentinel = parent.sentinel

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        if directory is not None:
            remove_directory(directory)
        os._exit(3)

    threading.Thread(target=watch, name="pescador-watchdog", daemon=True).start()


def stop_processes(processes: Iterable[Any], timeout: float | None, grace: float = 0.5) -> None:
    """Wait up to ``timeout`` seconds in all (None: without limit) for started processes that
    have been asked to stop, then terminate those still running, then kill them (``grace``
    seconds each); close those that have exited.

    The force is applied even if the wait is interrupted (Ctrl-C).
    """
    processes = list(processes)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        for process in processes:
            process.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    finally:
        for stop in ("terminate", "kill"):
            running = [p for p in processes if p.exitcode is None]
            if not running:
                break
            for process in running:
                getattr(process, stop)()
            end = time.monotonic() + grace
            for process in running:
                process.join(max(0.0, end - time.monotonic()))
        for process in processes:
            if process.exitcode is not None:
                process.close()


def death_message(who: str, exitcode: int | None) -> str:
    """What to say of a worker that ended without a word, from its exit code."""
    if exitcode is None:
        how = "still running"
    elif exitcode < 0:
        try:
            how = f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"killed by signal {-exitcode}"
    else:
        how = f"exited with code {exitcode}"
    return f"{who} died without a word ({how})"
