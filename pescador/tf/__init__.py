"""tf.data: a pescador stream as a ``tf.data.Dataset``.

:func:`to_dataset` wraps any stream in ``tf.data.Dataset.from_generator``, with the signature
inferred from its first item (dicts, tuples, any dtype, a free batch dimension), a fresh
iteration of the stream each time the dataset is iterated, and optionally the stream run in
:class:`~pescador.ParallelStreamer` worker processes. TensorFlow cannot checkpoint such a
dataset; ``docs/frameworks.md`` says what to use instead.

Needs TensorFlow (``pip install 'pescador[tf]'``); ``import pescador`` alone never imports it.
Importing TensorFlow imports Keras, which fixes its backend then (``KERAS_BACKEND``).
"""

from __future__ import annotations

try:
    import tensorflow as _tf  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "pescador.tf needs TensorFlow: pip install 'pescador[tf]' (see docs/frameworks.md)"
    ) from exc

from ._dataset import to_dataset

__all__ = ["to_dataset"]

to_dataset.__module__ = __name__
