"""ParallelStreamer and its iterator: start the workers, the state (private; see
:mod:`pescador.parallel`; the handles on the workers are in ``_handle``, the loop that merges
their items in ``_merge``)."""

from __future__ import annotations

import functools
import multiprocessing
import os
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from .. import _state
from .. import transport as _transport
from .._seeds import InheritedSeed, Seed, resolve_seed
from .._sharding import check_start_method
from .._sharding import outermost_mux as _outermost_mux
from .._sharding import share_weights as _shares
from ..core import Streamer, StreamIterator, _Plan
from ..exceptions import PescadorError
from ..mux._draws import Uniforms
from ..transport import check_seconds
from ._handle import WorkerHandle, shutdown
from ._merge import Merge
from ._worker import Job

__all__ = ["ParallelStreamer"]


class _ParallelIterator(StreamIterator[Any]):
    """One iteration of a :class:`ParallelStreamer`: the workers, the merge, the state."""

    __slots__ = (
        "_cleanup",
        "_directory",
        "_merge",
        "_owner",
        "_shares",
        "_stats",
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
        self._stats = False  # watched (pescador.stats): the workers send their counts

    def _shape(self) -> dict[str, Any]:
        return {"n_workers": self._owner.n_workers, "ordered": self._owner.ordered}

    def _check_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        checked = super()._check_state(state)
        if not checked.get("done"):
            check_workers(checked, self._owner.n_workers, _WHERE)
        return checked

    def _open(self) -> tuple[Iterable[Any], Streamer | None]:
        owner = self._owner
        resume = self._resume
        if resume is not None and resume.get("done"):
            return iter(()), None
        if resume is not None:
            seed = _state.seed(_state.field(resume, "seed", _WHERE), _WHERE, "seed")
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
            self._merge.load(_state.field(resume, "merge", _WHERE), _WHERE, "merge")
        try:
            self._directory = _transport.make_directory()
        except OSError:
            self._directory = None  # /dev/shm has no room even for it: items are pickled
        self._workers = [WorkerHandle(i) for i in range(k)]
        merge = Merge(self._workers, self._shares, self._merge, owner.ordered, owner.stall_timeout)
        items = merge.items()
        # Whatever happens to the items' generator (the end, close(), an error, the iterator
        # dropped), the processes and files go with it; it holds no reference to this
        # iterator, so reference counting alone frees it.
        self._cleanup = weakref.finalize(
            items, shutdown, self._workers, self._directory, os.getpid()
        )
        merge.close = functools.partial(_close_workers, self._cleanup, self._workers)
        context: Any = multiprocessing.get_context(owner.start_method)
        try:
            self._start_workers(context, seed, resume)
        except BaseException:
            self.close_workers()
            raise
        return items, None

    def _start_workers(self, context: Any, seed: Seed, resume: Mapping[str, Any] | None) -> None:
        owner = self._owner
        k = owner.n_workers
        half = max(1, owner.prefetch // 2)  # items the consumer credits at once
        options = {
            "prefetch": owner.prefetch,
            "half": half,
            "snapshot_every": owner.snapshot_every,
            "max_delay": _MAX_DELAY,
            "prefetch_bytes": _PREFETCH_BYTES,
            "stats": self._stats,
            "limit": (
                owner.shm_limit
                if owner.shm_limit is not None or self._directory is None
                else _transport.default_limit(self._directory, k)
            ),
        }
        for w in self._workers:
            start = None
            if resume is not None:
                entry = resume["workers"][w.index]
                w.snapshot, w.skip, w.done = entry["state"], entry["skip"], entry["done"]
                start = {"state": w.snapshot, "skip": w.skip}
            if not w.done:
                stream = _transport.Shipped(owner.stream)
                w.start(context, Job(w.index, k, stream, seed, self._directory, options, start))

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
        _close_workers(self._cleanup, self._workers)

    def close(self) -> None:
        super().close()
        self.close_workers()


_WHERE = "ParallelStreamer state"


def check_workers(checked: Mapping[str, Any], n_workers: int, where: str) -> None:
    """Check the ``workers`` field of a consumer's state (``where`` names it in errors): per
    worker, its stream's state (None: from its start), the items it delivered since (each
    also counted in ``n``, so a resume never replays more), and whether it ended. The worker
    checks its stream's state itself (a StateError comes back from it). Also used by
    :mod:`pescador.ray`, whose actors are its workers."""
    workers = _state.field(checked, "workers", where)
    _state.sequence(workers, where, "workers", length=n_workers)
    delivered = 0  # by the workers: what their states and skips say
    for i, entry in enumerate(workers):
        path = f"workers[{i}]"
        _state.mapping(entry, where, path)
        snapshot = _state.field(entry, "state", where)
        if snapshot is not None:
            _state.mapping(snapshot, where, f"{path}.state")
            count = snapshot.get("n")
            delivered += count if type(count) is int and count > 0 else 0
        delivered += _state.integer(_state.field(entry, "skip", where), where, f"{path}.skip")
        _state.boolean(_state.field(entry, "done", where), where, f"{path}.done")
    if delivered > checked["n"]:
        _state.fail(
            where, "workers", f"states and skips of at most n={checked['n']} items", delivered
        )


def _close_workers(cleanup: Any, workers: list[WorkerHandle]) -> None:
    """Stop the workers and remove the directory (``cleanup``, the iterator's finaliser), and
    release the consumer's mappings."""
    if cleanup is not None:
        cleanup()
    for w in workers:
        if w.decoder is not None:
            w.decoder.close()


#: A worker holds messages up to this long (seconds) to send several at once.
_MAX_DELAY = 0.002
#: Bytes of arrays a worker may have sent and the consumer not yet received (besides the
#: ``prefetch`` bound on items; one item always may).
_PREFETCH_BYTES = 64 << 20


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
    stall_timeout : float, optional
        Seconds the consumer waits for a worker's next message before it raises
        :class:`~pescador.exceptions.WorkerError` naming the worker (one stopped, deadlocked
        or swapping). ``None`` (default): it waits as long as it takes (a worker that dies is
        noticed within 0.1 s either way).

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
        stall_timeout: float | None = None,
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
        check_seconds("stall_timeout", stall_timeout)
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
        self.stall_timeout = None if stall_timeout is None else float(stall_timeout)
        self._init_stream(_Plan.own(stream))

    def __repr__(self) -> str:
        return f"ParallelStreamer({self.stream!r}, n_workers={self.n_workers})"

    def _iterate(self, max_iter: Any, seed: InheritedSeed, counted: bool = True) -> Any:
        return _ParallelIterator(self, max_iter, seed)
