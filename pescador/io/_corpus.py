"""A corpus of many files: one window Streamer per example.

:func:`npz_streamers` and :func:`npy_streamers` take a directory, one file, or a list of files
(or, for NPY, of ``{key: path}`` mappings); NPY files pair up into examples by name
(:func:`group_npy_files`). Nothing is opened until a streamer is iterated, unless ``validate``
asks to read every header now.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._seeds import RandomStateLike
from ..core import ACTIVATION_RNG, Streamer
from ..exceptions import PescadorError
from ._layout import DataFileError, PathLike, _keep, _open_arrays, _os_problem
from ._streamers import _check_keys, _check_options, _path, _window_size, npy_windows, npz_windows


def group_npy_files(paths: Iterable[PathLike]) -> dict[str, dict[str, str]]:
    """Group ``<example>.<key>.npy`` files by example: ``{example: {key: path}}``.

    The example is the path without ``.<key>.npy``: ``songs/a.X.npy`` and ``songs/a.Y.npy``
    form the example ``songs/a``, with keys ``X`` and ``Y``. Examples are sorted by name, and
    so are the keys of each.

    Raises
    ------
    DataFileError
        For a file not named ``<example>.<key>.npy``.

    Examples
    --------
    >>> group_npy_files(["d/b.X.npy", "d/a.Y.npy", "d/a.X.npy", "d/b.Y.npy"])
    {'d/a': {'X': 'd/a.X.npy', 'Y': 'd/a.Y.npy'}, 'd/b': {'X': 'd/b.X.npy', 'Y': 'd/b.Y.npy'}}
    """
    groups: dict[str, dict[str, str]] = {}
    for value in paths:
        path = _path(value, "path")
        example, _, key = path[:-4].rpartition(".")
        name = os.path.basename(example)
        if not path.endswith(".npy") or not name or not key or "/" in key or os.sep in key:
            raise DataFileError(path, "expected an NPY file named <example>.<key>.npy")
        groups.setdefault(example, {})[key] = path
    return {example: dict(sorted(groups[example].items())) for example in sorted(groups)}


def _not_a_directory(entry: os.DirEntry[str]) -> bool:
    try:
        return not entry.is_dir()
    except OSError:  # a symlink loop, say: kept, and refused by name when opened
        return True


def _listing(source: Any, suffix: str) -> list[str] | None:
    """The files of a directory (sorted) or the one file ``source`` names; None for a list.

    A directory's entries named ``*<suffix>`` are its files, except subdirectories: what is
    not a regular file (a FIFO, a device, a broken link) is refused when it is opened.
    """
    if not isinstance(source, (str, os.PathLike)):
        return None
    path = os.fspath(source)
    try:
        if not stat.S_ISDIR(os.stat(path).st_mode):
            return [path]
        with os.scandir(path) as entries:
            found = [e.path for e in entries if e.name.endswith(suffix) and _not_a_directory(e)]
    except OSError as exc:
        raise DataFileError(path, _os_problem(exc)) from None
    if not found:
        raise DataFileError(path, f"no {suffix} files in this directory")
    return sorted(found)


def _streamers(
    factory: Any,
    targets: Sequence[Any],
    files: Sequence[list[tuple[str, str]]],
    keys: tuple[str, ...] | None,
    n: int,
    short: str,
    validate: bool,
    id_key: str | None,
    random_state: Any,
) -> list[Streamer]:
    """A Streamer of ``factory(target, n, ...)`` per target (after validation, if asked)."""
    _check_options(short, random_state, None)
    if id_key is not None and not isinstance(id_key, str):
        raise PescadorError(f"id_key={id_key!r}: expected None or a key name (str)")
    if not targets:
        raise PescadorError(f"{factory.__name__}: `source` names no files")
    kept = list(range(len(targets)))
    if validate:  # read every header now; drop (or raise for) short files
        kept = []
        for index, example in enumerate(files):
            fds: list[int] = []
            try:
                rows = _open_arrays(example, keys, fds)[1]
            finally:
                while fds:
                    os.close(fds.pop())
            if _keep(example[0][0], rows, n, short):
                kept.append(index)
    args: tuple[Any, ...] = (keys,) if keys is not None else ()
    options: dict[str, Any] = {} if short == "error" else {"short": short}
    if random_state is not ACTIVATION_RNG:
        options["random_state"] = random_state
    streams: list[Streamer] = []
    for index in kept:
        tags = {} if id_key is None else {"tags": {id_key: len(streams)}}
        streams.append(Streamer(factory, targets[index], n, *args, **options, **tags))
    return streams


def npz_streamers(
    source: PathLike | Iterable[PathLike],
    n: int,
    keys: str | Sequence[str] | None = None,
    *,
    short: str = "error",
    validate: bool = False,
    id_key: str | None = None,
    random_state: RandomStateLike = ACTIVATION_RNG,
) -> list[Streamer]:
    """One window :class:`~pescador.Streamer` (:func:`npz_windows`) per NPZ archive.

    Parameters
    ----------
    source : path, or iterable of paths
        A directory (its ``*.npz`` files, sorted; not those of its subdirectories: pass
        ``sorted(root.rglob("*.npz"))`` for them), one archive, or a list of archives.
    n, keys, short, random_state
        As for :func:`npz_windows`.
    validate : bool
        Read every archive's headers now (not its data): a bad archive raises here rather
        than when the mux reaches it, and with ``short="skip"`` short archives are left out.
    id_key : str, optional
        Add ``{id_key: i}`` to every window of the ``i``-th streamer returned, to tell which
        file a window came from.

    Returns
    -------
    list of Streamer
        In the order of ``source``. Nothing is opened until a streamer is iterated (unless
        ``validate``).

    Raises
    ------
    DataFileError
        If ``source`` does not exist or holds no ``.npz`` file; with ``validate``, for the
        first archive that cannot be read as asked.

    Examples
    --------
    >>> import numpy as np, pescador, tempfile, os
    >>> tmp = tempfile.TemporaryDirectory()
    >>> for k in range(3):
    ...     np.savez(os.path.join(tmp.name, f"{k}.npz"), X=np.zeros((20, 2)), Y=np.ones(20))
    >>> streams = npz_streamers(tmp.name, 8, keys=["X"], id_key="file")
    >>> mux = pescador.ShuffledMux(streams, random_state=0)
    >>> sorted(next(iter(mux)))
    ['X', 'file']
    >>> tmp.cleanup()
    """
    n = _window_size(n)
    chosen = None if keys is None else _check_keys(keys)
    paths = _listing(source, ".npz")
    if paths is None:
        paths = [_path(p, "source") for p in source]  # type: ignore[union-attr]
    files = [[(p, "")] for p in paths]
    return _streamers(npz_windows, paths, files, chosen, n, short, validate, id_key, random_state)


def npy_streamers(
    source: PathLike | Iterable[PathLike] | Iterable[Mapping[str, PathLike]],
    n: int,
    keys: str | Sequence[str] | None = None,
    *,
    short: str = "error",
    validate: bool = False,
    id_key: str | None = None,
    random_state: RandomStateLike = ACTIVATION_RNG,
) -> list[Streamer]:
    """One window :class:`~pescador.Streamer` (:func:`npy_windows`) per example of NPY files.

    Files pair up by name, ``<example>.<key>.npy``: ``a.X.npy`` and ``a.Y.npy`` are the example
    ``a`` with arrays ``X`` and ``Y`` (see :func:`group_npy_files`).

    Parameters
    ----------
    source : path, iterable of paths, or iterable of mappings
        A directory (its ``*.npy`` files), a list of ``.npy`` paths (grouped by name), or a
        list of ``{key: path}`` mappings, one per example.
    n, short, random_state
        As for :func:`npy_windows`.
    keys : str, list of str, or None
        The arrays to read, in this order (every example must have them); ``None`` reads
        every key of each example.
    validate, id_key
        As for :func:`npz_streamers`.

    Returns
    -------
    list of Streamer
        One per example: sorted by example name, or in the order of the mappings given.

    Raises
    ------
    DataFileError
        If ``source`` does not exist or holds no ``.npy`` file, for a file not named
        ``<example>.<key>.npy``, or an example lacking one of ``keys``.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> tmp = tempfile.TemporaryDirectory()
    >>> for name in ("a", "b"):
    ...     np.save(os.path.join(tmp.name, f"{name}.X.npy"), np.zeros((20, 3)))
    ...     np.save(os.path.join(tmp.name, f"{name}.Y.npy"), np.arange(20))
    >>> streams = npy_streamers(tmp.name, 5)
    >>> len(streams), sorted(next(iter(streams[0])))
    (2, ['X', 'Y'])
    >>> tmp.cleanup()
    """
    n = _window_size(n)
    chosen = None if keys is None else _check_keys(keys)
    paths = _listing(source, ".npy")
    groups: list[Mapping[str, Any]]
    if paths is not None:
        groups = list(group_npy_files(paths).values())
    else:
        given: list[Any] = list(source)  # type: ignore[arg-type]
        if given and all(isinstance(g, Mapping) for g in given):
            groups = given
        else:
            groups = list(group_npy_files(given).values())
    examples = []
    for group in groups:
        named = {str(k): _path(p, f"source[{k!r}]") for k, p in group.items()}
        for key in chosen or ():
            if key not in named:
                raise DataFileError(
                    next(iter(named.values()), "?"),
                    f"its example has no array {key!r} (no file <example>.{key}.npy)",
                )
        examples.append({k: named[k] for k in chosen} if chosen else named)
    files = [[(p, k) for k, p in example.items()] for example in examples]
    return _streamers(npy_windows, examples, files, None, n, short, validate, id_key, random_state)
