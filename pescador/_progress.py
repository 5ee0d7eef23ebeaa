"""The progress line of the ``pescador`` command (private).

On a terminal: a live line (items, items/s, elapsed, and the ETA when the total is known),
drawn by `rich <https://rich.readthedocs.io>`_ when it is installed (``pescador[progress]``),
else by a plain carriage-return line. Not on a terminal (a log file, CI): a plain line every
few seconds. Nothing with ``quiet``. It also keeps the throughput over time, which the plot
and the JSON report show.
"""

from __future__ import annotations

import time
from typing import Any, TextIO

__all__ = ["Progress", "duration"]

#: Seconds between redraws on a terminal, and between lines elsewhere.
_REDRAW = 0.1
_LOG_EVERY = 5.0


def duration(seconds: float) -> str:
    """``1:02:03``, ``2:03`` or ``4.5s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """A progress line for ``total`` items (``None``: unknown) of ``what``, on ``out``.

    Call :meth:`update` as often as you like (it redraws at most every 0.1 s) and
    :meth:`finish` at the end. ``history`` holds ``(seconds, items)`` samples, about 4 per
    second then thinned to at most 512, for the throughput over time.
    """

    def __init__(
        self, total: int | None, what: str, out: TextIO, quiet: bool = False, rich: bool = True
    ) -> None:
        self.total = total
        self.what = what
        self.out = out
        self.quiet = quiet
        self.terminal = not quiet and _isatty(out)
        self.start = self.last = time.perf_counter()
        self.logged = self.start
        self.sampled = self.start
        self.done = 0
        self.history: list[tuple[float, int]] = [(0.0, 0)]
        self._every = 0.25
        self._rich: Any = self._open_rich() if self.terminal and rich else None

    def _open_rich(self) -> Any:
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress
        except ImportError:
            return None
        columns: list[Any] = [TextColumn("{task.description}")]
        if self.total is not None:
            columns += [BarColumn(), MofNCompleteColumn()]
        else:
            columns.append(TextColumn("{task.completed:,}"))
        columns += [
            TextColumn("{task.fields[speed]}"),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
        ]
        if self.total is not None:
            columns += [TextColumn("ETA"), TimeRemainingColumn()]
        bar = RichProgress(*columns, console=Console(file=self.out), transient=False)
        bar.start()
        self._task = bar.add_task(self.what, total=self.total, speed="")
        return bar

    def update(self, done: int, force: bool = False) -> None:
        """``done`` items so far."""
        self.done = done
        now = time.perf_counter()
        if now - self.sampled >= self._every:
            self.sampled = now
            self._sample(now)
        if self.quiet or (now - self.last < _REDRAW and not force):
            return
        self.last = now
        elapsed = now - self.start
        speed = done / elapsed if elapsed > 0 else 0.0
        if self._rich is not None:
            self._rich.update(self._task, completed=done, speed=f"{speed:,.0f} {self.what}/s")
        elif self.terminal:
            self.out.write(f"\r{self.line(done, elapsed)}  ")
            self.out.flush()
        elif now - self.logged >= _LOG_EVERY or force:
            self.logged = now
            print(self.line(done, elapsed), file=self.out, flush=True)

    def _sample(self, now: float) -> None:
        self.history.append((now - self.start, self.done))
        if len(self.history) > 512:  # keep every other sample: twice as far apart from now
            self.history = self.history[::2]
            self._every *= 2

    def line(self, done: int, elapsed: float) -> str:
        """The plain line: ``1,234/5,000 windows (24%), 2,345 windows/s, 0.5s, ETA 1.6s``."""
        speed = done / elapsed if elapsed > 0 else 0.0
        count = f"{done:,}"
        if self.total:
            count += f"/{self.total:,} {self.what} ({100 * done / self.total:.0f}%)"
        else:
            count += f" {self.what}"
        text = f"{count}, {speed:,.0f} {self.what}/s, elapsed {duration(elapsed)}"
        if self.total and speed > 0 and done < self.total:
            text += f", ETA {duration((self.total - done) / speed)}"
        return text

    def finish(self) -> float:
        """Draw the last state and end the line; returns the seconds elapsed."""
        now = time.perf_counter()
        self._sample(now)
        self.update(self.done, force=True)
        if self._rich is not None:
            self._rich.stop()
        elif self.terminal:
            self.out.write("\n")
            self.out.flush()
        return now - self.start


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False
