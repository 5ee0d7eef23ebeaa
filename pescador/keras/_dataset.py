"""StreamDataset: a pescador stream as a Keras ``PyDataset`` (private; see
:mod:`pescador.keras`)."""

from __future__ import annotations

from typing import Any

import keras

from ..core import Streamer
from ..exceptions import PescadorError
from ._feed import Feed
from ._layout import check_side, tuple_maker

__all__ = ["StreamDataset"]

#: Keras reads this many batches to infer shapes (the TensorFlow backend), or one to build a
#: model (every backend), then asks for them again from the start: such repeated requests are
#: served from a copy kept for each fit.
_REPLAYED = 2


class StreamDataset(keras.utils.PyDataset):
    """A pescador stream as a Keras ``PyDataset``: ``model.fit`` on a stream, in its order.

    Each item of the stream is one batch: a dict of arrays (``buffer_stream`` gives them),
    turned into ``(x, y)`` or ``(x, y, sample_weight)`` by keys as :func:`pescador.keras_tuples`
    does, or already such a tuple.

    Parameters
    ----------
    stream : Streamer or iterable
        The batches: ``Streamer(buffer_stream, mux, 32)``, a ``ParallelStreamer`` of it, ...
    inputs, outputs, sample_weights : key, list or tuple of keys, dict, or None
        The keys of each side: a key gives that value, a list or tuple of keys a tuple of
        values (a model with several inputs), a dict ``{input name: key}`` a dict of values
        (a model with named inputs). ``inputs=None`` (and the others None): the items are
        already tuples ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` (or arrays: ``(x,)``).
    steps : int, optional
        ``None`` (default): the stream is read continuously across epochs and ``fit`` calls
        (give ``fit`` its ``steps_per_epoch``); for training. An int: the dataset has ``steps``
        batches, and every pass over it (each epoch, each evaluation) starts the stream
        again from its beginning; for validation and evaluation (a seeded or deterministic
        stream then gives the same batches every time).

    Notes
    -----
    Order: the stream's. Keras asks for batches by index; a stream can only serve them in
    order, so a ``StreamDataset`` runs with Keras' defaults for a ``PyDataset`` (``workers=1``,
    no multiprocessing: run the stream itself in a :class:`~pescador.ParallelStreamer` for
    parallel work) and with ``fit(..., shuffle=False)`` for a dataset with ``steps``. Keras asks
    again for the first batches of a fit (to infer shapes or build the model): those are served
    from a copy, and the stream does not move. Keras on the TensorFlow backend reads ahead of
    training: :class:`~pescador.keras.Checkpoint` keeps track of what was trained, for exact
    checkpoints, and makes the next ``fit`` continue after the last trained batch.

    Examples
    --------
    >>> import numpy as np, pescador, keras
    >>> def noisy_line(rng=pescador.ACTIVATION_RNG):
    ...     while True:
    ...         x = rng.random((8, 1), dtype=np.float32)
    ...         yield {"x": x, "y": 3 * x + 1}
    >>> batches = pescador.Streamer(noisy_line)
    >>> train = pescador.keras.StreamDataset(batches, inputs="x", outputs="y")
    >>> x, y = train[0]
    >>> x.shape, y.shape
    ((8, 1), (8, 1))
    """

    def __init__(
        self,
        stream: Any,
        inputs: Any = None,
        outputs: Any = None,
        sample_weights: Any = None,
        *,
        steps: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(stream, Streamer):
            stream = Streamer(stream)
        if steps is not None and (
            isinstance(steps, bool) or not isinstance(steps, int) or steps < 1
        ):
            raise PescadorError(f"steps={steps!r} must be None or a positive integer")
        self.stream = stream
        self.inputs = check_side("inputs", inputs)
        self.outputs = check_side("outputs", outputs)
        self.sample_weights = check_side("sample_weights", sample_weights)
        self.steps = steps
        self._feed = Feed(stream, tuple_maker(self.inputs, self.outputs, self.sample_weights))
        self._checkpoint: Any = None
        self._served = 0  # batches served in this fit (this pass, with steps)
        self._cache: dict[int, Any] = {}
        self._new_fit = False  # set when a fit ended: the next index 0 starts the next one
        self._last: Any = None

    def __repr__(self) -> str:
        return (
            f"StreamDataset({self.stream!r}, inputs={self.inputs!r}, outputs={self.outputs!r}, "
            f"sample_weights={self.sample_weights!r}, steps={self.steps})"
        )

    # -- what Keras reads ------------------------------------------------------------------
    @property
    def num_batches(self) -> int | None:
        """``steps``: ``None`` for a stream read continuously (Keras: an infinite dataset)."""
        return self.steps

    def __len__(self) -> int:
        if self.steps is None:
            raise TypeError("a StreamDataset has a length only with steps")
        return self.steps

    @property
    def workers(self) -> int:
        return 1

    @workers.setter
    def workers(self, value: int) -> None:
        if value not in (0, 1):
            raise PescadorError(
                f"workers={value!r}: a StreamDataset serves batches in order, from one "
                "thread; run the stream in a pescador.ParallelStreamer instead"
            )

    @property
    def use_multiprocessing(self) -> bool:
        return False

    @use_multiprocessing.setter
    def use_multiprocessing(self, value: bool) -> None:
        if value:
            raise PescadorError(
                "use_multiprocessing=True: a StreamDataset serves batches in order, from "
                "one process; run the stream in a pescador.ParallelStreamer instead"
            )

    def __getitem__(self, index: int) -> Any:
        """Batch ``index`` of this fit (or pass); Keras asks for them in order."""
        with self._feed.lock:
            if self.steps is not None:
                return self._pass_batch(index)
            return self._fit_batch(index)

    def _fit_batch(self, index: int) -> Any:
        if index == 0 and (self._new_fit or self._served > _REPLAYED):
            self._served, self._new_fit = 0, False  # a new fit: from the next batch on
            self._cache.clear()
        elif self._new_fit:
            # A request from the iterator of a fit that has ended (TensorFlow's prefetch
            # finishing): nobody will train on it, and the stream must not move.
            return self._last
        if index < self._served and index in self._cache:
            return self._cache[index]
        self._check_order(index)
        try:
            batch = self._feed.next()
        except PescadorError as exc:
            raise PescadorError(
                f"{exc}: a StreamDataset without steps reads its stream across epochs, and "
                "fit needs steps_per_epoch x epochs batches; make the stream endless (a mux "
                "with a rate, ChainMux(mode='cycle'), ...)"
            ) from None
        if index < _REPLAYED:
            self._cache[index] = batch
        self._served += 1
        self._last = batch
        return batch

    def _pass_batch(self, index: int) -> Any:
        if index == 0:
            self._feed.restart()
            self._served = 0
        self._check_order(index)
        try:
            batch = self._feed.next()
        except PescadorError as exc:
            raise PescadorError(f"{exc}, but the StreamDataset has steps={self.steps}") from None
        self._served += 1
        return batch

    def _check_order(self, index: int) -> None:
        if index != self._served:
            raise PescadorError(
                f"StreamDataset: Keras asked for batch {index}, but a stream is read in order "
                f"(the next batch is {self._served}): pass shuffle=False to fit, and keep "
                "the dataset's workers=1"
            )

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The stream's state after the last batch handed to Keras (JSON types).

        Keras on the TensorFlow backend reads ahead of training: for the state that matches
        the model's weights, use :meth:`pescador.keras.Checkpoint.state_dict`.
        """
        if self.steps is not None:
            raise PescadorError("a StreamDataset with steps restarts every pass: no state")
        return self._feed.state_at(self._feed.position)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (from :meth:`state_dict` or a Checkpoint) at the next fit."""
        if self.steps is not None:
            raise PescadorError("a StreamDataset with steps restarts every pass: no state")
        self._feed.load(state)
        self._served, self._new_fit, self._last = 0, False, None
        self._cache.clear()

    def _end_fit(self) -> None:
        """A fit has ended (from the Checkpoint): put back what was read but not trained."""
        with self._feed.lock:
            self._feed.rewind()
            self._new_fit = True

    def close(self) -> None:
        """Close the stream's iterator (its files, worker processes)."""
        self._feed.close()
