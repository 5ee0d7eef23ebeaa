"""Sources for the Ray tests (``test_ray``): module-level, so that Ray's actors import them by
name (the tests put this folder on the actors' ``PYTHONPATH``)."""

from __future__ import annotations

import itertools
import os
import time

import numpy as np

from pescador import ACTIVATION_RNG


def letters(tag, n):
    """``tag0``, ..., ``tag{n-1}``."""
    for i in range(n):
        yield f"{tag}{i}"


def draws(tag, n=None, rng=ACTIVATION_RNG):
    """``(tag, i, r)`` with ``r`` from the activation's generator (forever if ``n`` is None)."""
    for i in itertools.count() if n is None else range(n):
        yield (tag, i, int(rng.integers(1 << 30)))


def arrays(tag, n, size=1000):
    """``n`` dicts of an int64 array of ``size`` (a marker ``i`` at its start) and the tag."""
    for i in range(n):
        x = np.zeros(size, np.int64)
        x[0] = i
        yield {"X": x, "tag": tag}


def failing(n):
    """``n`` items, then ValueError."""
    yield from range(n)
    raise ValueError("boom in the actor")


def whereami(tag):
    """``(tag, pid)`` forever: which process runs this streamer (one item every ms)."""
    while True:
        time.sleep(0.001)
        yield (tag, os.getpid())


def sleepy(seconds):
    """One item, then nothing for ``seconds``."""
    yield 0
    time.sleep(seconds)
    yield 1
