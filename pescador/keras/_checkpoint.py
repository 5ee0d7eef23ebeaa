"""Checkpoint: the data state that matches the model's weights, saved with them, and a fit
that resumes from both (private; see :mod:`pescador.keras`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import keras

from .._state import field, integer
from ..exceptions import PescadorError, StateError
from ._dataset import StreamDataset

__all__ = ["Checkpoint"]

_RECORD = "checkpoint.json"
_FORMAT = "pescador.keras.Checkpoint"


class Checkpoint(keras.callbacks.Callback):
    """A Keras callback that keeps the data state matching the model's weights, and saves both.

    Keras reads batches ahead of training (on the TensorFlow backend, a few batches ahead), so
    the stream's state *now* is not the state after the last trained batch. This callback
    counts the batches trained, and gives the state of the stream just after the last one
    (:meth:`state_dict`). With a ``directory``, it saves the model (with its optimizer) and
    that state together, every ``every`` batches and at the end of each epoch; after a
    restart, :meth:`restore` loads both and :meth:`fit` continues exactly where the saved run
    stood, mid-epoch included.

    Parameters
    ----------
    directory : str or path, optional
        Where to save: ``checkpoint.json`` (the data state, the epoch and step, and the name
        of the model file) and ``model-<batches>.keras`` (``model.save``). ``None``: save
        nothing (use :meth:`state_dict` with your own saving).
    dataset : StreamDataset
        The training dataset (without ``steps``: read continuously).
    every : int, optional
        Save after every ``every`` trained batches (counted over the whole run).
    at_epoch_end : bool
        Save at the end of each epoch (default ``True``).

    Notes
    -----
    A save writes the model to a new file, then replaces ``checkpoint.json`` atomically (a
    temporary file, ``fsync``, rename), then removes older model files: a crash at any moment
    leaves a complete, consistent checkpoint. At the end of each ``fit``, the batches that
    Keras read but did not train are put back in front of the stream, so a following ``fit``
    continues with the first batch not trained.

    Examples
    --------
    >>> import numpy as np, pescador, keras
    >>> def noisy_line(rng=pescador.ACTIVATION_RNG):
    ...     while True:
    ...         x = rng.random((8, 1), dtype=np.float32)
    ...         yield {"x": x, "y": 3 * x + 1}
    >>> train = pescador.keras.StreamDataset(pescador.Streamer(noisy_line), "x", "y")
    >>> checkpoint = pescador.keras.Checkpoint(None, train)
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> history = checkpoint.fit(model, epochs=2, steps_per_epoch=5, verbose=0)
    >>> state = checkpoint.state_dict()
    >>> state["epoch"], state["step"], state["trained"], state["data"]["batches"]
    (2, 0, 10, 10)
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None,
        dataset: StreamDataset,
        *,
        every: int | None = None,
        at_epoch_end: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(dataset, StreamDataset):
            raise PescadorError(f"dataset={dataset!r}: expected a pescador.keras.StreamDataset")
        if dataset.steps is not None:
            raise PescadorError(
                f"a Checkpoint follows a StreamDataset read continuously (steps=None), not "
                f"one that restarts every pass (steps={dataset.steps})"
            )
        if dataset._checkpoint is not None:
            raise PescadorError("this StreamDataset already has a Checkpoint")
        if every is not None and (
            isinstance(every, bool) or not isinstance(every, int) or every < 1
        ):
            raise PescadorError(f"every={every!r} must be None or a positive integer")
        self.directory = None if directory is None else Path(directory)
        self.dataset = dataset
        self.every = every
        self.at_epoch_end = bool(at_epoch_end)
        self.trained = 0  # batches trained since the start of the run
        self.epoch = 0  # the epoch in progress (or next to run)
        self.step = 0  # batches trained in it
        self._epoch_trained = self._epoch_step = 0
        self._fit_start = 0
        self._fit_steps: int | None = None
        self._saved: int | None = None  # the trained count of the last save
        self._model_file: str | None = None
        dataset._checkpoint = self
        dataset._feed.tracked = True
        dataset._feed.want = self._will_save

    def __repr__(self) -> str:
        return (
            f"Checkpoint({str(self.directory) if self.directory else None!r}, every="
            f"{self.every}, epoch={self.epoch}, step={self.step}, trained={self.trained})"
        )

    # -- counting (Keras' hooks) -----------------------------------------------------------
    def on_train_begin(self, logs: Any = None) -> None:
        steps = self.params.get("steps") if self.params else None
        if steps is None:
            raise PescadorError(
                "fit needs steps_per_epoch: a StreamDataset without steps is read "
                "continuously, and a Checkpoint counts epochs in steps"
            )
        self._fit_start, self._fit_steps = self.trained, int(steps)

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        if epoch != self.epoch:
            self.epoch, self.step = epoch, 0
        self._epoch_trained, self._epoch_step = self.trained, self.step

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.trained = self._epoch_trained + batch + 1
        self.step = self._epoch_step + batch + 1
        self.dataset._feed.confirm(self.trained)
        last = self._saved or 0
        if self.every is not None and self.trained // self.every > last // self.every:
            self._save()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.epoch, self.step = epoch + 1, 0
        if self.at_epoch_end:
            self._save()

    def on_train_end(self, logs: Any = None) -> None:
        self.dataset._end_fit()

    def _will_save(self, count: int) -> bool:
        """Whether a save will want the state after batch ``count`` (so the dataset keeps it
        as the batch is read, instead of replaying the stream later)."""
        if self.every is not None and count % self.every == 0:
            return True
        steps = self._fit_steps
        return (
            self.at_epoch_end
            and steps is not None
            and count > self._fit_start
            and (count - self._fit_start) % steps == 0
        )

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Where training stands: ``epoch``, ``step`` (batches trained in it), ``trained`` (in
        all) and ``data``, the stream's state just after the last trained batch (JSON types).
        """
        return {
            "epoch": self.epoch,
            "step": self.step,
            "trained": self.trained,
            "data": self.dataset._feed.state_at(self.trained),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (from :meth:`state_dict`): the dataset included."""
        where = "Checkpoint state"
        if not isinstance(state, dict):
            raise StateError(f"{where}: expected a dict, not {type(state).__name__}")
        epoch = integer(field(state, "epoch", where), where, "epoch")
        step = integer(field(state, "step", where), where, "step")
        trained = integer(field(state, "trained", where), where, "trained")
        data = field(state, "data", where)
        if not isinstance(data, dict) or data.get("batches") != trained:
            raise StateError(f"{where}: data must be the dataset's state after {trained} batches")
        self.dataset.load_state_dict(data)
        self.dataset._feed.tracked = True
        self.epoch, self.step, self.trained = epoch, step, trained
        self._saved = trained

    # -- saving ----------------------------------------------------------------------------
    def _save(self) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._saved != self.trained or self._model_file is None:
            name = f"model-{self.trained:09d}.keras"
            partial = self.directory / "partial.keras"
            self.model.save(partial)
            _sync(partial)
            os.replace(partial, self.directory / name)
            self._model_file = name
        record = {"format": _FORMAT, "model": self._model_file, **self.state_dict()}
        _write_atomically(self.directory / _RECORD, json.dumps(record))
        self._saved = self.trained
        for old in self.directory.glob("model-*.keras"):
            if old.name != self._model_file:
                old.unlink()

    def restore(self, **load_options: Any) -> Any:
        """The saved model (``keras.saving.load_model``, with its optimizer), with the dataset
        and this callback put where the saved run stood; ``None`` if nothing was saved.

        ``load_options`` go to ``keras.saving.load_model`` (``custom_objects``, ...).
        """
        if self.directory is None:
            raise PescadorError("Checkpoint(None, ...) saves nothing: nothing to restore")
        path = self.directory / _RECORD
        if not path.exists():
            return None
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or record.get("format") != _FORMAT:
            raise StateError(f"{path} is not a {_FORMAT} record")
        model_file = field(record, "model", str(path))
        model = keras.saving.load_model(self.directory / model_file, **load_options)
        self.load_state_dict({k: record[k] for k in ("epoch", "step", "trained", "data")})
        self._model_file = model_file
        return model

    # -- resuming --------------------------------------------------------------------------
    def fit(self, model: Any, *, epochs: int, steps_per_epoch: int, **fit_options: Any) -> Any:
        """``model.fit`` on the dataset, from where this checkpoint stands, with this callback.

        From the start, this is one ``model.fit(dataset, epochs=..., steps_per_epoch=...,
        shuffle=False, callbacks=[self, ...])``. After :meth:`restore` (or
        :meth:`load_state_dict`) of a state saved in the middle of epoch ``e`` after ``b``
        batches, it first finishes that epoch (``fit(initial_epoch=e, epochs=e + 1,
        steps_per_epoch=steps_per_epoch - b)``), then runs the other epochs: the same batches
        and epoch ends as an uninterrupted run. Returns the ``History``, with the epochs of
        both calls.
        """
        callbacks = [self, *(fit_options.pop("callbacks", None) or [])]
        fit_options.setdefault("shuffle", False)
        for name in ("x", "y", "initial_epoch"):
            if name in fit_options:
                raise PescadorError(f"Checkpoint.fit sets {name} itself")
        epoch, step = self.epoch, self.step
        if step >= steps_per_epoch:  # saved after the last batch, before the epoch's end
            epoch, step = epoch + 1, 0
            self.epoch, self.step = epoch, 0
        history = None
        if step > 0 and epoch < epochs:
            history = model.fit(
                self.dataset,
                epochs=epoch + 1,
                initial_epoch=epoch,
                steps_per_epoch=steps_per_epoch - step,
                callbacks=callbacks,
                **fit_options,
            )
            epoch += 1
            if model.stop_training:
                return history
        if epoch >= epochs and history is not None:
            return history
        rest = model.fit(
            self.dataset,
            epochs=epochs,
            initial_epoch=epoch,
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            **fit_options,
        )
        if history is not None:
            rest.epoch = history.epoch + rest.epoch
            for key, values in history.history.items():
                rest.history[key] = values + rest.history.get(key, [])
        return rest


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)
