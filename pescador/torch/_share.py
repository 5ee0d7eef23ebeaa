"""One consumer's pass over its share of a StreamDataset: items and exact position (private).

``iter(StreamDataset)`` returns a :class:`ShareIterator`, in each DataLoader worker (or in the
main process with ``num_workers=0``). It is what ``StatefulDataLoader`` snapshots: its
``state_dict()`` describes the items it has delivered to the loader's fetcher, which are the
items of the batches this worker has built. The loader keeps, for each worker, the snapshot of
the last batch *handed to the training loop*, so batches that were prefetched but never seen
are neither lost nor repeated on resume.

The state holds the configuration it was written under (``world_size``, ``num_workers``,
``rank``, ``worker``, ``samples_per_epoch``), the epoch, and the pescador state of the share's
iterator (``None`` before its first item).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .._balance import epoch_stream
from .._sharding import WorkerInfo, swap_worker, take_shard
from ..exceptions import PescadorError, StateError
from ._transport import wrap

if TYPE_CHECKING:
    from ._dataset import StreamDataset

__all__ = ["ShareIterator", "check_configuration", "is_share_state"]

#: Version of this wrapper's state (inside it, the pescador state has its own).
_FORMAT = 1
_KEY = "pescador_torch_state"


def is_share_state(state: Any) -> bool:
    """Whether ``state`` is a :class:`ShareIterator`'s state (of this format)."""
    return isinstance(state, Mapping) and state.get(_KEY) == _FORMAT


def check_configuration(state: Mapping[str, Any], here: Mapping[str, Any]) -> None:
    """Raise :class:`StateError` naming both values of every setting of ``here`` (but the
    worker) that differs in ``state``."""
    differs = [
        f"{name}={state.get(name)!r} in the state, {value!r} here"
        for name, value in here.items()
        if name != "worker" and state.get(name) != value
    ]
    if differs:
        raise StateError(
            "this StreamDataset state was saved under another configuration: "
            + "; ".join(differs)
            + " (a state resumes only with the same world_size, num_workers and "
            "samples_per_epoch, on the same rank)"
        )


class ShareIterator:
    """The items of one consumer's share for one epoch; ``state_dict``/``load_state_dict``.

    Parameters
    ----------
    dataset : StreamDataset
    worker : int
        This DataLoader worker's id (0 in the main process).
    num_workers : int
        The DataLoader's ``num_workers`` (0: the main process).
    """

    __slots__ = (
        "_count",
        "_dataset",
        "_epoch",
        "_in_main",
        "_info",
        "_it",
        "_items",
        "_num_workers",
        "_resume",
        "_stream",
        "_worker",
    )

    def __init__(self, dataset: StreamDataset, worker: int, num_workers: int) -> None:
        self._dataset = dataset
        self._worker = worker
        self._num_workers = num_workers
        local = max(1, num_workers)
        rank, world_size = dataset.rank, dataset.world_size
        self._info = WorkerInfo(rank * local + worker, world_size * local, rank, world_size)
        self._in_main = num_workers == 0
        self._stream = dataset._split(self._info.n_workers)
        self._count = dataset._share_length(worker, local)
        self._epoch = dataset.epoch
        self._resume: Mapping[str, Any] | None = None
        self._it: Any = None
        self._items: Iterator[Any] | None = None

    # -- items ------------------------------------------------------------------------------
    def __iter__(self) -> ShareIterator:
        return self

    def __next__(self) -> Any:
        items = self._items
        if items is None:
            return self._first()
        try:
            if self._in_main:  # worker_info() describes this share only while it runs
                previous = swap_worker(self._info)
                try:
                    return next(items)
                finally:
                    swap_worker(previous)
            return wrap(next(items))
        except StopIteration:
            self._check_filled()
            raise

    def _first(self) -> Any:
        """Open the share (its outermost mux takes its share as it opens) and take an item."""
        dataset = self._dataset
        seed = dataset._seed.child(self._epoch)
        stream = epoch_stream(self._stream, dataset._seed_sequence(self._epoch))
        if self._count is None:
            it = stream._iterate(None, seed)
        else:  # a finite stream is restarted to fill the epoch
            it = stream._call((), {"max_iter": self._count, "cycle": True}, seed)
        if self._resume is not None and self._resume["stream"] is not None:
            it.load_state_dict(self._resume["stream"])
        self._it = it
        previous = swap_worker(self._info, shard=True)
        try:
            self._items = items = iter(it)  # a mux at the top opens here, a map's at next()
            item = next(items)
            return item if self._in_main else wrap(item)
        except StopIteration:
            self._check_filled()
            raise
        finally:
            take_shard()  # a stream without a mux leaves it pending
            if self._in_main:
                swap_worker(previous)

    def _check_filled(self) -> None:
        count = self._count
        if count is not None and self._it is not None and self._it.items_delivered < count:
            raise PescadorError(
                f"the share of DataLoader worker {self._worker} on rank {self._info.rank} "
                f"(consumer {self._info.index} of {self._info.n_workers}) yields nothing, so it "
                f"cannot deliver its {count} items of samples_per_epoch="
                f"{self._dataset.samples_per_epoch}: every consumer needs a streamer that "
                "yields items"
            )

    def close(self) -> None:
        """Stop early and release the share's sources (files, generators)."""
        if self._it is not None:
            self._it.close()

    # -- state ------------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return {**self._dataset._configuration(self._num_workers), "worker": self._worker}

    def state_dict(self) -> dict[str, Any]:
        """The position: the items delivered so far in this epoch (JSON types)."""
        if self._it is not None:
            stream = self._it.state_dict()
        else:
            stream = None if self._resume is None else self._resume["stream"]
        return {_KEY: _FORMAT, **self._config(), "epoch": self._epoch, "stream": stream}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state``; before the first item only.

        Raises
        ------
        StateError
            If the state comes from another configuration (``world_size``, ``num_workers``,
            ``rank``, ``samples_per_epoch``), is not such a state, or the pass has started.
        """
        if self._items is not None:
            raise StateError("load_state_dict() must be called before the first item")
        if not is_share_state(state):
            raise StateError(
                "not the state of a pescador.torch.StreamDataset iterator (format "
                f"{_FORMAT}); got {str(state)[:80]}"
            )
        check_configuration(state, self._config())
        if state.get("worker") != self._worker:
            raise StateError(
                f"the state of DataLoader worker {state.get('worker')!r} was given to worker "
                f"{self._worker}"
            )
        self._epoch = int(state["epoch"])
        self._resume = dict(state)
