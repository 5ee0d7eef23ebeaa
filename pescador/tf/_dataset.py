"""to_dataset: a pescador stream as a ``tf.data.Dataset`` (private; see :mod:`pescador.tf`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import tensorflow as tf

from ..core import Streamer
from ..exceptions import PescadorError
from ._signature import infer_signature

__all__ = ["to_dataset"]


class _Source:
    """The generator function for ``from_generator``: a fresh iteration of the stream on each
    call, the first reusing the iterator that gave the signature's item."""

    def __init__(self, stream: Any, first: Any = None) -> None:
        self.stream = stream
        self.lock = threading.Lock()
        self.first = first  # (iterator, item) or None

    def __call__(self) -> Iterator[Any]:
        with self.lock:
            first, self.first = self.first, None
        if first is None:
            iterator = self.stream.iterate()
        else:
            iterator, item = first
        try:
            if first is not None:
                yield _tuples(item)
            for item in iterator:
                yield _tuples(item)
        finally:
            iterator.close()

    def close(self) -> None:
        with self.lock:
            first, self.first = self.first, None
        if first is not None:
            first[0].close()


def _tuples(item: Any) -> Any:
    """Lists as tuples: ``from_generator`` matches the signature's structure, in which a list
    of values is a tuple."""
    if isinstance(item, list):
        return tuple(_tuples(v) for v in item)
    if isinstance(item, tuple) and not hasattr(item, "_fields"):
        return tuple(_tuples(v) for v in item)
    if isinstance(item, dict):
        return {k: _tuples(v) for k, v in item.items()}
    return item


def to_dataset(
    stream: Any,
    output_signature: Any = None,
    *,
    n_workers: int | None = None,
    start_method: str | None = "forkserver",
) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of the stream's items.

    Parameters
    ----------
    stream : Streamer or iterable
        Any pescador stream (a mux tree, ``Streamer(buffer_stream, mux, 32)``, a
        ``ParallelStreamer``); its items are dicts, tuples or arrays (nested as you like).
    output_signature : tf.TensorSpec structure, optional
        As for ``tf.data.Dataset.from_generator``. ``None``: inferred from the stream's first
        item: dicts and tuples (lists too) kept, each value's dtype (strings become
        ``tf.string``), and its shape with the first dimension free (``None``: batches of
        any size). Items that do not fit it raise an error when they are read.
    n_workers : int, optional
        Run the stream in that many :class:`~pescador.ParallelStreamer` worker processes
        (its outermost mux split among them).
    start_method : str, optional
        How those workers start. TensorFlow runs many threads, and a process that forks
        while other threads hold locks can deadlock in the child: the default,
        ``'forkserver'`` (where the platform has it, else ``'spawn'``), forks from a
        single-threaded server instead. The stream is then pickled to the workers (its
        generator functions must be importable); ``None`` is the platform's default.

    Returns
    -------
    tf.data.Dataset
        Each iteration of it (each ``for`` loop, each Keras epoch that starts one) iterates
        the stream afresh: a seeded stream gives the same items every time. To infer the
        signature, the first item is read when ``to_dataset`` is called; the dataset's first
        iteration continues that same iteration of the stream.

    Notes
    -----
    TensorFlow runs the stream's Python code in its own threads, one item at a time, and
    cannot save the position of such a dataset (``tf.train.Checkpoint`` refuses an iterator
    over a Python generator: "PyFunc is stateful"). For exact resume, keep the pescador state:
    with Keras, :class:`pescador.keras.StreamDataset` and :class:`pescador.keras.Checkpoint`;
    in a custom loop, iterate the stream (``it = stream.iterate(state=saved)``), convert each
    batch with ``tf.convert_to_tensor``, and save ``it.state_dict()`` with the model's
    checkpoint (see ``docs/frameworks.md``).

    Examples
    --------
    >>> import numpy as np, pescador
    >>> def windows(tag):
    ...     for i in range(3):
    ...         yield {"X": np.full((2, 4), i, np.float32), "tag": tag}
    >>> mux = pescador.ChainMux([pescador.Streamer(windows, t) for t in ("a", "b")])
    >>> dataset = pescador.tf.to_dataset(mux)
    >>> dataset.element_spec["X"]
    TensorSpec(shape=(None, 4), dtype=tf.float32, name=None)
    >>> [item["tag"].numpy() for item in dataset]
    [b'a', b'a', b'a', b'b', b'b', b'b']
    """
    if not isinstance(stream, Streamer):
        stream = Streamer(stream)
    if n_workers is not None:
        import multiprocessing

        from ..parallel import ParallelStreamer

        if start_method == "forkserver" and "forkserver" not in (
            multiprocessing.get_all_start_methods()
        ):
            start_method = "spawn"
        stream = ParallelStreamer(stream, n_workers, start_method=start_method)
    source = _Source(stream)
    if output_signature is None:
        iterator = stream.iterate()
        try:
            item = next(iterator)
        except StopIteration:
            iterator.close()
            raise PescadorError(
                f"{stream!r} yielded no item to infer the signature from: pass output_signature"
            ) from None
        except BaseException:
            iterator.close()
            raise
        try:
            output_signature = infer_signature(item)
        except BaseException:
            iterator.close()
            raise
        source.first = (iterator, item)
    dataset = tf.data.Dataset.from_generator(source, output_signature=output_signature)
    return dataset
