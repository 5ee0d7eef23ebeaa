"""A snapshot of a watched stream's statistics: :class:`MuxStats` and :class:`StreamerStats`.

Built from a recorder's counts (:meth:`pescador.stats._recorder.Recorder.export`, or several
workers' merged) and the mux's recipe, which gives the streamers' names and target shares.
Plain frozen objects with methods for what users ask: shares against targets, per group,
the streamers never reached, items per activation against ``rate``, and a JSON form.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["GroupStats", "MuxStats", "StreamerStats"]


@dataclasses.dataclass(frozen=True)
class StreamerStats:
    """What one streamer of a mux delivered (in a :class:`MuxStats`).

    Attributes
    ----------
    index : int
        The streamer's position in the mux's ``streamers``.
    name : str
        Its file (a :mod:`pescador.io` window streamer), else a short description.
    items : int
        Items it delivered, through the mux, over all its activations.
    activations : int
        Activations of it that the mux opened (those running included).
    ended : int
        Activations that ended; ``ended_items`` the items they delivered.
    ended_items : int
    bytes_read : int or None
        Bytes of array data its activations read (window streamers of :mod:`pescador.io`;
        ``None`` for other streamers).
    share : float
        ``items`` over the mux's items (0 before any).
    target : float or None
        Its weight over the mux's total weight (the weights in force), when the mux draws by
        weight; ``None`` otherwise.
    children : MuxStats or None
        For a streamer that is a mux: its own streamers, over all its activations.
    """

    index: int
    name: str
    items: int
    activations: int
    ended: int
    ended_items: int
    bytes_read: int | None
    share: float
    target: float | None
    children: MuxStats | None = None

    @property
    def items_per_activation(self) -> float | None:
        """Mean items of its activations that ended (``None`` if none ended)."""
        return self.ended_items / self.ended if self.ended else None

    def to_dict(self) -> dict[str, Any]:
        """As JSON types (``children`` nested)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["children"] = None if self.children is None else self.children.to_dict()
        return out


@dataclasses.dataclass(frozen=True)
class GroupStats:
    """The streamers of one group together (:meth:`MuxStats.groups`)."""

    label: Any
    streamers: int
    items: int
    share: float
    target: float | None
    unreached: int


