"""Muxes: streams that draw items from several streamers.

Every mux is a :class:`~pescador.core.Streamer` (so muxes nest), and every mux runs the same
loop (:mod:`pescador.mux._loop`): ask the selection policy for a slot, pull one item from it,
charge the slot's budget, and tell the policy when the slot's activation ends. The policies
(:mod:`pescador.mux._stochastic`, :mod:`pescador.mux._policies`; each holds a slot table,
:mod:`pescador.mux._slots`) decide the rest:

=================  ===================================================================
:class:`StochasticMux`  ``n_active`` slots, each running a randomly drawn streamer for a
                        random budget of about ``rate`` items, then replaced.
:class:`ShuffledMux`    every streamer active; each item from streamer ``i`` with
                        probability proportional to ``weights[i]``.
:class:`RoundRobinMux`  one item from each streamer in turn.
:class:`ChainMux`       each streamer to its end, one after another.
=================  ===================================================================

Weights that change: a running StochasticMux or ShuffledMux iterator takes new weights from
the next draw (``it.set_weights(vector)``, ``it.set_weight(i, w)``), and a mux's ``weights``
may be a :class:`WeightSchedule`, a function of the number of items delivered
(:mod:`pescador.mux._live`).

Randomness: a mux's ``random_state`` seeds each iteration identically (a seeded mux is a
recipe that replays); ``None`` takes fresh entropy from numpy's global RNG, or the seed handed
down by a seeded parent mux, so one seed at the top makes a whole tree reproducible.
"""

from ._base import BaseMux
from ._live import WeightSchedule
from ._muxes import ChainMux, RoundRobinMux, ShuffledMux, StochasticMux

__all__ = [
    "BaseMux",
    "ChainMux",
    "RoundRobinMux",
    "ShuffledMux",
    "StochasticMux",
    "WeightSchedule",
]

for _public in (BaseMux, ChainMux, RoundRobinMux, ShuffledMux, StochasticMux, WeightSchedule):
    _public.__module__ = __name__  # pickles and reprs name the public module
del _public
