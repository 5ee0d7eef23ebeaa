"""ZMQStreamer, its iterator and the receiving loop (private; see :mod:`pescador.zmq_stream`)."""

from __future__ import annotations

import inspect
import json
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

try:
    import zmq
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "pescador.zmq_stream needs pyzmq, which is not installed: pip install pescador[zmq]"
    ) from exc

from .. import _state
from .._iterator import StreamIterator
from .._seeds import InheritedSeed, resolve_seed
from .._sharding import check_start_method
from ..core import Streamer, _Plan
from ..exceptions import PescadorError, StateError
from ..transport import END, ERROR, check_seconds
from ._link import _Link
from ._wire import _ITEM_BYTE, decode, remote_error
from ._worker import _window_items

__all__ = ["ZMQStreamer"]


class _Progress:
    """Where the delivered items stand: the wrapped stream's state after ``base`` of them."""

    __slots__ = ("base", "error", "inner")

    def __init__(self, base: int, inner: dict[str, Any] | None) -> None:
        self.base = base
        self.inner = inner
        self.error: str | None = None


def _receive(link: _Link, progress: _Progress, delivered: int) -> Iterator[Any]:
    """The items sent by the worker, until its end-of-stream or error message.

    Acknowledgements (which reopen the worker's window) go back every half window, and always
    before waiting for a message, so the two sides can never wait for each other.
    """
    try:
        recv = link.recv
        decoder = link.decoder
        assert decoder is not None
        window = link.window
        ack_size = -1
        ack_every = 1
        owed = 0
        while True:
            parts = recv(owed)
            if owed and parts is None:
                link.credit(owed)
                owed = 0
                parts = recv(0)
            head = parts[0].bytes
            if head[0] != _ITEM_BYTE:
                if head[:1] == END:
                    return
                if head[:1] == ERROR:
                    raise remote_error(head[1:])
                raise PescadorError(
                    f"unexpected message from the ZMQStreamer worker: {head[:1]!r}"
                )
            item, state, nbytes = decode(decoder, head, parts)
            delivered += 1
            if state is not None:
                snapshot = json.loads(state)
                if "error" in snapshot:
                    progress.error = snapshot["error"]
                else:
                    progress.inner, progress.base = snapshot["state"], delivered
            if nbytes != ack_size:
                ack_size = nbytes
                ack_every = max(1, _window_items(nbytes, *window) // 2)
            owed += 1
            if owed >= ack_every:
                link.credit(owed)
                owed = 0
            yield item
    finally:
        link.close()


class _ZMQIterator(StreamIterator[Any]):
    """One iteration of a :class:`ZMQStreamer`: one worker process.

    State: the items delivered ``n``; the wrapped stream's state ``inner`` after ``base`` of
    them (``None``: from its start); resuming skips ``n - base`` items in the worker.
    """

    __slots__ = ("_counted", "_owner", "_progress")

    kind = "ZMQStreamer"

    def __init__(
        self, owner: ZMQStreamer, max_iter: Any, seed: InheritedSeed, counted: bool
    ) -> None:
        super().__init__(max_iter, seed, owner)
        self._owner = owner
        self._counted = counted
        self._progress = _Progress(0, None)

    def _open(self) -> tuple[Iterable[Any], Streamer | None]:
        owner = self._owner
        holder = owner if self._counted else None
        resume = self._resume
        if resume is not None and resume.get("done"):
            return iter(()), holder
        done = resume["n"] if resume is not None else 0
        if resume is not None:
            self._progress = _Progress(resume["base"], resume["inner"])
        if self._limit is not None and self._limit <= done:
            return iter(()), holder  # nothing left to deliver: no process at all
        link = _Link(owner)
        link.open(self._limit, resolve_seed(None, self._seed), resume)
        source = _receive(link, self._progress, done)
        weakref.finalize(source, link.close)
        return source, holder

    def _own_state(self) -> dict[str, Any]:
        progress = self._progress
        if progress.error is not None:
            raise StateError(
                f"the stream wrapped by ZMQStreamer cannot describe its position: {progress.error}"
            )
        return {"base": progress.base, "inner": progress.inner}

    def _check_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        checked = super()._check_state(state)
        if checked.get("done"):
            return checked
        # The state of an iterator that had not started has neither: start from scratch.
        # The worker replays the n - base items delivered since `inner`, and checks `inner`
        # (a StateError comes back from it).
        where = "ZMQStreamer state"
        base, inner = checked.setdefault("base", 0), checked.setdefault("inner", None)
        _state.integer(base, where, "base", high=checked["n"])
        if inner is not None:
            _state.mapping(inner, where, "inner")
            count = inner.get("n")  # (the state of the stream after its first base items)
            if type(count) is int and count > base:
                _state.fail(where, "inner.n", f"at most base={base}", count)
        return checked


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise PescadorError(f"{name}={value!r}: expected an integer")
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise PescadorError(f"{name}={value!r}: expected an integer {bounds}")
    return int(value)


class ZMQStreamer(Streamer):
    """Run a stream in a background process and stream its items back (pescador 3.0 API).

    Each iteration starts one worker process (``multiprocessing``, the platform's default
    start method unless ``start_method`` says otherwise) that iterates
    ``streamer.iterate(max_iter=...)`` (for another callable, ``streamer(max_iter=...)``) and
    sends the items; this process yields them, while the worker computes the next ones. See
    the module documentation for the wire format, read-ahead, failures and shutdown.

    Parameters
    ----------
    streamer : Streamer, mux or callable
        The stream to run. Items must be dicts (keys ``str`` or ``int``) of numpy arrays of
        any non-object dtype; a numpy scalar arrives as a 0-d array, and Python numbers and
        strings (``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``) arrive as
        they are, as through ParallelStreamer. An iterable that is not a Streamer is wrapped
        in one. Under the ``spawn`` and ``forkserver`` start methods it is pickled to the
        worker, so its functions must be importable (module-level).
    min_port, max_port, max_tries : int
        The TCP port is drawn at random from ``[min_port, max_port)`` on 127.0.0.1, up to
        ``max_tries`` times (ignored with ``transport="ipc"``).
    copy : bool
        ``False`` (default) hands the arrays to ZeroMQ without copying them: the stream must
        not modify an array after yielding it. ``True`` copies them into the message. (Items
        travelling through shared memory are always copied once, so they are safe either way.)
    timeout : float or None
        Seconds to wait for the worker to stop after the consumer stops, before killing
        it. ``None`` waits without limit; the worker stops at its next item boundary (it
        never blocks on a full queue), so only a stream stuck inside one item can make that
        wait long.
    prefetch : int or None, keyword-only
        The most items the worker produces ahead of the consumer. ``None`` (default): a window
        of at most 64 items and, beyond 4 items, at most 16 MiB of arrays.
    transport : {"tcp", "ipc"}, keyword-only
        Loopback TCP (default), or a Unix socket in a private directory (POSIX only).
    start_method : str or None, keyword-only
        ``"fork"``, ``"spawn"`` or ``"forkserver"``; None for the platform's default.
    shared_memory : bool, keyword-only
        Send items of 32 KiB or more through shared memory where the platform has it (Linux
        ``/dev/shm``; default True). It holds the items in flight and those the consumer
        still holds, in files totalling at most half of ``/dev/shm``'s free space; beyond
        that, or if ``/dev/shm`` is full, items go through the socket.
    snapshot_every : float or None, keyword-only
        Seconds of worker time between snapshots of the wrapped stream's state (see the
        checkpoints paragraph of the module documentation; default 0.01). 0 snapshots every
        item: exact with no replay, at the cost of one ``state_dict()`` per item; ``None``
        never: a resume then replays the whole stream from its start.
    stall_timeout : float or None, keyword-only
        Seconds the consumer waits for the worker's next message (its hello included) before
        it raises :class:`~pescador.exceptions.WorkerError` (a worker stopped, deadlocked or
        swapping). ``None`` (default): it waits as long as it takes (a worker that dies is
        noticed within 0.1 s either way).

    Raises
    ------
    PescadorError
        At construction, for a bad argument (a port range with no port, ``max_tries < 1``,
        a callable that does not accept ``max_iter``...); at the first ``next()``, if no
        port can be bound.

    Notes
    -----
    Received arrays are **read-only** views of the message (or of shared memory): no copy is
    made in the consumer. Copy one (``np.array(x)``) to modify it. Dicts arrive with their
    keys in sorted order. An empty dict is delivered as an item.

    Each iteration is a new process: ``cycle()`` starts one per pass. Order and content are
    those of the wrapped stream; a wrapped stream with ``random_state=None`` gets a fresh seed
    from this process's numpy global RNG per iteration (or the seed of a seeded parent mux),
    and the worker's own ``np.random`` is seeded from it too, so ``np.random.seed`` at the
    top of a program makes everything reproducible.

    Examples
    --------
    >>> import numpy as np, pescador
    >>> items = [{"x": np.full(3, i)} for i in range(4)]
    >>> zs = pescador.zmq_stream.ZMQStreamer(pescador.Streamer(items))
    >>> [int(item["x"][0]) for item in zs.iterate(max_iter=3)]
    [0, 1, 2]
    """

    def __init__(
        self,
        streamer: Any,
        min_port: int = 49152,
        max_port: int = 65535,
        max_tries: int = 100,
        copy: bool = False,
        timeout: float | None = 5,
        *,
        prefetch: int | None = None,
        transport: str = "tcp",
        start_method: str | None = None,
        shared_memory: bool = True,
        snapshot_every: float | None = 0.01,
        stall_timeout: float | None = None,
    ) -> None:
        self._stream = _as_stream(streamer)
        self._init_stream(_Plan.own(streamer))
        self._entered: list[StreamIterator[Any]] = []
        if transport not in ("tcp", "ipc"):
            raise PescadorError(f"transport={transport!r}: expected 'tcp' or 'ipc'")
        if transport == "ipc" and not zmq.has("ipc"):
            raise PescadorError("transport='ipc' is not available on this platform; use 'tcp'")
        if transport == "tcp":
            _check_int("min_port", min_port, 1, 65535)
            _check_int("max_port", max_port, 2, 65536)
            _check_int("max_tries", max_tries, 1)
            if min_port >= max_port:
                raise PescadorError(
                    f"min_port={min_port} must be less than max_port={max_port} (the port is "
                    "drawn from [min_port, max_port))"
                )
        if timeout is not None and not (isinstance(timeout, (int, float)) and timeout >= 0):
            raise PescadorError(f"timeout={timeout!r}: expected None or a number >= 0")
        if prefetch is not None:
            _check_int("prefetch", prefetch, 1)
        check_start_method(start_method)
        check_seconds("stall_timeout", stall_timeout)
        if snapshot_every is not None and not (
            isinstance(snapshot_every, (int, float)) and snapshot_every >= 0
        ):
            raise PescadorError(
                f"snapshot_every={snapshot_every!r}: expected None or a number of seconds >= 0"
            )
        self.min_port = min_port
        self.max_port = max_port
        self.max_tries = max_tries
        self.copy = copy
        self.timeout = timeout
        self.prefetch = None if prefetch is None else int(prefetch)
        self.transport = transport
        self.start_method = start_method
        self.shared_memory = bool(shared_memory)
        self.snapshot_every = snapshot_every
        self.stall_timeout = None if stall_timeout is None else float(stall_timeout)

    def __repr__(self) -> str:
        return f"ZMQStreamer({self.streamer!r})"

    def _iterate(
        self, max_iter: Any, seed: InheritedSeed, counted: bool = True
    ) -> StreamIterator[Any]:
        return _ZMQIterator(self, max_iter, seed, counted)

    def _enter_items(self, activated: Streamer) -> Iterator[Any]:
        it = _ZMQIterator(self, None, None, False)
        self._entered.append(it)
        return iter(it)

    def __exit__(self, *exc: object) -> None:
        if self.stream_ is None and self._entered:
            self._entered.pop().close()  # the activated copy's worker stops here
        super().__exit__(*exc)


def _as_stream(streamer: Any) -> Any:
    """What the worker runs: a Streamer, or a callable taking ``max_iter`` (3.0's contract)."""
    if isinstance(streamer, Streamer):
        return streamer
    if callable(streamer):
        try:
            inspect.signature(streamer).bind(max_iter=None)
        except TypeError as exc:
            raise PescadorError(
                f"ZMQStreamer runs streamer(max_iter=...), which {streamer!r} does not accept: "
                "pass a Streamer or a mux (e.g. pescador.Streamer(function, *args))"
            ) from exc
        except ValueError:  # no signature to check (a builtin): let the worker try
            pass
        return streamer
    try:
        return Streamer(streamer)
    except PescadorError as exc:
        raise PescadorError(
            f"ZMQStreamer needs a Streamer, a mux or an iterable; got {streamer!r}"
        ) from exc
