"""The messages between a worker and the consumer, as both streamers use them (private; see
:mod:`pescador.transport`).

Each message starts with a one-byte tag: the first element of a pickled tuple on a
``ParallelStreamer`` pipe, the first byte of the first frame on a ``ZMQStreamer`` socket.
An error report is a dict of plain values (JSON on a socket, which a hand-built 3.0 consumer may
also read): the exception's type, message and traceback, and whether it was a
:class:`~pescador.exceptions.DataError` or a :class:`~pescador.exceptions.StateError`.
"""

from __future__ import annotations

import traceback
from typing import Any

from ..exceptions import DataError, StateError, WorkerError, WorkerStateError

# From a worker: an item, the end of its stream, an error report.
ITEM, END, ERROR = b"D", b"X", b"E"
# From the consumer: credit (items delivered, chunks released), stop.
CREDIT, STOP = b"C", b"S"


def error_report(exc: BaseException) -> dict[str, Any]:
    """What the consumer needs to re-raise ``exc`` (see :func:`worker_error`)."""
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the error
        text = "<unprintable>"
    kind = type(exc)
    return {
        "type": f"{kind.__module__}.{kind.__qualname__}",
        "message": text,
        "traceback": "".join(traceback.format_exception(kind, exc, exc.__traceback__)),
        "data_error": isinstance(exc, DataError),
        "state_error": isinstance(exc, StateError),
    }


def worker_error(
    report: Any, who: str, data_error: type[WorkerError] = WorkerError
) -> WorkerError:
    """The exception to raise in the consumer for a worker's :func:`error_report`
    (``data_error``: its class for a DataError in the worker)."""
    try:
        name = str(report["type"]).removeprefix("builtins.")
        cls = data_error if report.get("data_error") else WorkerError
        if report.get("state_error"):  # the worker could not resume from its state
            cls = WorkerStateError
        return cls(f"{who} failed: {name}: {report['message']}", str(report["traceback"]))
    except (KeyError, TypeError, AttributeError):
        return WorkerError(f"{who} failed (unreadable error report)")
