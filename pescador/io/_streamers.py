"""The window streamers of one example, :func:`npz_windows` and :func:`npy_windows`.

Each call checks its arguments at once (a Streamer calls it at every activation, so the common
case is checked quickly) and returns a :class:`WindowIterator`, which opens the files at its
first ``next``. The argument checks are shared with the streamers of many files
(``_corpus``).
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .._seeds import RandomStateLike, check_random_state
from ..core import ACTIVATION_RNG, iterator_factory
from ..exceptions import PescadorError
from ._layout import PathLike
from ._windows import WindowIterator

_SHORT_POLICIES = ("error", "skip")


# ------------------------------------------------------------------------------ arguments
def _window_size(n: Any) -> int:
    if isinstance(n, numbers.Integral) and not isinstance(n, bool) and int(n) >= 1:
        return int(n)
    raise PescadorError(f"n={n!r}: expected a window size, a positive integer number of rows")


def _check_keys(keys: Any) -> tuple[str, ...]:
    names = (keys,) if isinstance(keys, str) else keys
    try:
        names = tuple(names)
    except TypeError:
        names = ()
    if not names or not all(isinstance(k, str) and k for k in names):
        names = ()
    if not names or len(set(names)) != len(names):
        raise PescadorError(
            f"keys={keys!r}: expected None (every array), an array name, or a list of distinct "
            "array names"
        )
    return names


def _check_options(short: Any, random_state: Any, tags: Any) -> None:
    if short not in _SHORT_POLICIES:
        raise PescadorError(f"short={short!r}: expected 'error' or 'skip'")
    if random_state is not ACTIVATION_RNG:
        check_random_state(random_state)
    if tags is not None and not isinstance(tags, Mapping):
        raise PescadorError(f"tags={tags!r}: expected None or a mapping of extra items")


def _path(value: Any, name: str) -> str:
    try:
        return os.fspath(value)
    except TypeError:
        raise PescadorError(f"{name}={value!r}: expected a path (str or os.PathLike)") from None


# ------------------------------------------------------------------------------ streamers
@iterator_factory
def npz_windows(
    path: PathLike,
    n: int,
    keys: str | Sequence[str] | None = None,
    *,
    short: str = "error",
    tags: Mapping[str, Any] | None = None,
    random_state: RandomStateLike = ACTIVATION_RNG,
) -> WindowIterator:
    """Endless random windows of ``n`` consecutive rows from the arrays of one NPZ archive.

    Parameters
    ----------
    path : str or path-like
        An archive written by ``np.savez`` or ``np.savez_compressed``, whose arrays (those
        read) all have the same number of rows (their first dimension).
    n : int > 0
        Rows per window.
    keys : str, list of str, or None
        The arrays to read, in this order; ``None`` (default) reads all, in archive order.
    short : {"error", "skip"}
        A file with fewer than ``n`` rows: raise :class:`DataFileError` naming it (default),
        or yield nothing from it and warn (:class:`ShortFileWarning`).
    tags : mapping, optional
        Items added unchanged to every window, for instance ``{"file": 7}`` to tell which file
        a window came from.
    random_state : optional
        Where the window offsets come from. By default (:data:`pescador.ACTIVATION_RNG`) each
        activation draws from its own generator, seeded by the parent mux's seed (a seeded mux
        makes the whole stream reproducible) or, without one, from numpy's global RNG. An
        int, ``SeedSequence``, ``RandomState`` or ``Generator`` is a fixed seed: *every
        activation replays the same offsets* (useful for tests; for training, seed the mux).

    Returns
    -------
    WindowIterator
        Yields ``{key: array of shape (n, *row_shape)}`` (plus ``tags``) forever. Each
        window's start is drawn uniformly among the ``rows - n + 1`` valid ones (the last
        included); arrays are new, writable copies.

    Raises
    ------
    PescadorError
        At the call, for a bad ``n``, ``keys``, ``short``, ``tags`` or ``random_state``.
    DataFileError
        At the first ``next``, naming the file and what is wrong: missing, unreadable or not
        a regular file (a FIFO, a device: refused without waiting on it), not an NPZ archive,
        corrupt or lying headers, no array named as a key, arrays of different lengths, 0-d
        or object arrays, or fewer than ``n`` rows (with ``short="error"``).

    Notes
    -----
    Memory: members stored uncompressed (``np.savez``) are read in place, one window at a
    time, with ``pread``: an active iterator holds one file descriptor, plus the arrays of at
    most 64 KiB (read whole at the start, e.g. the labels). A Fortran-ordered array is read
    the same way, one read per column of a window. Compressed members
    (``np.savez_compressed``) are decompressed whole when the activation starts and held
    until it ends; one larger than 1 GiB is refused (save it with ``np.savez`` to read it
    window by window). Object arrays are refused: they would need pickle. The archive's
    layout (member offsets, shapes, dtypes) is cached per file, keyed by its inode, size and
    mtime.

    Hostile files: nothing a header claims is believed before it is checked against the
    bytes really there, so no file makes an activation allocate more than its windows (and
    its arrays read whole): NPY headers over 64 KiB and zip directories over 1 MiB are
    refused before they are read, and a deflated member cannot claim more than deflate
    could produce from its size.

    Order: random, with replacement. Infinite. RNG: a numpy ``Generator`` (PCG64), one draw
    per window, drawn in blocks. State: the windows delivered and the generator's state.

    Examples
    --------
    >>> import numpy as np, pescador, tempfile, os
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "song.npz")
    >>> np.savez(path, X=np.arange(20.0).reshape(10, 2), Y=np.arange(10))
    >>> stream = pescador.Streamer(npz_windows, path, 4, random_state=0)
    >>> [w["Y"].tolist() for w in stream.iterate(max_iter=3)]
    [[6, 7, 8, 9], [2, 3, 4, 5], [5, 6, 7, 8]]
    >>> with npz_windows(path, 10, keys="X") as windows:  # only one window fits
    ...     next(windows)["X"].shape
    (10, 2)
    >>> tmp.cleanup()
    """
    # Called at every activation: the common case is checked first, and quickly.
    if type(n) is not int or n < 1:
        n = _window_size(n)
    chosen = None if keys is None else _check_keys(keys)
    if short != "error" or tags is not None or random_state is not ACTIVATION_RNG:
        _check_options(short, random_state, tags)
    target = path if type(path) is str else _path(path, "path")
    return WindowIterator(((target, ""),), chosen, n, short, random_state, tags)


@iterator_factory
def npy_windows(
    files: Mapping[str, PathLike],
    n: int,
    *,
    short: str = "error",
    tags: Mapping[str, Any] | None = None,
    random_state: RandomStateLike = ACTIVATION_RNG,
) -> WindowIterator:
    """Endless random windows of ``n`` consecutive rows from NPY files, one file per array.

    Parameters
    ----------
    files : mapping of str to path
        The key of each array in a window, and its ``.npy`` file (written by ``np.save``);
        every file must have the same number of rows. :func:`group_npy_files` builds these
        from ``<example>.<key>.npy`` file names.
    n, short, tags, random_state
        As for :func:`npz_windows`.

    Returns
    -------
    WindowIterator
        Yields ``{key: array of shape (n, *row_shape)}`` (plus ``tags``) forever, with the
        keys in the order of ``files``; as :func:`npz_windows`.

    Raises
    ------
    PescadorError
        At the call, for bad arguments (``files`` must map at least one key to a path).
    DataFileError
        At the first ``next``, naming the file, as for :func:`npz_windows`.

    Notes
    -----
    Memory: rows are read in place with ``pread``, like a memory map without mapping (a
    window of a Fortran-ordered array: one read per column): each active iterator holds one
    descriptor per file read this way, plus the arrays of at most 64 KiB, read whole at the
    start (e.g. labels). Object arrays are refused. Hostile files, order, RNG and state: as
    :func:`npz_windows`.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> tmp = tempfile.TemporaryDirectory()
    >>> files = {key: os.path.join(tmp.name, f"a.{key}.npy") for key in ("X", "Y")}
    >>> np.save(files["X"], np.zeros((10, 3), np.float32))
    >>> np.save(files["Y"], np.arange(10))
    >>> with npy_windows(files, 4, random_state=1) as windows:
    ...     window = next(windows)
    >>> window["X"].shape, window["Y"].tolist()
    ((4, 3), [4, 5, 6, 7])
    >>> tmp.cleanup()
    """
    if type(n) is not int or n < 1:
        n = _window_size(n)
    if not isinstance(files, Mapping) or not files:
        raise PescadorError(
            f"files={files!r}: expected a mapping of array names to .npy paths, e.g. "
            "{'X': 'a.X.npy', 'Y': 'a.Y.npy'}"
        )
    _check_keys(tuple(files))
    pairs = [(_path(p, f"files[{k!r}]"), k) for k, p in files.items()]
    _check_options(short, random_state, tags)
    return WindowIterator(pairs, None, n, short, random_state, tags)