@dataclasses.dataclass(frozen=True)
class MuxStats:
    """A snapshot of what a mux iteration delivered, per streamer (:func:`pescador.stats.watch`).

    Exact: the counts are those of the items the mux delivered (for a
    :class:`~pescador.ParallelStreamer`, those its workers last reported: see
    ``unattributed``).

    Attributes
    ----------
    name : str
        The mux (its class).
    items : int
        Items delivered by the mux since it was watched (the sum over its streamers).
    activations : int
        Activations it opened.
    rate : float or None
        Its ``rate`` (StochasticMux), the mean budget of an activation.
    streamers : tuple of StreamerStats
        Per streamer, in the mux's order.
    elapsed : float or None
        Seconds since the watch began (the outermost mux only).
    unattributed : int
        ParallelStreamer: items the consumer delivered that came after its workers' last
        report (``snapshot_every``), not yet counted per streamer; 0 once the iteration ended.
    """

    name: str
    items: int
    activations: int
    rate: float | None
    streamers: tuple[StreamerStats, ...]
    elapsed: float | None = None
    unattributed: int = 0

    # -- shares ---------------------------------------------------------------------------
    def shares(self) -> np.ndarray:
        """Each streamer's share of the items (zeros before any item)."""
        return np.array([s.share for s in self.streamers], dtype=float)

    def targets(self) -> np.ndarray | None:
        """Each streamer's target share, or ``None`` when the mux has no target."""
        if not self.streamers or self.streamers[0].target is None:
            return None
        return np.array([s.target for s in self.streamers], dtype=float)

    def unreached(self) -> list[int]:
        """The streamers that delivered no item (never activated, or activated empty)."""
        return [s.index for s in self.streamers if not s.items]

    def never_activated(self) -> list[int]:
        """The streamers that the mux never activated."""
        return [s.index for s in self.streamers if not s.activations]

    @property
    def items_per_activation(self) -> float | None:
        """Mean items of the activations that ended (compare with :attr:`rate`)."""
        ended = sum(s.ended for s in self.streamers)
        return sum(s.ended_items for s in self.streamers) / ended if ended else None

    @property
    def items_per_second(self) -> float | None:
        """Throughput since the watch began (the outermost mux only)."""
        if not self.elapsed:
            return None
        return (self.items + self.unattributed) / self.elapsed

    @property
    def bytes_read(self) -> int | None:
        """Bytes of array data read by its window streamers (``None``: none is one)."""
        counts = [s.bytes_read for s in self.streamers if s.bytes_read is not None]
        return sum(counts) if counts else None

    def groups(
        self, labels: Sequence[Any] | Mapping[int, Any] | Callable[[int], Any]
    ) -> dict[Any, GroupStats]:
        """The streamers grouped by label: the items, share and target of each group.

        ``labels``: one label per streamer (a sequence or a mapping by index), or a function
        of the streamer's index. Groups come in the order of their first streamer.

        >>> import pescador
        >>> mux = pescador.StochasticMux(
        ...     ["aaaa", "bbbb", "cccc"], n_active=3, rate=2, weights=[1, 1, 2], random_state=0
        ... )
        >>> it = mux.iterate(max_iter=60)
        >>> watched = pescador.stats.watch(it)
        >>> items = list(it)
        >>> g = watched.snapshot().groups(["ab", "ab", "c"])
        >>> g["ab"].items == items.count("a") + items.count("b"), g["c"].target
        (True, 0.5)
        """
        if callable(labels):
            label_of = labels
        elif isinstance(labels, Mapping):
            label_of = labels.__getitem__
        else:
            if len(labels) != len(self.streamers):
                raise ValueError(
                    f"labels: {len(labels)} given for {len(self.streamers)} streamers"
                )
            label_of = labels.__getitem__
        members: dict[Any, list[StreamerStats]] = {}
        for s in self.streamers:
            members.setdefault(label_of(s.index), []).append(s)
        out = {}
        for label, group in members.items():
            items = sum(s.items for s in group)
            target = None if group[0].target is None else sum(s.target or 0.0 for s in group)
            out[label] = GroupStats(
                label,
                len(group),
                items,
                items / self.items if self.items else 0.0,
                target,
                sum(1 for s in group if not s.items),
            )
        return out

    def leaves(self) -> list[tuple[tuple[int, ...], StreamerStats, float | None]]:
        """Every streamer that is not a mux, through nested muxes: ``(path, stats, target)``,
        ``path`` the indices from this mux down, ``target`` the product of the shares' targets
        along it (``None`` where a mux on the path has none)."""
        out: list[tuple[tuple[int, ...], StreamerStats, float | None]] = []

        def walk(mux: MuxStats, path: tuple[int, ...], target: float | None) -> None:
            for s in mux.streamers:
                t = None if target is None or s.target is None else target * s.target
                if s.children is None:
                    out.append(((*path, s.index), s, t))
                else:
                    walk(s.children, (*path, s.index), t)

        walk(self, (), 1.0)
        return out

    def to_dict(self) -> dict[str, Any]:
        """As JSON types, with the derived figures (``items_per_activation``,
        ``items_per_second``, ``unreached``)."""
        out: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "streamers"
        }
        out["items_per_activation"] = self.items_per_activation
        out["items_per_second"] = self.items_per_second
        out["bytes_read"] = self.bytes_read
        out["unreached"] = self.unreached()
        out["streamers"] = [s.to_dict() for s in self.streamers]
        return out

    def summary(self, top: int = 5) -> str:
        """A few lines for people: totals, the largest gaps between share and target, the
        streamers never reached."""
        lines = [
            f"{self.name}: {self.items} items from {len(self.streamers)} streamers, "
            f"{self.activations} activations"
        ]
        per = self.items_per_activation
        if per is not None:
            rate = "" if self.rate is None else f" (rate {self.rate:g})"
            lines.append(f"  items per activation  {per:.2f}{rate}")
        if self.items_per_second is not None:
            lines.append(f"  throughput            {self.items_per_second:,.0f} items/s")
        unreached = self.unreached()
        lines.append(f"  never reached         {len(unreached)} of {len(self.streamers)}")
        targets = self.targets()
        if targets is not None and self.items:
            gap = self.shares() - targets
            order = np.argsort(-np.abs(gap))[:top]
            lines.append("  largest gaps (share - target):")
            for i in order.tolist():
                s = self.streamers[i]
                lines.append(
                    f"    {s.name[-40:]:<40} {s.share:8.4f} - {s.target:.4f} = {gap[i]:+.4f}"
                )
        return "\n".join(lines)


