"""The consumer's handle on one ZMQStreamer worker: :class:`_Link`.

A link owns what one iteration of a :class:`~pescador.zmq_stream.ZMQStreamer` needs: the
worker process, the ``ROUTER`` socket and its ZeroMQ context, and the private directory (the
``ipc`` socket, the shared-memory chunks). Opening it binds the socket (loopback TCP on a
random port, or ``ipc``), starts the worker and waits for its hello; it then receives the
worker's messages (raising :class:`~pescador.exceptions.WorkerError` if the worker dies
without a word) and sends credits. The worker's routing id is a secret token: messages from
any other peer (a local process that connected first, say) are dropped unread. Closing it
sends the worker a stop message, waits up to the streamer's ``timeout`` for it to exit, then
kills it, and releases the rest.
"""

from __future__ import annotations

import contextlib
import hmac
import multiprocessing
import os
import time
from array import array
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import zmq

from .. import transport as _transport
from .._seeds import Seed
from ..exceptions import PescadorError, WorkerError
from ..transport import CREDIT, STOP
from ._wire import HELLO
from ._worker import _AUTO_BYTES, _AUTO_MAX_ITEMS, _AUTO_MIN_ITEMS, _worker_main

if TYPE_CHECKING:
    from . import ZMQStreamer

#: How often the consumer checks that a silent worker is still alive (seconds).
_POLL_S = 0.1


