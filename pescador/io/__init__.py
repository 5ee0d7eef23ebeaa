"""Sample contiguous windows of rows from array files on disk: NPZ archives and NPY files.

The main job of pescador: a corpus too large for memory, stored as one file per example (a song,
a recording, a document), each holding arrays of equal length (features ``X``, labels ``Y``).
Each file becomes a stream of random windows of ``n`` consecutive rows; a
:class:`~pescador.StochasticMux` keeps a few files open at a time and mixes their windows:

>>> import numpy as np, pescador, pescador.io, tempfile, os
>>> corpus = tempfile.TemporaryDirectory()
>>> for k in range(4):
...     X, Y = np.ones((50, 8), np.float32), np.arange(50)
...     np.savez(os.path.join(corpus.name, f"song{k}.npz"), X=X, Y=Y)
>>> streams = pescador.io.npz_streamers(corpus.name, 16)
>>> mux = pescador.StochasticMux(streams, n_active=2, rate=8, random_state=0)
>>> batches = pescador.buffer_stream(mux, 4)
>>> batch = next(batches)
>>> batch["X"].shape, batch["Y"].shape
((4, 16, 8), (4, 16))
>>> bool((np.diff(batch["Y"], axis=1) == 1).all())  # each window is 16 consecutive rows
True
>>> batches.close()
>>> corpus.cleanup()

Files are opened at an iterator's first ``next`` and closed when it ends, is closed or is
dropped, so only the active files hold resources. Windows are new arrays (copies): nothing of
a file stays pinned once its activation is over.

Which files the streamers read, and how:

==========================  ===============================================================
``npz_windows(path, n)``    one ``.npz`` archive (``np.savez`` / ``np.savez_compressed``)
``npy_windows(files, n)``   ``.npy`` files, one per array: ``{"X": "a.X.npy", ...}``
``npz_streamers(src, n)``   a Streamer per ``.npz`` file of a directory (or a list of paths)
``npy_streamers(src, n)``   a Streamer per example of ``<example>.<key>.npy`` files
==========================  ===============================================================
"""

from __future__ import annotations

from ._corpus import group_npy_files, npy_streamers, npz_streamers
from ._layout import _LAYOUTS as _LAYOUTS  # the layout cache, which tests clear
from ._layout import DataFileError, ShortFileWarning
from ._streamers import npy_windows, npz_windows
from ._windows import WindowIterator

__all__ = [
    "DataFileError",
    "ShortFileWarning",
    "WindowIterator",
    "group_npy_files",
    "npy_streamers",
    "npy_windows",
    "npz_streamers",
    "npz_windows",
]
