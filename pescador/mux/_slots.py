"""The slot table of a mux iteration, and the live slots of the policies that draw them.

A *slot* runs one activation of a child stream. :class:`SlotTable` holds the slots of one
iteration in parallel lists, and opens, restores and closes the children; every policy holds
one (:mod:`pescador.mux._loop` gives the policies' contract). :class:`DrawnSlots` is the part
that ShuffledMux's and StochasticMux's policies share: live slots kept contiguous, and the
stream that draws each item's slot by weight (:mod:`pescador.mux._slot_draws`).

Child activation ``n`` of an iteration gets the seed ``seed.child(n)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .._seeds import Seed
from .._state import MAX_COUNT, fail, field, integer, mapping, sequence, within
from ..core import Streamer, StreamIterator
from ..exceptions import StateError, add_note
from ._budgets import UNLIMITED
from ._slot_draws import WeightedSlotDraws

__all__ = ["DrawnSlots", "SlotTable", "Views", "check_slots"]

#: The items of a slot without an activation: ``next`` on it raises StopIteration.
_FINISHED: Iterator[Any] = iter(())

#: A watched table's log of ended activations (``stats``) is added up when it holds this many.
LOG_FLUSH = 2048

#: Per slot: child iterator, weight, items delivered, streamer (a mux's compatibility views).
Views = tuple[list[Any], list[float], list[int], list[int]]


class SlotTable:
    """The slots of one mux iteration, in parallel lists indexed by slot.

    The lists are changed in place, never replaced: the mux's loop holds ``sources`` and
    ``left`` for the whole iteration.

    Attributes
    ----------
    sources : list of iterator
        Each slot's items: the child's C-level iterator, which the loop pulls from.
    left : list of int
        Each slot's budget: the items it may still deliver (``UNLIMITED``: no limit).
    children : list of StreamIterator or None
        Each slot's child iterator (``None`` when the slot is closed).
    streamer_ids : list of int
        Which streamer each slot runs.
    activation_ids : list of int
        Which activation of the iteration each slot runs (its seed is ``seed.child(n)``).
    opened : int
        How many activations the iteration has opened.
    stats : Recorder or None
        What a watched iteration counts (:mod:`pescador.stats`): a list, to which the table
        appends ``(streamer, tally)`` of each activation that ends (its child's counter of
        items delivered), asking it to add them up when it holds :data:`LOG_FLUSH`; when its
        ``slow`` is set (nested muxes, window streamers), also told of each activation as it
        starts and ends. ``None`` (unwatched) costs one test per activation.
    """

    __slots__ = (
        "__weakref__",
        "activation_ids",
        "children",
        "left",
        "name",
        "opened",
        "seed",
        "sources",
        "stats",
        "streamer_ids",
        "streamers",
    )

    def __init__(self, name: str, streamers: Sequence[Streamer], seed: Seed) -> None:
        self.name = name
        self.streamers = streamers
        self.seed = seed
        self.opened = 0
        self.sources: list[Iterator[Any]] = []
        self.left: list[int] = []
        self.children: list[StreamIterator[Any] | None] = []
        self.streamer_ids: list[int] = []
        self.activation_ids: list[int] = []
        self.stats: Any = None

    def reserve(self, n: int) -> None:
        """Make room for ``n`` slots (closed until opened)."""
        grow = n - len(self.sources)
        if grow > 0:
            self.sources += [_FINISHED] * grow
            self.left += [0] * grow
            self.children += [None] * grow
            self.streamer_ids += [0] * grow
            self.activation_ids += [0] * grow

    def open(
        self,
        k: int,
        i: int,
        budget: int,
        stream: Streamer | None = None,
        resume: tuple[int, Any] | None = None,
    ) -> None:
        """Start an activation of streamer ``i`` (or of ``stream``) in slot ``k``.

        ``resume``: ``(activation, child state)`` of a checkpoint to continue from; without
        it, the iteration's next activation starts afresh.
        """
        if resume is None:
            n = self.opened
            self.opened = n + 1
            state = None
        else:
            n, state = resume
        if stream is None:
            stream = self.streamers[i]
        try:
            child, items = stream._open_child((self.seed, n), state)
        except Exception as exc:
            add_note(exc, _raised_by(i, self.name, stream))
            raise
        stats = self.stats
        if stats is not None:  # watched (pescador.stats): once per activation, C-level
            old = self.children[k]
            if old is not None:
                stats.append((self.streamer_ids[k], old._tally))
                if stats.slow:
                    stats.ending(self.streamer_ids[k], old)
                if len(stats) >= LOG_FLUSH:
                    stats.flush()
            if stats.slow:
                stats.started(i, child)
        self.sources[k] = items
        self.left[k] = budget
        self.children[k] = child
        self.streamer_ids[k] = i
        self.activation_ids[k] = n

    def restore(
        self, k: int, entry: Sequence[Any], stream: Streamer | None = None, path: str = ""
    ) -> None:
        """Restore slot ``k`` from its checkpoint ``entry`` (see :meth:`entry`), checked by
        :func:`check_slots`; ``path``: where the entry is, for the errors of its child."""
        i, budget, n, state = entry
        try:
            self.open(k, i, budget, stream, (n, state))
        except StateError as exc:
            within(exc, f"{path}[3]" if path else f"slot {k}")
            raise

    def finish(self, k: int) -> int:
        """Close slot ``k``'s activation and return how many items it delivered."""
        child = self.children[k]
        if child is None:
            return 0
        child.close()
        self.children[k] = None
        self.sources[k] = _FINISHED
        if self.stats is not None:
            self.stats.ended(self.streamer_ids[k], child)
        return child.items_delivered

    def close(self) -> None:
        """Close every slot."""
        for k in range(len(self.children)):
            self.finish(k)

    def entry(self, k: int) -> list[Any]:
        """Checkpoint of open slot ``k``: ``[streamer, budget left, activation, child state]``."""
        child = self.children[k]
        assert child is not None
        return [self.streamer_ids[k], self.left[k], self.activation_ids[k], child._state_dict()]

    def describe(self, k: int, stream: Streamer | None = None) -> str:
        """Where an error from slot ``k`` (running ``stream``, if given) came from."""
        i = self.streamer_ids[k]
        return _raised_by(i, self.name, self.streamers[i] if stream is None else stream)

    def views(self) -> Views:
        """Every slot, each of weight 1 (see :data:`Views`)."""
        children = self.children
        counts = [0 if child is None else child.items_delivered for child in children]
        return list(children), [1.0] * len(children), counts, list(self.streamer_ids)


