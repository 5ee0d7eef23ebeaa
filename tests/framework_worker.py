"""Run test code in a subprocess with a given Keras backend (imported by the framework tests).

Keras fixes its backend when it is first imported (``KERAS_BACKEND``), and importing
TensorFlow imports Keras: so every test that needs Keras or TensorFlow runs in a worker
process started with the backend it needs (a fresh interpreter, ``subprocess`` rather than
``multiprocessing``, so that the other tests' checks for leftover ``multiprocessing``
children do not see it), one per backend for the whole session, and the pytest process
itself never imports either. A test sends the
name of a function of a case module (``keras_cases``, ``tf_cases``) and its arguments; the
worker runs it and sends back its result, or the formatted traceback of what it raised,
which the test raises again as a :class:`CaseFailed`.

The worker applies the suite's warning policy itself (``filterwarnings = error`` in
pyproject.toml governs the pytest process only), with the narrow exceptions listed in
``serve``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


class CaseFailed(AssertionError):
    """A case raised in the worker; the message holds the worker's traceback."""


def serve(fd: int) -> None:
    """The worker's loop, on the socket ``fd``: ``(module, function, args)`` in,
    ``("ok", result)`` or ``("error", traceback)`` out; ``None`` (or the socket closing) ends
    it. ``KERAS_BACKEND`` is set in its environment."""
    conn = Connection(fd)
    import importlib
    import traceback
    import warnings

    warnings.simplefilter("error")
    # Keras 3.15 calls np.array on its Variables, whose __array__ predates numpy 2's copy
    # keyword (numpy 2.4 warns); nothing for pescador to act on.
    warnings.filterwarnings(
        "ignore", "__array__ implementation doesn't accept a copy keyword", DeprecationWarning
    )
    while True:
        try:
            request = conn.recv()
        except EOFError:
            request = None
        if request is None:
            # Skip the interpreter's teardown: TensorFlow's takes seconds, and logs about
            # dataset iterators finalized after Python.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        module, name, args = request
        try:
            result = getattr(importlib.import_module(module), name)(*args)
        except BaseException:
            conn.send(("error", traceback.format_exc()))
        else:
            conn.send(("ok", result))


class Worker:
    """One worker process for ``backend``, started on first use."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.process: Any = None
        self.conn: Any = None

    def start(self) -> None:
        ours, theirs = socket.socketpair()
        here = str(Path(__file__).resolve().parent)
        env = dict(
            os.environ,
            KERAS_BACKEND=self.backend,
            TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),  # C++ log noise
            PYTHONPATH=os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])]),
        )
        code = f"import framework_worker; framework_worker.serve({theirs.fileno()})"
        # In the tests' folder: ``import conftest`` is then tests/conftest.py, not the root's.
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], pass_fds=[theirs.fileno()], env=env, cwd=here
        )
        theirs.close()
        self.conn = Connection(ours.detach())

    def run(self, module: str, name: str, *args: Any, timeout: float = 50) -> Any:
        if self.process is None or self.process.poll() is not None:
            self.start()
        self.conn.send((module, name, args))
        if not self.conn.poll(timeout):
            self.close(kill=True)
            raise CaseFailed(f"{module}.{name} took more than {timeout} s ({self.backend})")
        try:
            status, payload = self.conn.recv()
        except (EOFError, OSError):
            code = self.process.poll()
            self.close(kill=True)
            raise CaseFailed(
                f"{module}.{name}: the {self.backend} worker died (exit code {code})"
            ) from None
        if status == "error":
            raise CaseFailed(f"{module}.{name} on the {self.backend} backend:\n{payload}")
        return payload

    def close(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if not kill:
            with contextlib.suppress(OSError):
                self.conn.send(None)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.conn.close()
        self.process = None
