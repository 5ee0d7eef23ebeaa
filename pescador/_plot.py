"""The figure of ``pescador demo --plot`` (private): what the sampler did, at a glance.

Three panels: each file's realised share of the samples against its target share (the
weights), the distribution of samples per file, and the throughput over time. Needs
matplotlib (``pip install 'pescador[plot]'``), imported only here, with the non-interactive
Agg backend (no display needed).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .exceptions import PescadorError
from .stats import MuxStats

__all__ = ["plot_demo"]


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PescadorError(
            "--plot needs matplotlib: pip install 'pescador[plot]' (or pip install matplotlib)"
        ) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_demo(
    path: str | os.PathLike[str],
    stats: MuxStats,
    history: Sequence[tuple[float, int]],
    title: str,
    what: str = "windows",
) -> None:
    """Write the figure to ``path`` (PNG, or any format matplotlib knows by the suffix)."""
    plt = _pyplot()
    shares = stats.shares()
    targets = stats.targets()
    counts = np.array([s.items for s in stats.streamers])
    n = len(counts)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), dpi=100, layout="constrained")
    fig.suptitle(title, fontsize=10)

    # 1. Share per file against its target: files sorted by target, then index.
    ax = axes[0]
    order = np.lexsort((np.arange(n), targets)) if targets is not None else np.arange(n)
    x = np.arange(n)
    ax.bar(x, 100 * shares[order], width=1.0, color="#4c72b0", label="realised")
    if targets is not None:
        ax.step(x, 100 * targets[order], where="mid", color="#dd8452", lw=2, label="target")
        gap = np.abs(shares - targets).sum() / 2
        ax.set_title(f"share of {what} per file (total variation {100 * gap:.1f}%)", fontsize=10)
    else:
        ax.set_title(f"share of {what} per file", fontsize=10)
    ax.set_xlabel(f"file ({n}, sorted by target share)" if targets is not None else "file")
    ax.set_ylabel("% of samples")
    ax.set_xlim(-0.5, n - 0.5)
    ax.legend(loc="upper left", fontsize=8, frameon=False)

    # 2. Samples per file: how many files got how many windows.
    ax = axes[1]
    if counts.max(initial=0) > 0:
        bins = min(40, max(5, int(np.sqrt(n)) * 2))
        ax.hist(counts, bins=bins, color="#55a868", edgecolor="white")
    if n:
        mean = counts.mean()
        ax.axvline(mean, color="black", ls="--", lw=1, label=f"mean {mean:.1f}")
        unreached = int(np.count_nonzero(counts == 0))
        ax.legend(
            loc="upper right",
            fontsize=8,
            frameon=False,
            title=f"{unreached} never reached",
            title_fontsize=8,
        )
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"{what} per file", fontsize=10)
    ax.set_xlabel(f"{what} drawn from a file")
    ax.set_ylabel("files")

    # 3. Throughput over time (between samples of the progress line).
    ax = axes[2]
    t = np.array([h[0] for h in history], dtype=float)
    done = np.array([h[1] for h in history], dtype=float)
    if len(t) >= 2:
        dt = np.diff(t)
        keep = dt > 0
        speed = np.diff(done)[keep] / dt[keep]
        mid = (t[1:] + t[:-1])[keep] / 2
        ax.plot(mid, speed / 1e3, color="#c44e52", marker="." if len(mid) < 30 else None)
        overall = done[-1] / t[-1] if t[-1] > 0 else 0.0
        ax.axhline(overall / 1e3, color="black", ls="--", lw=1, label=f"mean {overall:,.0f}/s")
        ax.legend(loc="lower right", fontsize=8, frameon=False)
        ax.set_ylim(bottom=0)
    ax.set_title("throughput", fontsize=10)
    ax.set_xlabel("seconds")
    ax.set_ylabel(f"thousand {what}/s")
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=8)
    fig.savefig(path)
    plt.close(fig)
