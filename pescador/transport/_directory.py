"""The consumer's private directory and the worker processes that write into it (private;
see :mod:`pescador.transport`).

One life cycle for both ``ParallelStreamer`` and ``ZMQStreamer``: the consumer makes the
directory (:func:`make_directory`, in RAM where the platform has ``/dev/shm``) before it starts
its workers, and removes it (:func:`remove_directory`) after it has stopped them
(:func:`stop_processes`).

If the consumer dies first, the survivors remove it:

- **Its workers.** Each runs a :class:`Watchdog` (:func:`exit_with_consumer`): a thread that
  notices the consumer's death at once (its parent's sentinel) or within a second (its lock,
  below), removes the directory and ends the worker, even while the main thread is blocked.
  A worker told to terminate (``SIGTERM`` or ``SIGHUP``, as when a whole process group is
  terminated: ``timeout``, job schedulers, service managers, a closed terminal) waits up to a
  second for its consumer to die too, and removes the directory if it does. Removal is
  idempotent and safe when several workers do it at once.
- **The next consumer.** When nobody survives (``SIGKILL`` of the whole group), the next
  :func:`make_directory` on the machine reclaims the directories whose owner is gone.

The owner's liveness is a lock: the consumer holds a POSIX record lock (``lockf``) on the file
``owner`` in its directory for the directory's life. The kernel releases it when the process
dies, however it dies; it is not inherited by forked children, and a reused process id cannot
take it over. Whoever can take the lock knows the owner is gone.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locks, no reclaiming
    fcntl = None  # type: ignore[assignment]

#: Where shared memory lives (a RAM file system), where there is one.
SHM = "/dev/shm"
#: The smallest default limit of a worker's chunk files (one file of the smallest chunks).
_MIN_LIMIT = 1 << 20
#: The file whose lock the consumer holds while the directory is in use.
OWNER = "owner"
#: The directories this process made, and the descriptor that holds each one's lock.
_owned: dict[str, int] = {}
_NAME = re.compile(r"pescador-(\d+)-")
#: A directory without an owner file (one being made, or from an older pescador) is reclaimed
#: only if its process is gone and it is at least this old (seconds).
_UNLOCKED_AGE = 60.0
#: Seconds between a watchdog's checks of the consumer's lock.
_CHECK_EVERY = 1.0
#: Seconds a worker told to terminate waits for its consumer to die too.
DYING_WAIT = 1.0
#: The signals a worker takes over (when their disposition is the default), to clean up.
_TERMINATING = (signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM))


def shm_available() -> bool:
    """Whether chunk files can live in RAM here (Linux ``/dev/shm``, writable)."""
    return sys.platform.startswith("linux") and os.path.isdir(SHM) and os.access(SHM, os.W_OK)


def make_directory(tag: str = "", in_memory: bool = True) -> str:
    """A new private directory (mode 0700), named ``pescador-<consumer pid>-<tag>...``: on
    ``/dev/shm`` if ``in_memory`` and the platform has it, else in the temporary directory.
    This process holds its owner lock until :func:`remove_directory`. The directories in the
    same place whose owner is gone are removed first.

    Raises OSError if it cannot be made (``/dev/shm`` without a free inode, say).
    """
    base = SHM if in_memory and shm_available() else tempfile.gettempdir()
    reclaim(base)
    path = tempfile.mkdtemp(prefix=f"pescador-{os.getpid()}-{tag}", dir=base)
    try:
        if fcntl is not None:
            _owned[path] = _lock(path)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path


def _lock(path: str) -> int:
    """Take the owner lock of the new directory ``path``; its descriptor, to keep open.

    The file is locked under another name, then renamed: nobody can find it unlocked.
    """
    assert fcntl is not None
    staged = os.path.join(path, f".{OWNER}")
    fd = os.open(staged, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(staged, os.path.join(path, OWNER))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _forget_owned() -> None:
    """In a forked child: the parent's lock descriptors are not the child's to keep (closing
    them releases nothing: the parent owns the locks)."""
    for fd in _owned.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _owned.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_owned)


def remove_directory(path: str) -> None:
    """Delete ``path`` (idempotent; safe while other processes delete it too, or while another
    thread still creates files in it); then release its owner lock if this process holds it."""
    for _ in range(100):
        if not os.path.lexists(path):
            break
        shutil.rmtree(path, ignore_errors=True)
    fd = _owned.pop(path, None)
    if fd is not None:
        os.close(fd)


def _unlocked(fd: int) -> bool:
    """Whether the owner lock of the file open at ``fd`` is free: its owner is gone."""
    assert fcntl is not None
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return False
    fcntl.lockf(fd, fcntl.LOCK_UN)
    return True


def _open_owner(directory: str) -> int | None:
    """A descriptor to test the owner lock of ``directory`` with, or None (none to test)."""
    if fcntl is None:
        return None
    try:
        return os.open(os.path.join(directory, OWNER), os.O_RDONLY)
    except OSError:
        return None


def _abandoned(path: str, pid: int) -> bool:
    """Whether the directory ``path``, named after process ``pid``, has lost its owner."""
    fd = _open_owner(path)
    if fd is not None:
        try:
            return _unlocked(fd)
        finally:
            os.close(fd)
    if fcntl is None or os.path.lexists(os.path.join(path, OWNER)):
        return False  # a lock we may not test (another user's directory)
    try:
        age = time.time() - os.stat(path).st_mtime
    except OSError:
        return False
    return age > _UNLOCKED_AGE and not _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's
    return True


def reclaim(base: str) -> list[str]:
    """Remove the pescador directories in ``base`` whose owner process is gone (killed with its
    workers, say); the paths removed."""
    try:
        names = os.listdir(base)
    except OSError:
        return []
    me = os.getpid()
    removed = []
    for name in names:
        match = _NAME.match(name)
        if match is None or int(match[1]) == me:
            continue
        path = os.path.join(base, name)
        if os.path.isdir(path) and _abandoned(path, int(match[1])):
            remove_directory(path)
            removed.append(path)
    return removed


def default_limit(directory: str, n_workers: int) -> int:
    """Bytes of chunk files per worker: half of the free space, shared among the workers."""
    try:
        stat = os.statvfs(directory)
        free = stat.f_bavail * stat.f_frsize
    except OSError:  # pragma: no cover - statvfs exists wherever /dev/shm does
        free = 1 << 30
    return max(_MIN_LIMIT, free // (2 * n_workers))


class Watchdog:
    """In a worker process: ends it, and removes the consumer's directory, when the consumer
    dies (see the module's documentation). :meth:`leave` is the worker's own last act."""

    def __init__(self, directory: str | None) -> None:
        self.directory = directory
        parent = multiprocessing.parent_process()
        self.sentinel = None if parent is None else parent.sentinel
        self.owner = None if directory is None else _open_owner(directory)

    def consumer_gone(self) -> bool:
        sentinel = self.sentinel
        if sentinel is not None and multiprocessing.connection.wait([sentinel], 0):
            return True
        return self.owner is not None and _unlocked(self.owner)

    def leave(self, wait: float = 0.0) -> None:
        """If the consumer is gone, or goes within ``wait`` seconds, remove its directory."""
        if self.directory is None or (self.sentinel is None and self.owner is None):
            return
        deadline = time.monotonic() + wait
        while not self.consumer_gone():
            if time.monotonic() >= deadline:
                return
            time.sleep(0.01)
        remove_directory(self.directory)

    def start(self) -> None:
        """Take over the terminating signals and start watching (from the main thread)."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        taken = _take_signals(wake_w)
        watch_on: list[Any] = [wake_r]
        if self.sentinel is not None:
            watch_on.append(self.sentinel)
        thread = threading.Thread(
            target=self._watch, args=(watch_on, taken), name="pescador-watchdog", daemon=True
        )
        thread.start()

    def _watch(self, watch_on: Sequence[Any], taken: Sequence[int]) -> None:
        wake_r = watch_on[0]
        while True:
            ready = multiprocessing.connection.wait(watch_on, _CHECK_EVERY)
            if wake_r in ready:
                received = [s for s in os.read(wake_r, 64) if s in taken]
                if received:
                    self.leave(DYING_WAIT)
                    os._exit(128 + received[0])
            if self.consumer_gone():
                self.leave()
                os._exit(3)


def _take_signals(wake_w: int) -> list[int]:
    """Route SIGTERM and SIGHUP (those left to their default) to the watchdog, which wakes at
    once even while the main thread runs C code; the signals taken."""
    if threading.current_thread() is not threading.main_thread():
        return []

    def on_signal(signum: int, frame: Any) -> None:
        with contextlib.suppress(OSError):
            os.write(wake_w, bytes([signum]))

    taken = []
    for signum in _TERMINATING:
        if signal.getsignal(signum) == signal.SIG_DFL:
            signal.signal(signum, on_signal)
            taken.append(int(signum))
    if taken:
        signal.set_wakeup_fd(wake_w)
    return taken


def exit_with_consumer(directory: str | None) -> Watchdog:
    """In a worker process (main thread): start its :class:`Watchdog`."""
    watchdog = Watchdog(directory)
    watchdog.start()
    return watchdog


def stop_processes(
    processes: Iterable[Any],
    timeout: float | None,
    grace: float = 0.5,
    force: Sequence[str] = ("terminate", "kill"),
) -> None:
    """Wait up to ``timeout`` seconds in all (None: without limit) for started processes that
    have been asked to stop, then apply ``force`` to those still running (``terminate``, then
    ``kill``: ``grace`` seconds each); close those that have exited.

    The force is applied even if the wait is interrupted (Ctrl-C). Workers with a
    :class:`Watchdog` are stopped with ``force=("kill",)``: they take SIGTERM as a sign that
    their consumer may be dying, and would wait for it.
    """
    processes = list(processes)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        for process in processes:
            process.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    finally:
        for stop in force:
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
        how = f"killed by {_signal_name(-exitcode) or f'signal {-exitcode}'}"
    elif exitcode > 128 and _signal_name(exitcode - 128):
        how = f"terminated by {_signal_name(exitcode - 128)}, exit code {exitcode}"
    else:
        how = f"exited with code {exitcode}"
    return f"{who} died without a word ({how})"


def _signal_name(number: int) -> str | None:
    try:
        return signal.Signals(number).name
    except ValueError:
        return None
