"""Run test code in a subprocess with a given Keras backend (imported by the framework tests).

Keras fixes its backend when it is first imported (``KERAS_BACKEND``), and importing
TensorFlow imports Keras: so every test that needs Keras or TensorFlow runs in a worker
process started with the backend it needs (``spawn``: a fresh interpreter), one per backend
for the whole session, and the pytest process itself never imports either. A test sends the
name of a function of a case module (``keras_cases``, ``tf_cases``) and its arguments; the
worker runs it and sends back its result, or the formatted traceback of what it raised,
which the test raises again as a :class:`CaseFailed`.

The worker applies the suite's warning policy itself (``filterwarnings = error`` in
pyproject.toml governs the pytest process only), with the narrow exceptions listed in
``serve``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from typing import Any


class CaseFailed(AssertionError):
    """A case raised in the worker; the message holds the worker's traceback."""


def serve(conn: Any, backend: str) -> None:
    """The worker's loop: ``(module, function, args)`` in, ``("ok", result)`` or
    ``("error", traceback)`` out; ``None`` (or the pipe closing) ends it."""
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ log noise
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

    def run(self, module: str, name: str, *args: Any, timeout: float = 50) -> Any:
        if self.process is None or not self.process.is_alive():
            context = multiprocessing.get_context("spawn")
            self.conn, child = context.Pipe()
            self.process = context.Process(
                target=serve, args=(child, self.backend), name=f"keras-{self.backend}"
            )
            self.process.start()
            child.close()
        self.conn.send((module, name, args))
        if not self.conn.poll(timeout):
            self.close(kill=True)
            raise CaseFailed(f"{module}.{name} took more than {timeout} s ({self.backend})")
        try:
            status, payload = self.conn.recv()
        except (EOFError, OSError):
            code = self.process.exitcode
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
            self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()
        self.process = None
