"""load_loader_state: a StatefulDataLoader's state checked, then loaded (private; see
:mod:`pescador.torch`).

torchdata's ``StatefulDataLoader.load_state_dict`` only stores the state; ``iter(loader)``
applies it. Between ``num_workers=0`` and a positive count the two loaders' states differ in
structure, and torchdata stops on its own ``AssertionError`` ("State doesn't contain key ...")
before any dataset or iterator sees the state, so no hook of :class:`StreamDataset` can speak
first. :func:`load_loader_state` reads the saved configuration out of the state instead, and
refuses a state of another configuration at once, with a :class:`~pescador.StateError` naming
both values.

A state of the multi-process loader is ``{"_snapshot": {"_main_snapshot": {"_num_workers": n,
...}, "_worker_snapshots": {...}}, ...}``; one of the single-process loader has
``"_num_yielded"`` at its top. Each worker's part holds its :class:`ShareIterator` state, which
names the configuration it was saved under.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..exceptions import StateError
from ._dataset import StreamDataset
from ._share import check_configuration, is_share_state

__all__ = ["load_loader_state"]

#: How deep the share states are looked for in a loader's state (they sit 3 to 5 levels down).
_MAX_DEPTH = 8


def saved_num_workers(state: Mapping[str, Any]) -> int | None:
    """The ``num_workers`` of the loader that saved ``state`` (``None``: not a state of
    torchdata's ``StatefulDataLoader`` that this can read).

    >>> saved_num_workers({"_num_yielded": 3, "_fetcher_state": None})
    0
    >>> saved_num_workers({"_snapshot": {"_main_snapshot": {"_num_workers": 2}}})
    2
    """
    snapshot = state.get("_snapshot")
    if isinstance(snapshot, Mapping):
        main = snapshot.get("_main_snapshot")
        n = main.get("_num_workers") if isinstance(main, Mapping) else None
        return n if isinstance(n, int) and not isinstance(n, bool) else None
    return 0 if "_num_yielded" in state else None


def _share_states(node: Any, depth: int = 0) -> Iterator[Mapping[str, Any]]:
    """The :class:`ShareIterator` states inside a loader's state."""
    if not isinstance(node, Mapping) or depth > _MAX_DEPTH:
        return
    if is_share_state(node):
        yield node
        return
    for value in node.values():
        yield from _share_states(value, depth + 1)


def load_loader_state(loader: Any, state: Mapping[str, Any]) -> None:
    """``loader.load_state_dict(state)``, once ``state`` is known to fit ``loader``.

    Use it in place of ``loader.load_state_dict(state)`` to resume a ``StatefulDataLoader``
    (torchdata's, or a subclass) from a checkpoint: a state saved under another configuration
    is refused here, with a message naming both values, instead of at ``iter(loader)`` (or, for
    a state moved between ``num_workers=0`` and a positive count, by torchdata's own
    ``AssertionError``).

    Parameters
    ----------
    loader : StatefulDataLoader
        The loader to resume; its ``dataset`` is usually a :class:`StreamDataset` (other
        datasets get the ``num_workers`` check only).
    state : dict
        What ``loader.state_dict()`` returned when the checkpoint was written (``{}``: start
        afresh, as torchdata does).

    Raises
    ------
    StateError
        If ``state`` was saved by a loader with another ``num_workers``, or, for a
        :class:`StreamDataset`, under another ``world_size``, rank or ``samples_per_epoch``
        (resuming under another configuration is not supported: the shares, so the streams,
        would differ).

    Examples
    --------
    >>> import pescador, pytest, warnings
    >>> stateful = pytest.importorskip("torchdata.stateful_dataloader")
    >>> warnings.filterwarnings(
    ...     "ignore", "'set_vital' is deprecated"
    ... )  # torchdata 0.11, torch 2.13
    >>> dataset = pescador.torch.StreamDataset(range(10), rank=0, world_size=1)
    >>> loader = stateful.StatefulDataLoader(dataset, batch_size=None)
    >>> it = iter(loader)
    >>> [int(next(it)) for _ in range(3)]
    [0, 1, 2]
    >>> state = loader.state_dict()
    >>> resumed = stateful.StatefulDataLoader(dataset, batch_size=None)
    >>> pescador.torch.load_loader_state(resumed, state)
    >>> [int(x) for x in resumed]
    [3, 4, 5, 6, 7, 8, 9]
    """
    if not isinstance(state, Mapping):
        raise StateError(f"a StatefulDataLoader's state is a dict; got {type(state).__name__}")
    if state:
        here = loader.num_workers
        saved = saved_num_workers(state)
        if saved is not None and saved != here:
            raise StateError(
                "this StatefulDataLoader state was saved under another configuration: "
                f"num_workers={saved} in the state, {here} here (resume with the DataLoader "
                "arguments of the run that saved it)"
            )
        dataset = getattr(loader, "dataset", None)
        if isinstance(dataset, StreamDataset):
            configuration = dataset._configuration(here)
            for share in _share_states(state):
                check_configuration(share, configuration)
    loader.load_state_dict(state)
