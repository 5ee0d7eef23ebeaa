"""One iteration of a :class:`~pescador.ray.RayStreamer`: start the actors, merge, the state
(private; see :mod:`pescador.ray`)."""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import ray
import ray.cloudpickle

from .. import _state
from .._seeds import InheritedSeed, Seed, resolve_seed
from .._sharding import outermost_mux, share_weights
from ..core import Streamer, StreamIterator
from ..mux._draws import Uniforms
from ..parallel._consumer import check_workers
from ._actor import Job, ShareActor
from ._merge import ActorHandle, RayMerge, shutdown

if TYPE_CHECKING:
    from ._streamer import RayStreamer

__all__ = ["RayIterator"]

_WHERE = "RayStreamer state"

#: The actor class, made by Ray on first use (``ray.remote`` needs no running Ray).
_REMOTE: Any = None


def _remote() -> Any:
    global _REMOTE
    if _REMOTE is None:
        _REMOTE = ray.remote(ShareActor)
    return _REMOTE


class RayIterator(StreamIterator[Any]):
    """One iteration of a :class:`~pescador.ray.RayStreamer`: its actors, the merge, the
    state (per actor: its stream's state after its last answer delivered in full, the items
    delivered since, whether it ended; and the merge's draws)."""

    __slots__ = ("_cleanup", "_handles", "_merge", "_owner", "_used_seed")

    kind = "RayStreamer"

    def __init__(self, owner: RayStreamer, max_iter: Any, seed: InheritedSeed) -> None:
        super().__init__(max_iter, seed)
        self._owner = owner
        self._handles: list[ActorHandle] = []
        self._merge: Uniforms | None = None
        self._used_seed: Seed | None = None
        self._cleanup: Any = None

    def _shape(self) -> dict[str, Any]:
        owner = self._owner
        part, parts = owner._part
        shape: dict[str, Any] = {"n_actors": owner.n_actors, "ordered": owner.ordered}
        if parts > 1:
            shape.update(part=part, parts=parts, length=owner.length)
        return shape

    def _check_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        checked = super()._check_state(state)
        if not checked.get("done"):
            check_workers(checked, self._owner.n_actors, _WHERE)
        return checked

    def _open(self) -> tuple[Iterable[Any], Streamer | None]:
        owner = self._owner
        resume = self._resume
        if resume is not None and resume.get("done"):
            return iter(()), None
        if resume is not None:
            seed = _state.seed(_state.field(resume, "seed", _WHERE), _WHERE, "seed")
        else:  # unseeded, follow the outermost mux (as ParallelStreamer does)
            random_state = owner.random_state
            if random_state is None:
                random_state = getattr(outermost_mux(owner.stream), "random_state", None)
            seed = resolve_seed(random_state, self._seed)
        self._used_seed = seed
        k = owner.n_actors
        part, parts = owner._part
        # Actor j of part p runs the share p + parts * j of parts * k (the part's share, split
        # among its actors), with the merge's draws of part p.
        consumers = [part + parts * j for j in range(k)]
        weights = share_weights(owner.stream, parts * k)
        self._merge = draws = Uniforms(seed.generator(part))
        if resume is not None:
            draws.load(_state.field(resume, "merge", _WHERE), _WHERE, "merge")
        args = (owner.items_per_call, _BYTES_PER_CALL, _SECONDS_PER_CALL)
        label = "actor {}" if parts == 1 else f"actor {{}} of part {part}"
        self._handles = handles = [
            ActorHandle(j, label.format(j), args, owner.calls_in_flight) for j in range(k)
        ]
        endless = None
        if owner.length is not None:
            endless = (
                f"part {part} of {parts} ended before its length={owner.length} items: its "
                "actors' shares yield nothing (every part needs streamers that yield items)"
            )
        shares = [weights[c] for c in consumers]
        merge = RayMerge(handles, shares, draws, owner.ordered, owner.stall_timeout, endless)
        items = merge.items()
        # Whatever happens to the items' generator (the end, close(), an error, the iterator
        # dropped), the actors go with it; it holds no reference to this iterator.
        self._cleanup = cleanup = weakref.finalize(items, shutdown, handles, os.getpid())
        merge.close = cleanup
        try:
            self._start_actors(seed, consumers, resume)
        except BaseException:
            cleanup()
            raise
        return items, None

    def _start_actors(
        self, seed: Seed, consumers: list[int], resume: Mapping[str, Any] | None
    ) -> None:
        owner = self._owner
        part, parts = owner._part
        count = parts * owner.n_actors
        stream = ray.put(ray.cloudpickle.dumps(owner.stream))  # one copy for every actor
        remote = _remote().options(**owner._options)
        for w, consumer in zip(self._handles, consumers, strict=True):
            start = None
            if resume is not None:
                entry = resume["workers"][w.index]
                w.snapshot, w.skip, w.done = entry["state"], entry["skip"], entry["done"]
                start = {"state": w.snapshot, "skip": w.skip}
            if not w.done:
                cycle = owner.length is not None
                job = Job(consumer, count, part, parts, seed.to_json(), cycle, start)
                w.start(remote.remote(job, stream))

    def _own_state(self) -> dict[str, Any]:
        assert self._merge is not None and self._used_seed is not None
        return {
            "seed": self._used_seed.to_json(),
            "merge": self._merge.state(),
            "workers": [
                {"state": w.snapshot, "skip": w.skip, "done": w.done} for w in self._handles
            ],
        }

    def close(self) -> None:
        super().close()
        if self._cleanup is not None:
            self._cleanup()


#: An actor's answer stops at this many bytes of arrays (besides ``items_per_call``) ...
_BYTES_PER_CALL = 8 << 20
#: ... or after this long (seconds; at least one item): a slow stream's items are not held.
_SECONDS_PER_CALL = 0.05