def check_slots(
    state: Mapping[str, Any],
    where: str,
    *,
    key: str = "slots",
    weights: Sequence[float] | None = None,
    most: int,
    limited: bool = True,
    distinct: bool = False,
    one: bool = False,
) -> list[Sequence[Any]]:
    """The slot entries ``state[key]`` of a mux state, checked (see :meth:`SlotTable.entry`).

    Each is ``[streamer, budget, activation, child state]``: a streamer of positive weight
    (``weights``; without them, any index below ``most``), in no other slot if ``distinct``;
    a budget of at least 1 (or, unless ``limited``, an ``UNLIMITED`` one that counted down at
    most ``n`` items); an activation the
    iteration opened, in no other slot; a child state (checked when the child opens) whose
    count, with the other slots', is at most the mux's. Also checks ``opened``. With ``one``,
    ``state[key]`` is one entry, or None.
    """
    n = state.get("n", MAX_COUNT)  # (the mux's count: a policy's own tests have none)
    opened = integer(field(state, "opened", where), where, "opened")
    if one:  # one slot or None
        entry = field(state, key, where)
        entries: Sequence[Any] = [] if entry is None else [entry]
    else:
        entries = sequence(field(state, key, where), where, key, most=most)
    streamers: set[int] = set()
    activations: set[int] = set()
    delivered = 0
    for k, entry in enumerate(entries):
        path = key if one else f"{key}[{k}]"
        sequence(entry, where, path, length=4)
        high = most - 1 if weights is None else len(weights) - 1
        i = integer(entry[0], where, f"{path}[0]", high=high)
        if weights is not None and not weights[i] > 0:
            fail(where, f"{path}[0]", "a streamer of positive weight", i)
        if distinct and i in streamers:
            fail(where, f"{path}[0]", "a streamer in no other slot", i)
        streamers.add(i)
        # (An unlimited budget counts down too, from UNLIMITED: by one per item at most.)
        integer(entry[1], where, f"{path}[1]", low=1 if limited else UNLIMITED - n)
        activation = integer(entry[2], where, f"{path}[2]", high=opened - 1)
        if activation in activations:
            fail(where, f"{path}[2]", "an activation in no other slot", activation)
        activations.add(activation)
        child = mapping(entry[3], where, f"{path}[3]")
        count = child.get("n")
        if type(count) is int and count > 0:
            delivered += count
    if delivered > n:
        fail(where, key, f"activations that delivered at most n={n} items in all", delivered)
    return list(entries)


