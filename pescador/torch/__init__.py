"""PyTorch: a pescador stream as a DataLoader dataset, split across workers and ranks.

:class:`StreamDataset` wraps any stream (a mux tree, a map, a Streamer) as an
``IterableDataset``. Inside a ``torch.utils.data.DataLoader`` or ``torchdata``'s
``StatefulDataLoader`` the outermost mux is split among the ``world_size x num_workers``
consumers (no item produced twice, balanced shares that keep the mux's proportions),
``samples_per_epoch`` gives every rank the same number of items, ``set_epoch`` reseeds, and a
``StatefulDataLoader`` resumes exactly where the training loop stopped
(:func:`load_loader_state` checks a checkpoint's configuration before loading it). The user
guide is ``docs/torch.md``.

Needs PyTorch (``pip install 'pescador[torch]'``); ``import pescador`` alone never imports it.
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "pescador.torch needs PyTorch: pip install 'pescador[torch]' (see docs/torch.md for "
        "choosing a CPU-only or a CUDA build)"
    ) from exc

from ._dataset import StreamDataset
from ._resume import load_loader_state

__all__ = ["StreamDataset", "load_loader_state"]

for _public in (StreamDataset, load_loader_state):
    _public.__module__ = __name__  # pickles, reprs and the docs name the public module
del _public
