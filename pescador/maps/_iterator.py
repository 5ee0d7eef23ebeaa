"""What every map shares: the checks of its arguments at the call, and its pass over the input.

A map's iterator (:class:`_MapIterator`) opens its input at the first ``next``: it iterates a
Streamer itself (passing its seed down), uses a pescador iterator as it is, and calls ``iter``
on anything else, closing at the end only an input it opened. Its checkpoint is its input's
state; a map that holds more (:func:`pescador.cache`) adds its own.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Mapping
from typing import Any

from .. import _state
from .._iterator import restore_source
from ..core import Streamer, StreamIterator, state_of
from ..exceptions import PescadorError, StateError


def _positive_int(name: str, value: Any) -> int:
    """``value`` as an int >= 1; an integral float (``32.0``) is accepted, ``2.5`` is not."""
    result = 0
    if isinstance(value, bool):
        pass
    elif isinstance(value, numbers.Integral):
        result = int(value)
    elif isinstance(value, numbers.Real) and float(value).is_integer():
        result = int(float(value))
    if result < 1:
        raise PescadorError(f"{name}={value!r} must be a positive integer")
    return result


def _check_stream(stream: Any) -> None:
    kind = type(stream)
    if not (hasattr(kind, "__iter__") or hasattr(kind, "__getitem__")):
        raise PescadorError(
            f"stream={stream!r} must be an iterable (a list, generator, Streamer or mux)"
        )


class _MapIterator(StreamIterator[Any]):
    """A map's pass: opens its input at the first ``next`` and runs :meth:`_run` over it.

    ``_run`` is the raw loop (a generator); it calls :meth:`_release_input` in a ``finally``
    so that closing the pass closes an input that the map opened itself.
    """

    __slots__ = ("_input", "_owns_input", "_stream")

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self._stream = stream
        self._input: Iterator[Any] = iter(())
        self._owns_input = False

    def _open(self) -> tuple[Iterator[Any], None]:
        resume = self._resume
        if resume is None:
            self._open_input()
        elif resume.get("done"):
            return iter(()), None
        else:
            with _state.PASSTHROUGH:  # (an iterable's own __iter__ may run here)
                self._open_input()
            self._restore(resume)
        # iter() of a StreamIterator is its C-level fast path; it shares the position.
        return self._run(iter(self._input)), None

    def _restore(self, resume: Mapping[str, Any]) -> None:
        """Put the (unstarted) input where the checkpoint says."""
        where = f"{self.kind} state"
        position = _state.field(resume, "input", where)
        # The input's count bounds its replay; unknown for an input given as an iterator,
        # which its caller may have advanced too.
        most = self._input_count(resume["n"]) if isinstance(self._stream, Streamer) else None
        restore_source(self._input, position, where, "input", most)

    def _input_count(self, n: int) -> int:
        """The most items an input made by this pass can have given for ``n`` outputs."""
        return n

    def _own_state(self) -> dict[str, Any]:
        state = state_of(self._input)
        if state is None:
            raise StateError(
                f"{self.kind} cannot checkpoint: its input ({type(self._input).__name__}) "
                "cannot describe its position; pass a Streamer or a pescador iterator"
            )
        return {"input": state}

    def _open_input(self) -> None:
        stream = self._stream
        if isinstance(stream, Streamer):
            self._input = stream._iterate(None, self._seed)
            self._owns_input = True
        elif isinstance(stream, StreamIterator):
            self._input = stream
        else:
            self._input = iter(stream)
            # An iterable (a list...) gave us a new iterator: ours to close. An iterator passed
            # in (a generator...) stays the caller's, as in pescador 3.0.
            self._owns_input = self._input is not stream

    def _release_input(self) -> None:
        if self._owns_input:
            close = getattr(self._input, "close", None)
            if close is not None:
                close()

    def _run(self, source: Iterator[Any]) -> Iterator[Any]:
        raise NotImplementedError