def _raised_by(i: int, name: str, stream: Any) -> str:
    return f"raised by streamer {i} of {name}: {stream!r}"


class DrawnSlots:
    """The live slots of a policy that draws each item's slot at random, by weight.

    Live slots are ``0 .. n_live - 1`` of the table: one that is retired is swapped with the
    last live one. ``draws`` keeps the live slots' weights (in slot order) and yields the slot
    of each item, a C-level stream that the loop iterates directly.
    """

    __slots__ = ("draws", "n_live", "table")

    def __init__(self, table: SlotTable, draws: WeightedSlotDraws) -> None:
        self.table = table
        self.draws = draws
        self.n_live = 0

    def start(self, weights: list[float]) -> None:
        """Make ``len(weights)`` live slots, of these weights (the policy opens them)."""
        self.draws.reset(weights)
        self.n_live = len(weights)
        self.table.reserve(self.n_live)

    def restore(
        self,
        entries: Sequence[Sequence[Any]],
        weights: list[float],
        draws_state: Any,
        where: str = "state",
    ) -> None:
        """Restore the live slots from their checkpoint ``entries`` (checked by
        :func:`check_slots`), of these weights, and their draws from ``draws_state``
        (``sel`` of the state ``where``)."""
        self.start(weights)
        self.draws.load(draws_state, where, "sel")
        table = self.table
        for k, entry in enumerate(entries):
            table.restore(k, entry, path=f"{where}: slots[{k}]")

    def order(self) -> Iterator[int]:
        """The slot of each item, for as long as any slot is live."""
        return self.draws.stream if self.n_live else iter(())

    def retire(self, k: int) -> None:
        """Close slot ``k`` for good: the last live slot moves into its place."""
        table = self.table
        table.finish(k)
        last = self.n_live - 1
        if k != last:
            columns: tuple[list[Any], ...] = (
                table.sources,
                table.left,
                table.children,
                table.streamer_ids,
                table.activation_ids,
            )
            for column in columns:
                column[k], column[last] = column[last], column[k]
        self.n_live = last
        self.draws.remove(k)
        if not last:
            self.draws.stop()

    def stop(self) -> None:
        """End the iteration: close every slot."""
        self.table.close()
        self.n_live = 0
        self.draws.stop()

    def entries(self) -> list[list[Any]]:
        """The live slots' checkpoints (see :meth:`SlotTable.entry`)."""
        return [self.table.entry(k) for k in range(self.n_live)]

    def views(self) -> Views:
        """The live slots, with their weights (see :data:`Views`)."""
        n = self.n_live
        table = self.table
        children = table.children[:n]
        counts = [0 if child is None else child.items_delivered for child in children]
        return children, self.draws.w[:n], counts, table.streamer_ids[:n]
