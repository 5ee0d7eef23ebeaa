"""ParallelStreamer and its iterator: start the workers, merge their items, the state
(private; see :mod:`pescador.parallel`; the handles on the workers are in ``_handle``)."""

from __future__ import annotations

import multiprocessing
import os
import select
import weakref
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping
from itertools import accumulate
from typing import Any

from .. import transport as _transport
from .._seeds import InheritedSeed, Seed, resolve_seed
from .._sharding import check_start_method
from ..core import Streamer, StreamIterator, _Plan
from ..exceptions import PescadorError
from ..mux._draws import Uniforms
from ._handle import WorkerHandle, shutdown

__all__ = ["ParallelStreamer"]


class _ParallelIterator(StreamIterator[Any]):
    """One iteration of a :class:`ParallelStreamer`: the workers, the merge, the state."""

    __slots__ = (
        "_cleanup",
        "_directory",
        "_merge",
        "_owner",
        "_shares",
        "_used_seed",
        "_workers",
    )

    kind = "ParallelStreamer"

    def __init__(self, owner: ParallelStreamer, max_iter: Any, seed: InheritedSeed) -> None:
        super().__init__(max_iter, seed)
        self._owner = owner
        self._workers: list[WorkerHandle] = []
        self._directory: str | None = None
        self._merge: Uniforms | None = None
        self._shares: list[float] = []
        self._used_seed: Seed | None = None
        self._cleanup: Any = None

    def _shape(self) -> dict[str, Any]:
        return {"n_workers": self._owner.n_workers, "ordered": self._owner.ordered}

    def _open(self) -> tuple[Iterable[Any], Streamer | None]:
        owner = self._owner
        resume = self._resume
        if resume is not None and resume.get("done"):
            return iter(()), None
        if resume is not None:
            seed = Seed.from_json(resume["seed"])
        else:
            # Unseeded, follow the pipeline's outermost mux: one seed makes it all reproducible.
            random_state = owner.random_state
            if random_state is None:
                random_state = getattr(_outermost_mux(owner.stream), "random_state", None)
            seed = resolve_seed(random_state, self._seed)
        self._used_seed = seed
        k = owner.n_workers
        self._shares = _shares(owner.stream, k)
        self._merge = Uniforms(seed.generator(0))
        if resume is not None:
            self._merge.load(resume["merge"])
        self._directory = _transport.make_directory()
        self._workers = [WorkerHandle(i) for i in range(k)]
        # Whatever happens to this iterator, its processes and files go with it.
        self._cleanup = weakref.finalize(
            self, shutdown, self._workers, self._directory, os.getpid()
        )
        context: Any = multiprocessing.get_context(owner.start_method)

        try:
            self._start_workers(context, seed, resume)
        except BaseException:
            self.close_workers()
            raise
        return self._run(), None

    def _start_workers(self, context: Any, seed: Seed, resume: Mapping[str, Any] | None) -> None:
        owner = self._owner
        k = owner.n_workers
        assert self._directory is not None
        half = max(1, owner.prefetch // 2)  # items the consumer credits at once
        options = {
            "prefetch": owner.prefetch,
            "half": half,
            "snapshot_every": owner.snapshot_every,
            "max_delay": _MAX_DELAY,
            "prefetch_bytes": _PREFETCH_BYTES,
            "limit": (
                _transport.default_limit(self._directory, k)
                if owner.shm_limit is None
                else owner.shm_limit
            ),
        }
        job = (k, owner.stream, seed)
        for w in self._workers:
            start = None
            if resume is not None:
                entry = resume["workers"][w.index]
                w.snapshot, w.skip, w.done = entry["state"], entry["skip"], entry["done"]
                start = {"state": w.snapshot, "skip": w.skip}
            if not w.done:
                w.start(context, job, self._directory, options, start)

    def _run(self) -> Iterator[Any]:
        try:
            yield from self._ordered() if self._owner.ordered else self._unordered()
        finally:
            self.close_workers()

    def _message(self, w: WorkerHandle) -> Any:
        """Worker ``w``'s next message (waiting for it)."""
        inbox = w.inbox
        assert inbox is not None
        message = inbox.pop()
        while message is None:
            self._wait(inbox.poller, {inbox.fd: w})
            if not inbox.fill():
                raise w.died()
            message = inbox.pop()
        return message

    def _wait(self, poller: Any, by_fd: dict[int, WorkerHandle]) -> list[int]:
        """The descriptors, among ``by_fd``'s, with bytes to read, waiting as long as it takes:
        first crediting the workers (one may be waiting for credit: its bytes in flight bound
        it), after 5 ms nudging them (one may hold messages), and checking every 100 ms that
        they are alive."""
        ready = poller.poll(0)
        if not ready:
            for w in by_fd.values():
                if w.delivered_since_credit:
                    w.credit()
            ready = poller.poll(_NUDGE_AFTER_MS)
        if not ready:
            for w in by_fd.values():
                w.nudge()
        while not ready:
            ready = poller.poll(100)
            if not ready:
                for w in by_fd.values():
                    assert w.inbox is not None
                    if not w.process.is_alive() and not w.inbox.ready(0):
                        raise w.died()
        return [fd for fd, _ in ready]

    def _receive(self, w: WorkerHandle) -> Any:
        """The next item of worker ``w`` (``_END`` when it has ended)."""
        kind, payload, snapshot = self._message(w)
        if kind == _transport.ITEM:
            if snapshot is not None:
                w.snapshot, w.skip = snapshot, 0  # the worker's state right after this item
            else:
                w.skip += 1
            assert w.decoder is not None
            item = w.decoder.unpack(payload)
            w.delivered_since_credit += 1
            if w.delivered_since_credit >= w.half:
                w.credit()
            return item
        if kind == _transport.END:
            w.done = True
            w.snapshot, w.skip = snapshot, 0
            return _END
        raise _transport.worker_error(payload, f"worker {w.index}")

    def _ordered(self) -> Iterator[Any]:
        """Items drawn from worker ``w`` with probability proportional to its share."""
        merge = self._merge
        assert merge is not None
        receive = self._receive
        while True:
            live = [w for w in self._workers if not w.done and self._shares[w.index] > 0]
            if not live:
                return
            if len(live) == 1:  # nothing to draw: one worker left
                w = live[0]
                while (item := receive(w)) is not _END:
                    yield item
                continue
            cum = list(accumulate(self._shares[w.index] for w in live))
            total = cum[-1]
            last = len(live) - 1
            while True:
                w = live[min(bisect_right(cum, merge() * total), last)]
                item = receive(w)
                if item is _END:
                    break  # that worker has ended: draw again among the others
                yield item

    def _unordered(self) -> Iterator[Any]:
        """Items from whichever worker is ready first."""
        poller = select.poll()
        by_fd: dict[int, WorkerHandle] = {}
        for w in self._workers:
            if not w.done and w.inbox is not None:
                poller.register(w.inbox.fd, select.POLLIN)
                by_fd[w.inbox.fd] = w
        while by_fd:
            for fd in self._wait(poller, by_fd):
                w = by_fd[fd]
                inbox = w.inbox
                assert inbox is not None
                if not inbox.fill():
                    raise w.died()
                while inbox.complete():
                    item = self._receive(w)
                    if item is _END:
                        poller.unregister(fd)
                        del by_fd[fd]
                        break
                    yield item

    def _own_state(self) -> dict[str, Any]:
        assert self._merge is not None and self._used_seed is not None
        return {
            "seed": self._used_seed.to_json(),
            "merge": self._merge.state(),
            "workers": [
                {"state": w.snapshot, "skip": w.skip, "done": w.done} for w in self._workers
            ],
        }

    def close_workers(self) -> None:
        if self._cleanup is not None:
            self._cleanup()
        for w in self._workers:
            if w.decoder is not None:
                w.decoder.close()

    def close(self) -> None:
        super().close()
        self.close_workers()


_END: Any = object()
#: A worker holds messages up to this long (seconds) to send several at once, and sends them
#: at once if the consumer has waited this long (milliseconds).
_MAX_DELAY = 0.002
_NUDGE_AFTER_MS = 5
#: Bytes of arrays a worker may have sent and the consumer not yet received (besides the
#: ``prefetch`` bound on items; one item always may).
_PREFETCH_BYTES = 64 << 20


def _shares(stream: Any, k: int) -> list[float]:
    """The weight of each worker's share of the stream's outermost mux (equal if none)."""
    from ..mux import BaseMux
    from ..mux._args import weights_or_uniform

    mux = _outermost_mux(stream)
    if mux is None:
        return [1.0] * k
    n = len(mux.streamers) if isinstance(mux.streamers, list) else k
    w = weights_or_uniform(getattr(mux, "_weights", None), n).tolist()
    assert isinstance(mux, BaseMux)
    return [sum(w[i::k]) for i in range(k)]


def _outermost_mux(stream: Any, depth: int = 0) -> Any:
    from ..mux import BaseMux

    if isinstance(stream, BaseMux):
        return stream
    if depth > 8 or not isinstance(stream, Streamer):
        return None
    candidates = [stream.streamer, *stream.args, *stream.kwargs.values()]
    for candidate in candidates:
        found = _outermost_mux(candidate, depth + 1)
        if found is not None:
            return found
    return None


class ParallelStreamer(Streamer):
    """Run ``stream`` in ``n_workers`` processes and merge their output.

    Parameters
    ----------
    stream : Streamer
        The pipeline to run (a mux, a Streamer, ``Streamer(buffer_stream, mux, 32)``, ...).
        Under the ``spawn`` and ``forkserver`` start methods it is pickled to the workers, so
        its generator functions must be importable (module-level); ``fork`` needs nothing.
    n_workers : int
        How many processes.
    prefetch : int
        Items each worker may produce ahead of the consumer (and at most about 64 MiB of
        arrays, whatever the count).
    ordered : bool
        Deterministic merge (default) or first-ready.
    random_state : None, int, RandomState, Generator or SeedSequence
        Seeds the merge and the workers' shares (``None``: the stream's own seeding, from
        numpy's global RNG when unseeded).
    start_method : str, optional
        ``'fork'``, ``'spawn'`` or ``'forkserver'``; the platform default if None.
    snapshot_every : float
        Seconds between the workers' state snapshots: resuming replays at most the items a
        worker produced in that time.
    shm_limit : int, optional
        Bytes of shared memory each worker may fill with items the consumer has not released
        (``None``: half of ``/dev/shm``'s free space, shared among the workers). An item that
        does not fit travels pickled through the worker's pipe instead: slower, never lost.

    Examples
    --------
    >>> import pescador
    >>> mux = pescador.ChainMux([pescador.Streamer("abc"), pescador.Streamer("xyz")])
    >>> sorted(pescador.ParallelStreamer(mux, n_workers=2))
    ['a', 'b', 'c', 'x', 'y', 'z']
    """

    def __init__(
        self,
        stream: Any,
        n_workers: int = 2,
        *,
        prefetch: int = 32,
        ordered: bool = True,
        random_state: Any = None,
        start_method: str | None = None,
        snapshot_every: float = 0.01,
        shm_limit: int | None = None,
    ) -> None:
        if not isinstance(stream, Streamer):
            stream = Streamer(stream)
        if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
            raise PescadorError(f"n_workers={n_workers!r} must be a positive integer")
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 1:
            raise PescadorError(f"prefetch={prefetch!r} must be a positive integer")
        if shm_limit is not None and (
            isinstance(shm_limit, bool) or not isinstance(shm_limit, int) or shm_limit < 0
        ):
            raise PescadorError(f"shm_limit={shm_limit!r} must be None or a byte count >= 0")
        check_start_method(start_method)
        from .._seeds import check_random_state

        self.stream = stream
        self.n_workers = n_workers
        self.prefetch = prefetch
        self.ordered = bool(ordered)
        self.random_state = check_random_state(random_state)
        self.start_method = start_method
        self.snapshot_every = float(snapshot_every)
        self.shm_limit = shm_limit
        self._init_stream(_Plan.own(stream))

    def __repr__(self) -> str:
        return f"ParallelStreamer({self.stream!r}, n_workers={self.n_workers})"

    def _iterate(self, max_iter: Any, seed: InheritedSeed, counted: bool = True) -> Any:
        return _ParallelIterator(self, max_iter, seed)
