"""The worker processes: starting them, stopping them, what to say when one dies, and the
watchdog that cleans up after a dead consumer (private; see :mod:`pescador.transport`).

Each worker runs a :class:`Watchdog` (:func:`exit_with_consumer`): a thread that notices the
consumer's death at once (its parent's sentinel) or within a second (the consumer's lock on
its directory, see :mod:`._directory`), removes the directory and ends the worker, even while
the main thread is blocked. A worker told to terminate (``SIGTERM`` or ``SIGHUP``, as when a
whole process group is terminated: ``timeout``, job schedulers, service managers, a closed
terminal) waits up to a second for its consumer to die too, and removes the directory if it
does. Removal is idempotent and safe when several workers do it at once.

A worker's stream travels :class:`Shipped`: pickled with the process's arguments (so what
multiprocessing shares only while spawning still travels), unpickled by the worker itself,
which reports an error there like any other.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import numbers
import os
import signal
import threading
import time
from collections.abc import Iterable, Sequence
from multiprocessing.reduction import ForkingPickler
from typing import Any

from ..exceptions import PescadorError, add_note
from ._directory import open_owner, remove_directory, unlocked

#: Seconds between a watchdog's checks of the consumer's lock.
_CHECK_EVERY = 1.0
#: Seconds a worker told to terminate waits for its consumer to die too.
DYING_WAIT = 1.0
#: The signals a worker takes over (when their disposition is the default), to clean up.
_TERMINATING = (signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM))


class Watchdog:
    """In a worker process: ends it, and removes the consumer's directory, when the consumer
    dies. :meth:`leave` is the worker's own last act."""

    def __init__(self, directory: str | None) -> None:
        self.directory = directory
        parent = multiprocessing.parent_process()
        self.sentinel = None if parent is None else parent.sentinel
        self.owner = None if directory is None else open_owner(directory)

    def consumer_gone(self) -> bool:
        sentinel = self.sentinel
        if sentinel is not None and multiprocessing.connection.wait([sentinel], 0):
            return True
        return self.owner is not None and unlocked(self.owner)

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


class Shipped:
    """An object for a worker process, pickled with the process's arguments (under ``spawn`` and
    ``forkserver``) and unpickled by :meth:`open` in the worker, where an error (a function
    the worker cannot import, say) is the worker's to report; under ``fork``, the object
    itself."""

    __slots__ = ("data", "obj")

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.data: bytes | None = None

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return _arrived, (bytes(ForkingPickler.dumps(self.obj)),)

    def open(self) -> Any:
        if self.data is not None:
            try:
                self.obj = ForkingPickler.loads(self.data)
            except Exception as exc:
                raise PescadorError(
                    f"the worker cannot unpickle its stream: {type(exc).__name__}: {exc} (under "
                    "'spawn' and 'forkserver' its functions must be importable in a new "
                    "process: defined at module level, not under `if __name__ == '__main__'`)"
                ) from exc
            self.data = None
        return self.obj


def _arrived(data: bytes) -> Shipped:
    shipped = Shipped(None)
    shipped.data = data
    return shipped


def start_process(process: Any, who: str, start_method: str) -> None:
    """Start ``process`` (named ``who`` in errors), explaining the usual failures: inside a
    daemonic process, or a stream that cannot be pickled."""
    try:
        process.start()
    except AssertionError as exc:
        raise PescadorError(
            f"{who} cannot start inside another worker process (daemonic processes cannot "
            f"have children): {exc}"
        ) from exc
    except Exception as exc:
        add_note(
            exc,
            f"starting {who} (start method {start_method!r}): under 'spawn' and "
            "'forkserver' the stream is pickled, so its functions must be importable "
            "(defined at module level) and its arguments picklable",
        )
        raise


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


def check_seconds(name: str, value: Any) -> None:
    """Check that the argument ``name`` is None or a positive number of seconds."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) > 0
    ):
        raise PescadorError(f"{name}={value!r}: expected None or a number of seconds > 0")
