"""Keras 3: ``model.fit`` on a pescador stream, with exact checkpoints.

:class:`StreamDataset` makes a stream a Keras ``PyDataset`` (items mapped to ``(x, y)`` or
``(x, y, sample_weight)`` by keys, read in order, continuously across epochs, or restarted
each pass for validation); :class:`Checkpoint` is the callback that keeps the data state
matching the model's weights (Keras reads ahead of training), saves both, and resumes ``fit``
from them. Works with every Keras backend (tested: TensorFlow and PyTorch). The user guide is
``docs/frameworks.md``.

Needs Keras 3 and a backend (``pip install 'pescador[keras]'``, which brings Keras; install
``torch``, ``tensorflow`` or ``jax`` for the backend you choose with ``KERAS_BACKEND``).
``import pescador`` alone never imports Keras.
"""

from __future__ import annotations

try:
    import keras as _keras
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "pescador.keras needs Keras 3: pip install 'pescador[keras]' (and a backend: "
        "torch, tensorflow or jax; see docs/frameworks.md)"
    ) from exc

if int(_keras.__version__.split(".")[0]) < 3:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"pescador.keras needs Keras 3, not {_keras.__version__}: pip install 'keras>=3'"
    )

from ._checkpoint import Checkpoint
from ._dataset import StreamDataset

__all__ = ["Checkpoint", "StreamDataset"]

for _public in (Checkpoint, StreamDataset):
    _public.__module__ = __name__
del _public