# ------------------------------------------------------------------------------ building
def streamer_name(i: int, stream: Any) -> str:
    """A streamer's name: its file for a :mod:`pescador.io` window streamer, else its kind."""
    from ..io._streamers import npy_windows, npz_windows

    func = getattr(stream, "streamer", None)
    if func is npz_windows or func is npy_windows:
        target = stream.args[0] if stream.args else None
        if isinstance(target, Mapping):
            target = next(iter(target.values()), None)
        if target is not None:
            return os.fspath(target)
    return f"{type(stream).__name__} {i}"


def is_window_streamer(stream: Any) -> bool:
    from ..io._streamers import npy_windows, npz_windows

    func = getattr(stream, "streamer", None)
    return func is npz_windows or func is npy_windows


def target_shares(mux: Any, weights: Any = None) -> np.ndarray | None:
    """The target share of each streamer of ``mux``: its weights (``weights``: those in force
    in an iteration) for a StochasticMux (not in exhaustive mode) or ShuffledMux; equal for a
    RoundRobinMux; ``None`` for a ChainMux."""
    from ..mux import RoundRobinMux, ShuffledMux, StochasticMux

    if isinstance(mux, StochasticMux) and mux.mode == "exhaustive":
        return None
    if isinstance(mux, (StochasticMux, ShuffledMux)):
        w = np.asarray(mux.weights if weights is None else weights, dtype=float)
        return w / w.sum()
    if isinstance(mux, RoundRobinMux):
        n = mux.n_streams
        return np.full(n, 1.0 / n) if n else None
    return None


def build(
    counts: Mapping[str, Any],
    mux: Any,
    weights: Any = None,
    elapsed: float | None = None,
    unattributed: int = 0,
) -> MuxStats:
    """The snapshot of ``counts`` (a recorder's export) for ``mux`` (its recipe)."""
    streamers = list(getattr(mux, "streamers", None) or [])
    items = counts["items"]
    n = max(len(items), len(streamers))
    pad = [0] * (n - len(items))
    items, activations = [*items, *pad], [*counts["activations"], *pad]
    ended, ended_items = [*counts["ended"], *pad], [*counts["ended_items"], *pad]
    nbytes = [*counts["bytes"], *pad]
    total = sum(items)
    targets = target_shares(mux, weights) if len(streamers) == n else None
    children = {i: sub for i, sub in counts.get("children", [])}
    rows = []
    for i in range(n):
        stream = streamers[i] if i < len(streamers) else None
        child = children.get(i)
        rows.append(
            StreamerStats(
                index=i,
                name=streamer_name(i, stream),
                items=items[i],
                activations=activations[i],
                ended=ended[i],
                ended_items=ended_items[i],
                bytes_read=nbytes[i] if is_window_streamer(stream) else None,
                share=items[i] / total if total else 0.0,
                target=None if targets is None else float(targets[i]),
                children=None if child is None else build(child, stream),
            )
        )
    return MuxStats(
        name=type(mux).__name__,
        items=total,
        activations=sum(activations),
        rate=getattr(mux, "rate", None),
        streamers=tuple(rows),
        elapsed=elapsed,
        unattributed=unattributed,
    )


def merge_shares(exports: Sequence[Mapping[str, Any] | None], n: int) -> dict[str, Any]:
    """The counts of a mux whose ``k`` workers each ran the share ``streamers[w::k]``
    (``exports[w]``: worker ``w``'s counts, or ``None``) as one mux's, over ``n`` streamers."""
    k = len(exports)
    merged: dict[str, Any] = {
        key: [0] * n for key in ("activations", "ended", "items", "ended_items", "bytes")
    }
    children: list[list[Any]] = []
    for w, counts in enumerate(exports):
        if counts is None:
            continue
        for key in ("activations", "ended", "items", "ended_items", "bytes"):
            column = merged[key]
            for j, value in enumerate(counts[key]):
                column[w + j * k] += value
        children.extend([w + j * k, sub] for j, sub in counts["children"])
    merged["children"] = sorted(children, key=lambda pair: pair[0])
    return merged
