"""StreamDataset: a pescador stream as a PyTorch IterableDataset (private; see
:mod:`pescador.torch`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.utils.data

from .._balance import positive_streamers, split_for
from .._seeds import RandomStateLike, Seed, check_random_state, resolve_seed
from .._sharding import outermost_mux
from ..core import Streamer
from ..exceptions import PescadorError
from ._placement import check_count, resolve_ranks
from ._share import ShareIterator

__all__ = ["StreamDataset"]


class StreamDataset(torch.utils.data.IterableDataset):
    """A pescador stream as an ``IterableDataset``, split across DataLoader workers and ranks.

    Inside a ``DataLoader`` (or ``torchdata``'s ``StatefulDataLoader``), the stream's outermost
    mux is split among all ``world_size * max(1, num_workers)`` consumers: each runs its own
    share of the mux's streamers, so no item is produced twice and the union over all ranks and
    workers is what one process would cover. The shares are balanced by weight, so the mix of
    the combined output keeps the mux's proportions (see ``docs/torch.md``).

    Parameters
    ----------
    stream : Streamer
        Any pescador stream: a mux tree, a map such as ``Streamer(buffer_stream, mux, 32)``, a
        plain Streamer. A stream without a mux runs whole in every consumer; its generator can
        read its own share with :func:`pescador.worker_info`.
    samples_per_epoch : int, optional
        Items per epoch over all ranks (like a dataset's length): each rank yields
        ``ceil(samples_per_epoch / world_size)`` items (``len(dataset)``), shared out among its
        workers, restarting a finite stream as often as needed. ``None``: each consumer runs
        its share once, to its end (or forever, for an endless stream).
    rank, world_size : int, optional
        This process's rank and the number of ranks. Default: from ``torch.distributed`` when
        it is initialised, else the ``RANK`` and ``WORLD_SIZE`` environment variables, else a
        single process.
    random_state : None, int, RandomState, Generator or SeedSequence
        The top seed. Default: the outermost mux's ``random_state``; if that is unset too,
        fresh entropy from numpy's global RNG, drawn once here.

    Notes
    -----
    Epochs: :meth:`set_epoch` reseeds the stream from the top seed and the epoch, as
    ``DistributedSampler.set_epoch`` does; without it every epoch repeats the same items.
    Order: a DataLoader takes one item (or batch) from each worker in turn. State: with
    ``StatefulDataLoader``, ``state_dict()``/``load_state_dict()`` resume exactly where the
    training loop stopped.

    Examples
    --------
    >>> import pescador, torch
    >>> streams = [pescador.Streamer(range(i * 10, i * 10 + 3)) for i in range(4)]
    >>> mux = pescador.ChainMux(streams)
    >>> loader = torch.utils.data.DataLoader(
    ...     pescador.torch.StreamDataset(mux, rank=0, world_size=1), batch_size=None
    ... )
    >>> sorted(int(x) for x in loader)
    [0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32]
    """

    def __init__(
        self,
        stream: Any,
        *,
        samples_per_epoch: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        random_state: RandomStateLike = None,
    ) -> None:
        from ..parallel import ParallelStreamer

        if isinstance(stream, ParallelStreamer):
            raise PescadorError(
                "StreamDataset: pass the stream itself, not a ParallelStreamer: the "
                "DataLoader's workers run it, each its own share"
            )
        if not isinstance(stream, Streamer):
            stream = Streamer(stream)
        self.stream = stream
        self.samples_per_epoch = check_count(samples_per_epoch, "samples_per_epoch")
        self.rank, self.world_size = resolve_ranks(rank, world_size)
        if random_state is None:
            random_state = getattr(outermost_mux(stream), "random_state", None)
        self.random_state = check_random_state(random_state)
        self._seed: Seed = resolve_seed(self.random_state, None)
        # Shared memory: DataLoader workers (persistent ones too) read the epoch set here.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._splits: dict[int, Any] = {}
        self._check_consumers(self.world_size)

    def __repr__(self) -> str:
        return (
            f"StreamDataset({self.stream!r}, samples_per_epoch={self.samples_per_epoch}, "
            f"rank={self.rank}, world_size={self.world_size})"
        )

    # -- epochs -----------------------------------------------------------------------------
    @property
    def epoch(self) -> int:
        """The epoch set by :meth:`set_epoch` (0 at first)."""
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Reseed the stream for ``epoch``, from the top seed and the epoch number.

        Call it before each epoch's ``iter(loader)``; DataLoader workers see it, persistent
        ones included.
        """
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise PescadorError(f"set_epoch({epoch!r}): expected an integer >= 0")
        self._epoch.fill_(int(epoch))

    def _seed_sequence(self, epoch: int) -> np.random.SeedSequence:
        return np.random.SeedSequence(self._seed.entropy, spawn_key=(*self._seed.key, epoch))

    # -- lengths ----------------------------------------------------------------------------
    def __len__(self) -> int:
        """Items per epoch on this rank: ``ceil(samples_per_epoch / world_size)``.

        Raises
        ------
        TypeError
            Without ``samples_per_epoch`` (the length of a stream is unknown).
        """
        if self.samples_per_epoch is None:
            raise TypeError("a StreamDataset has a length only with samples_per_epoch")
        return -(-self.samples_per_epoch // self.world_size)

    def _share_length(self, worker: int, local: int) -> int | None:
        """Items for worker ``worker`` of ``local`` on this rank (``None``: no limit)."""
        if self.samples_per_epoch is None:
            return None
        per_rank = len(self)
        return per_rank // local + (worker < per_rank % local)

    def _configuration(self, num_workers: int) -> dict[str, Any]:
        """What a state must have been saved under to resume here, with ``num_workers``."""
        return {
            "world_size": self.world_size,
            "num_workers": num_workers,
            "rank": self.rank,
            "samples_per_epoch": self.samples_per_epoch,
        }

    # -- splitting --------------------------------------------------------------------------
    def _check_consumers(self, n: int) -> None:
        streams = positive_streamers(self.stream)
        if streams is not None and streams < n:
            raise PescadorError(
                f"StreamDataset: {n} consumers (world_size={self.world_size} x "
                f"num_workers={n // self.world_size or 1}) but the stream's outermost mux has "
                f"{streams} streamer{'s' if streams != 1 else ''} that can yield items: each "
                "consumer needs at least one (use fewer workers, or more, smaller streamers)"
            )

    def _split(self, n: int) -> Any:
        """The stream laid out for ``n`` consumers (cached)."""
        split = self._splits.get(n)
        if split is None:
            self._check_consumers(n)
            split = self._splits[n] = split_for(self.stream, n)
        return split

    def __iter__(self) -> ShareIterator:
        """This consumer's share for the current epoch (in a DataLoader worker: its share)."""
        info = torch.utils.data.get_worker_info()
        if info is None:
            return ShareIterator(self, 0, 0)
        return ShareIterator(self, info.id, info.num_workers)
