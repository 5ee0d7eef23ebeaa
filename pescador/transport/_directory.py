"""The consumer's private directory (private; see :mod:`pescador.transport`).

One life cycle for both ``ParallelStreamer`` and ``ZMQStreamer``: the consumer makes the
directory (:func:`make_directory`, in RAM where the platform has ``/dev/shm``) before it starts
its workers, and removes it (:func:`remove_directory`) after it has stopped them. If the
consumer dies first, the survivors remove it: its workers (:mod:`._processes`), or, when
nobody survives (``SIGKILL`` of the whole process group), the next :func:`make_directory` on
the machine, which reclaims the directories whose owner is gone (:func:`reclaim`).

The owner's liveness is a lock: the consumer holds a POSIX record lock (``lockf``) on the file
``owner`` in its directory for the directory's life. The kernel releases it when the process
dies, however it dies; it is not inherited by forked children, and a reused process id cannot
take it over. Whoever can take the lock knows the owner is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import time

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


def unlocked(fd: int) -> bool:
    """Whether the owner lock of the file open at ``fd`` is free: its owner is gone."""
    assert fcntl is not None
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return False
    fcntl.lockf(fd, fcntl.LOCK_UN)
    return True


def open_owner(directory: str) -> int | None:
    """A descriptor to test the owner lock of ``directory`` with, or None (none to test)."""
    if fcntl is None:
        return None
    try:
        return os.open(os.path.join(directory, OWNER), os.O_RDONLY)
    except OSError:
        return None


def _abandoned(path: str, pid: int) -> bool:
    """Whether the directory ``path``, named after process ``pid``, has lost its owner."""
    fd = open_owner(path)
    if fd is not None:
        try:
            return unlocked(fd)
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