class _Link:
    """What one iteration owns: the worker process, the socket, its context, the directory.

    :meth:`close` is idempotent; it runs at the end of the stream, on ``close()``, on errors
    and, through a finaliser, when the iterator is dropped or the interpreter exits.
    """

    def __init__(self, owner: ZMQStreamer) -> None:
        self.owner = owner
        self.pid = os.getpid()
        self.closed = False
        self.context: Any = None
        self.sock: Any = None
        self.process: Any = None
        self.started = False
        self.directory: str | None = None
        self.decoder: _transport.Decoder | None = None
        self.address = ""
        self.token = b""
        #: The read-ahead window: (most items, fewest items, bytes), see _Window.
        self.window: tuple[int, int, float] = (
            (_AUTO_MAX_ITEMS, _AUTO_MIN_ITEMS, _AUTO_BYTES)
            if owner.prefetch is None
            else (owner.prefetch, owner.prefetch, float("inf"))
        )

    def open(self, max_iter: int | None, seed: Seed, resume: Mapping[str, Any] | None) -> None:
        zs = self.owner
        try:
            self.context = zmq.Context()
            # ROUTER: every peer has its own queue, and a message names its sender. A process
            # that connects first (and stays silent, or talks) cannot take the worker's place.
            self.sock = sock = self.context.socket(zmq.ROUTER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVTIMEO, int(_POLL_S * 1000))
            shm = self._bind(sock, zs.shared_memory and _transport.shm_available())
            # The worker's routing id: the secret that tells its messages from a stranger's.
            self.token = token = b"P" + os.urandom(16)
            options = {
                "copy": bool(zs.copy),
                "window": self.window,
                "snapshot_every": zs.snapshot_every,
                "directory": self.directory,
                "limit": None,
            }
            maps = None
            if shm:
                assert self.directory is not None
                options["limit"] = _transport.default_limit(self.directory, 1)
                maps = _transport.ChunkMaps(self.directory, 0, writable=False)
            self.decoder = _transport.Decoder(maps, writable=False)
            context: Any = multiprocessing.get_context(zs.start_method)
            self.process = context.Process(
                target=_worker_main,
                args=(
                    self.address,
                    token,
                    _transport.Shipped(zs._stream),
                    max_iter,
                    seed,
                    resume,
                    options,
                ),
                name="pescador-zmq-worker",
                daemon=True,
            )
            _transport.start_process(
                self.process, "the ZMQStreamer worker", context.get_start_method()
            )
            self.started = True
            hello = self.recv()
            if hello[0].bytes != HELLO + token:
                raise PescadorError(f"ZMQStreamer: no hello from the worker at {self.address}")
        except BaseException:
            self.close()
            raise

    def _bind(self, sock: Any, shm: bool) -> bool:
        """Make the private directory (for shared memory, or the ``ipc`` socket) and bind the
        socket; whether items may travel through shared memory.

        Without room in ``/dev/shm`` (no free inode for the directory, its lock or the socket),
        items travel through the socket, and an ``ipc`` socket lives in the temporary directory.
        """
        if shm:
            try:
                self.directory = _transport.make_directory("zmq-", in_memory=True)
            except OSError:
                shm = False
        if self.owner.transport == "tcp":
            self.address = self._bind_tcp(sock)
            return shm
        if self.directory is not None:
            try:
                self._bind_ipc(sock, self.directory)
                return shm
            except zmq.ZMQError:  # no room for the socket either: give up /dev/shm
                _transport.remove_directory(self.directory)
                self.directory = None
        try:
            self.directory = _transport.make_directory("zmq-", in_memory=False)
            self._bind_ipc(sock, self.directory)
        except (OSError, zmq.ZMQError) as exc:
            raise PescadorError(
                f"ZMQStreamer cannot make its ipc socket in a private directory ({exc}); "
                "transport='tcp' needs none"
            ) from exc
        return False

    def _bind_ipc(self, sock: Any, directory: str) -> None:
        self.address = f"ipc://{os.path.join(directory, 'socket')}"
        sock.bind(self.address)

    def _bind_tcp(self, sock: Any) -> str:
        zs = self.owner
        try:
            port = sock.bind_to_random_port(
                "tcp://127.0.0.1", zs.min_port, zs.max_port, zs.max_tries
            )
        except (zmq.ZMQError, zmq.ZMQBindError) as exc:
            raise PescadorError(
                f"ZMQStreamer could not bind a port in [{zs.min_port}, {zs.max_port}) on "
                f"127.0.0.1 in {zs.max_tries} tries: {exc}"
            ) from exc
        return f"tcp://127.0.0.1:{port}"

    def recv(self, nowait: int = 0) -> Any:
        """The frames of the worker's next message; raises if it died without sending one.
        Messages from any other peer are dropped unread.

        With ``nowait`` true, returns None at once if no message is there.
        """
        recv = self.sock.recv
        token = self.token
        start = None
        while True:
            try:
                sender = recv(zmq.NOBLOCK if nowait else 0, copy=False)
            except zmq.Again:  # nothing for a while: is the worker still there?
                if nowait:
                    return None
                exitcode = self.process.exitcode
                if exitcode is None:
                    start = self._check_stall(start)
                    continue
                try:
                    sender = recv(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    message = _transport.death_message("the ZMQStreamer worker process", exitcode)
                    raise WorkerError(message) from None
            frame = recv(copy=False)  # the rest of a message arrives with its first frame
            parts = [frame]
            while frame.more:
                frame = recv(copy=False)
                parts.append(frame)
            if hmac.compare_digest(sender.bytes, token):
                return parts

    def _check_stall(self, start: float | None) -> float:
        """When the wait began (``start``, or now); raises once it exceeds ``stall_timeout``."""
        now = time.monotonic()
        stall = self.owner.stall_timeout
        if start is None:
            return now - _POLL_S  # one poll has passed
        if stall is not None and now - start >= stall:
            raise WorkerError(
                f"the ZMQStreamer worker process sent nothing for {now - start:.1f} s "
                f"(stall_timeout={stall}): stopped, deadlocked, swapping, or slower than "
                "stall_timeout allows"
            )
        return start

    def credit(self, count: int) -> None:
        values = array("q", [count])
        maps = self.decoder.maps if self.decoder is not None else None
        if maps is not None and maps.released:
            for chunk in maps.drain():
                values.extend(chunk)
        with contextlib.suppress(zmq.ZMQError):
            self.sock.send_multipart((self.token, CREDIT + values.tobytes()), zmq.NOBLOCK)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if os.getpid() != self.pid:
            return  # a forked copy of the consumer: the worker is not ours to stop
        try:
            self._stop_worker()
        finally:
            if self.sock is not None:
                self.sock.close(linger=0)
            if self.context is not None:
                self.context.term()
            if self.decoder is not None:
                self.decoder.close()
            if self.directory is not None:
                _transport.remove_directory(self.directory)
            self.sock = self.context = self.decoder = None

    def _stop_worker(self) -> None:
        process = self.process
        if process is None:
            return
        if not self.started:
            self.process = None
            return
        if self.sock is not None and process.exitcode is None:
            with contextlib.suppress(zmq.ZMQError):
                self.sock.send_multipart((self.token, STOP), zmq.NOBLOCK)
        self.process = None
        _transport.stop_processes([process], self.owner.timeout, force=("kill",))
