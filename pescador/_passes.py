"""The iterators of a :class:`~pescador.core.Streamer`: one pass, and passes again and again.

A pass starts the Streamer's source (see ``Streamer._source``) at its first ``next``; a cycle
runs pass after pass, each with its own seed, until one yields nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import _state
from ._iterator import _EMPTY, StreamIterator, restore_source, state_of
from ._seeds import InheritedSeed, Seed, resolve_seed
from ._sharding import rearm_shard, shard_pending

if TYPE_CHECKING:
    from .core import Streamer


class _StreamerIterator(StreamIterator[Any]):
    """One activation of a :class:`~pescador.core.Streamer`.

    ``counted`` says whether it counts in the stream's ``active``: iterations a mux makes of
    its children do not, as in pescador 3.0 where muxes worked on copies.

    State: the items delivered; the source's own state if it can describe its position (a
    pescador iterator, or any object with ``state_dict``/``load_state_dict``), else the source
    is re-run and the delivered items skipped; and the activation's seed if the generator
    function asked for an :data:`~pescador.core.ACTIVATION_RNG`.
    """

    __slots__ = ("_counted", "_seeded")

    kind = "Streamer"
    _iterated: Streamer  # the stream (StreamIterator's slot: never None here)

    def __init__(
        self,
        stream: Streamer,
        max_iter: Any = None,
        seed: InheritedSeed = None,
        counted: bool = True,
    ) -> None:
        # (Not super(): this runs once per activation of a mux's child, and super() costs more.)
        StreamIterator.__init__(self, max_iter, seed, stream)
        self._counted = counted
        self._seeded = False

    def _open(self) -> tuple[Iterable[Any], Streamer | None]:
        stream = self._iterated
        owner = stream if self._counted else None
        resume = self._resume
        if resume is not None:
            return self._restore(resume), owner
        if stream._plan.rng_parameters:
            self._seed = resolve_seed(None, self._seed)
            self._seeded = True
        return stream._source(self._seed), owner

    def _restore(self, resume: Mapping[str, Any]) -> Iterable[Any]:
        """The source, where the checkpoint ``resume`` says (its fields checked first)."""
        stream = self._iterated
        where = f"{self.kind} state"
        if "seed" in resume:
            self._seed = _state.seed(resume["seed"], where, "seed")
            self._seeded = True
        elif stream._plan.rng_parameters:
            self._seed = resolve_seed(None, self._seed)
            self._seeded = True
        if resume.get("done"):
            return _EMPTY
        with _state.PASSTHROUGH:
            source = stream._source(self._seed)
        if "source" not in resume:  # a plain source: re-run it and skip what was delivered
            with _state.PASSTHROUGH:
                source = iter(source)
                _state.skip(source, resume["n"], repr(stream))
            return source
        # (A source made for this activation delivered what it did: n items.)
        restore_source(source, resume["source"], where, "source", most=resume["n"])
        return source

    def _own_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        if self._seeded and isinstance(self._seed, Seed):
            state["seed"] = self._seed.to_json()
        source = state_of(self._source)
        if source is not None:
            state["source"] = source
        return state


class _CycleIterator(_StreamerIterator):
    """Endless passes over a stream; ends after a pass that yields nothing.

    Randomness: one seed for the cycle (inherited, or fresh from numpy's global RNG); pass
    ``k`` inherits ``seed.child(k)``, so unseeded passes differ from each other and a seeded
    stream replays its own seed every pass.

    State: the items delivered, the cycle's seed, and the current pass (its number and its
    own state).
    """

    __slots__ = ("_position",)

    kind = "cycle"
    _position: list[Any]

    def _open(self) -> tuple[Iterable[Any], Streamer | None]:
        # [pass number, current pass]: shared with the passes generator, which must not hold
        # the iterator itself (a cycle would keep a dropped iterator alive until gc).
        self._position = [0, None]
        resume = self._resume
        if resume is None:
            self._seed = resolve_seed(None, self._seed)
        elif resume.get("done"):
            return _EMPTY, None
        else:
            where = f"{self.kind} state"
            self._seed = _state.seed(_state.field(resume, "seed", where), where, "seed")
            # Every pass before the current one delivered items (else the cycle ended).
            n = resume["n"]
            _state.integer(_state.field(resume, "pass", where), where, "pass", high=n)
            current = _state.field(resume, "current", where)
            if current is not None:
                _state.mapping(current, where, "current")
                inner = current.get("n")
                if type(inner) is int and inner > n:
                    _state.fail(where, "current.n", f"at most n={n}", inner)
        passes = _passes(self._iterated, self._seed, self._counted, resume, self._position)
        return passes, None

    def _own_state(self) -> dict[str, Any]:
        number, current = self._position
        assert isinstance(self._seed, Seed)
        return {
            "seed": self._seed.to_json(),
            "pass": number,
            "current": None if current is None else current._state_dict(),
        }


def _passes(
    stream: Streamer,
    seed: Seed,
    counted: bool,
    resume: Mapping[str, Any] | None,
    position: list[Any],
) -> Iterator[Any]:
    """The items of a cycle: pass after pass, until a pass yields nothing."""
    if resume is not None:
        position[0] = resume["pass"]
    while True:
        # In a worker of a split stream, the outermost mux takes its share when it opens; it
        # opens anew in every pass, so a pass whose mux took the share re-arms it for the next.
        armed = shard_pending()
        one_pass = stream._iterate(None, (seed, position[0]), counted)
        if resume is not None:
            if resume["current"] is not None:
                try:
                    one_pass._load(resume["current"])
                    iter(one_pass)  # (it opens now: its errors say where its state is)
                except _state.StateError as exc:
                    _state.within(exc, "cycle state: current")
                    raise
            resume = None
        position[1] = one_pass
        try:
            yield from one_pass
        finally:
            one_pass.close()
        if not one_pass.items_delivered:
            return
        if armed and not shard_pending():
            rearm_shard()
        position[0] += 1
