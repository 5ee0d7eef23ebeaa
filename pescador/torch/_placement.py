"""Where a StreamDataset runs: its rank, the number of ranks, and its consumers (private)."""

from __future__ import annotations

import os
from typing import Any

from ..exceptions import PescadorError

__all__ = ["check_count", "resolve_ranks"]


def _from_torch() -> tuple[int, int] | None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return None


def _from_environment() -> tuple[int, int] | None:
    rank, world_size = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
    if rank is None or world_size is None:
        return None
    try:
        return int(rank), int(world_size)
    except ValueError:
        raise PescadorError(
            f"the environment variables RANK={rank!r} and WORLD_SIZE={world_size!r} must be "
            "integers"
        ) from None


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PescadorError(f"{name}={value!r} must be an integer >= {minimum}")
    return value


def resolve_ranks(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """``(rank, world_size)``: the arguments where given, else ``torch.distributed`` when it is
    initialised, else the ``RANK`` and ``WORLD_SIZE`` environment variables, else ``(0, 1)``.
    """
    if rank is None or world_size is None:
        found = _from_torch() or _from_environment() or (0, 1)
        rank = found[0] if rank is None else rank
        world_size = found[1] if world_size is None else world_size
    world_size = _check_int(world_size, "world_size", 1)
    rank = _check_int(rank, "rank", 0)
    if rank >= world_size:
        raise PescadorError(f"rank={rank} must be less than world_size={world_size}")
    return rank, world_size


def check_count(value: Any, name: str) -> int | None:
    """A positive item count, or None."""
    if value is None:
        return None
    return _check_int(value, name, 1)
