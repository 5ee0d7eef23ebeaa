"""The selection policies of ShuffledMux, RoundRobinMux and ChainMux.

- :class:`ShuffledPolicy`: a slot per streamer with positive weight, drawn by weight
  (:class:`~pescador._select.RandomSlots`); a streamer that ends restarts, or is retired if it
  yielded nothing.
- :class:`RoundRobinPolicy`: one item per live streamer per turn, in list order (or permuted
  per pass).
- :class:`ChainPolicy`: one slot running the streamers one after another, each to its end.

StochasticMux's policy is in :mod:`pescador._stochastic`; the slot table they all share, in
:mod:`pescador._select`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

import numpy as np

from .._seeds import Seed
from ..core import Streamer
from ..exceptions import PescadorError, StateError
from ._slots import UNLIMITED, RandomSlots, Slots


class ShuffledPolicy(RandomSlots):
    """ShuffledMux: every streamer with positive weight has a slot; ended ones restart."""

    __slots__ = ()

    def __init__(
        self,
        name: str,
        streamers: Sequence[Streamer],
        seed: Seed,
        weights: np.ndarray | None,
        resume: Mapping[str, Any] | None = None,
    ) -> None:
        n = len(streamers)
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        members: list[int] = np.flatnonzero(w > 0).tolist()
        super().__init__(name, streamers, seed, w, seed.generator(0), len(members))
        wlist = self.weights
        if resume is None:
            self.sel.reset([wlist[i] for i in members])
            self.n_live = len(members)
            self.reserve(self.n_live)
            for k, i in enumerate(members):
                self.open(k, i, UNLIMITED)
        else:
            self.opened = resume["opened"]
            slots = resume["slots"]
            self.sel.reset([wlist[entry[0]] for entry in slots])
            self.sel.load(resume["sel"])
            self.n_live = len(slots)
            self.restore_slots(slots)

    retry = True  # the same streamer restarts: the draw stays with it

    def ended(self, k: int) -> bool:
        if self.finish(k):
            self.open(k, self.idx[k], UNLIMITED)
            return True
        self.kill(k)  # yielded nothing since its start: drop it for this iteration
        return False

    def views(self) -> tuple[list[Any], list[float], list[int], list[int]]:
        """Per streamer (as in pescador 3.0): dropped streamers have weight 0."""
        n = len(self.streamers)
        streams: list[Any] = [None] * n
        weights = [0.0] * n
        counts = [0] * n
        for k in range(self.n_live):
            i, child = self.idx[k], self.iters[k]
            streams[i], weights[i] = child, self.sel.w[k]
            counts[i] = 0 if child is None else child.items_delivered
        return streams, weights, counts, list(range(n))

    def state(self) -> dict[str, Any]:
        return {"opened": self.opened, "slots": self.live_slots(), "sel": self.sel.state()}


class RoundRobinPolicy(Slots):
    """RoundRobinMux: one item per live streamer per turn, in order (or permuted per pass)."""

    __slots__ = ("alive", "mode", "produced", "sel", "turn", "turns")

    def __init__(
        self,
        name: str,
        streamers: Sequence[Streamer],
        seed: Seed,
        mode: str,
        resume: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name, streamers, seed)
        n = len(streamers)
        self.mode = mode
        self.sel = seed.generator(0)
        self.alive = [False] * n
        self.turns: list[int] = []
        self.turn = 0  # position in the current pass's turns
        self.produced = 0  # items since the streams were last (re)started
        if resume is None:
            self.reserve(n)
            self.restart(list(range(n)))
            return
        self.opened = resume["opened"]
        self.sel.bit_generator.state = resume["sel"]
        self.turns, self.turn, self.produced = resume["turns"], resume["turn"], resume["produced"]
        self.reserve(n)
        self.idx = list(range(n))
        for entry in resume["slots"]:
            self.alive[entry[0]] = True
            self.resume_slot(entry[0], entry)

    def restart(self, turns: list[int]) -> None:
        for i in turns:
            self.open(i, i, UNLIMITED)
            self.alive[i] = True
        self.turns = turns
        self.turn = 0
        self.produced = 0

    def order(self) -> Iterator[int]:
        while True:
            turns = self.turns
            if not turns:
                if self.mode == "exhaustive" or not self.produced:
                    return
                restart = list(range(len(self.streamers)))
                if self.mode == "permuted_cycle":
                    restart = self.sel.permutation(len(restart)).tolist()
                self.restart(restart)
                continue
            while self.turn < len(turns):
                self.turn += 1
                yield turns[self.turn - 1]
            alive = self.alive
            self.turns = [k for k in turns if alive[k]]
            self.turn = 0

    def ended(self, k: int) -> bool:
        self.produced += self.finish(k)
        self.alive[k] = False  # its turn is used up (as in pescador 3.0)
        return False

    def state(self) -> dict[str, Any]:
        return {
            "opened": self.opened,
            "slots": [self.slot_state(k) for k in range(len(self.iters)) if self.alive[k]],
            "turns": self.turns,
            "turn": self.turn,
            "produced": self.produced,
            "sel": self.sel.bit_generator.state,
        }


class ChainPolicy(Slots):
    """ChainMux: one slot running the streamers one after another."""

    __slots__ = ("current", "cycle", "live", "pending", "position", "produced", "source")

    def __init__(
        self,
        name: str,
        source: Callable[[], Iterator[Any]],
        seed: Seed,
        cycle: bool,
        resume: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name, [], seed)
        self.source = source
        self.cycle = cycle
        self.pending: Iterator[Any] = source()
        self.position = -1  # index of the running streamer in the current pass
        self.produced = 0  # items in the current pass, before the running streamer
        self.live = True
        self.current: Streamer | None = None
        self.reserve(1)
        if resume is None:
            self.advance()
            return
        self.opened = resume["opened"]
        self.produced = resume["produced"]
        if resume["slot"] is None:
            self.live = False
            return
        self.position = resume["slot"][0]
        stream = next(islice(self.pending, self.position, None), None)
        if stream is None:
            raise StateError(f"cannot resume {name}: it now has fewer streamers")
        self.current = stream if isinstance(stream, Streamer) else _as_streamer(stream, name)
        self.resume_slot(0, resume["slot"], self.current)

    def describe(self, i: int) -> str:
        return f"raised by streamer {i} of {self.name}: {self.current!r}"

    def advance(self) -> None:
        """Open the next streamer in slot 0, starting a new pass if cycling."""
        while True:
            for item in self.pending:
                self.position += 1
                stream = item if isinstance(item, Streamer) else _as_streamer(item, self.name)
                self.current = stream
                self.open(0, self.position, UNLIMITED, stream)
                return
            if not (self.cycle and self.produced):
                self.live = False
                return
            self.pending = self.source()
            self.position = -1
            self.produced = 0

    def order(self) -> Iterator[int]:
        while self.live:
            yield 0

    runs = True  # each streamer to its end, then the next

    def ended(self, k: int) -> bool:
        self.produced += self.finish(k)
        self.advance()
        return self.live

    def state(self) -> dict[str, Any]:
        live = self.live and self.iters and self.iters[0] is not None
        return {
            "opened": self.opened,
            "produced": self.produced,
            "slot": self.slot_state(0) if live else None,
        }


def _as_streamer(item: Any, name: str) -> Streamer:
    try:
        return Streamer(item)
    except PescadorError as exc:
        raise PescadorError(f"{name} received an item that is not a stream: {item!r}") from exc
