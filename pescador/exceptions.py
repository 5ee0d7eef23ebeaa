"""Exceptions raised by pescador.

Every error that pescador raises on its own account derives from :class:`PescadorError`, so
``except pescador.PescadorError`` catches all of them. Errors raised by user code inside a
stream propagate unchanged in type (with a note naming the streamer they came from).

The tree::

    Exception
     └── PescadorError        the root: bad arguments, misuse of a stream
          ├── DataError       an item is not a data object (a dict of arrays)
          ├── StateError      a checkpoint state does not match the pipeline, or is malformed
          └── WorkerError     a background worker failed; carries the remote traceback
               └── WorkerStateError   a worker could not resume its stream (a StateError too)

Examples
--------
>>> from pescador.exceptions import DataError, PescadorError
>>> try:
...     raise DataError("expected a dict of arrays, got 3")
... except PescadorError as exc:
...     print(type(exc).__name__, exc)
DataError expected a dict of arrays, got 3
"""

from __future__ import annotations

from typing import Any

__all__ = ["DataError", "PescadorError", "StateError", "WorkerError", "WorkerStateError"]


class PescadorError(Exception):
    """The root of every exception raised by pescador itself.

    Raised directly for invalid arguments (the message names the parameter, the value and
    what was expected) and for misuse of a stream.

    Examples
    --------
    >>> from pescador.exceptions import PescadorError
    >>> from pescador.util import get_rng
    >>> try:
    ...     get_rng("not a seed")
    ... except PescadorError as exc:
    ...     print(exc)
    Invalid random_state='not a seed': expected None, an integer seed in [0, 2**32), ...
    """


class DataError(PescadorError):
    """An item is not a data object (a ``dict`` of arrays) where one is required.

    Raised by the maps (:func:`pescador.buffer_stream`, :func:`pescador.tuples`,
    :func:`pescador.keras_tuples`); when it replaces a lower-level error, that error is
    chained as ``__cause__``.

    Examples
    --------
    >>> from pescador.exceptions import DataError, PescadorError
    >>> issubclass(DataError, PescadorError)
    True
    """


class StateError(PescadorError):
    """A checkpoint state does not match the pipeline it is loaded into, or is malformed.

    Raised when a state saved from one stream is restored into a stream of a different
    structure (other muxes, other number of streamers, another format version), and when a
    state was modified or corrupted: its digest does not match, or a field is missing or out
    of range (the message names the field's path).

    Examples
    --------
    >>> from pescador.exceptions import PescadorError, StateError
    >>> isinstance(StateError("state was saved from a ChainMux"), PescadorError)
    True
    """


class WorkerError(PescadorError):
    """An error in a background worker, re-raised in the consuming process.

    Parameters
    ----------
    message : str
        What happened, as seen from the consumer.
    remote_traceback : str or None
        The formatted traceback from the worker process, or ``None`` when the worker died
        without reporting one (for example, killed by a signal).

    Attributes
    ----------
    remote_traceback : str or None
        The worker's traceback text, as given. It is also shown in ``str(exc)``, so an
        uncaught ``WorkerError`` prints where the worker failed.

    Examples
    --------
    >>> from pescador.exceptions import WorkerError
    >>> err = WorkerError("worker failed", "Traceback ...\\nValueError: bad item")
    >>> err.remote_traceback.splitlines()[-1]
    'ValueError: bad item'
    >>> print(err)
    worker failed
    <BLANKLINE>
    Remote traceback:
    Traceback ...
    ValueError: bad item
    """

    def __init__(self, message: str, remote_traceback: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        if not self.remote_traceback:
            return self.message
        return f"{self.message}\n\nRemote traceback:\n{self.remote_traceback.rstrip()}"

    def __reduce__(self) -> tuple[type[WorkerError], tuple[str, str | None], dict[str, Any]]:
        # The default reduction rebuilds from ``args`` alone and would drop the traceback.
        return (type(self), (self.message, self.remote_traceback), self.__dict__)


class WorkerStateError(WorkerError, StateError):
    """A worker could not resume from its part of a checkpoint state: a :class:`WorkerError`
    (with the worker's traceback) that is also a :class:`StateError`.

    Raised by ``ParallelStreamer`` and ``ZMQStreamer``, whose workers check the states of the
    streams they run.
    """


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``, also on Python 3.10 (private helper; not in ``__all__``)."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # pragma: no cover - Python 3.10
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]
