"""A fuzzer of checkpoint states: whatever is done to a state, loading it raises StateError or
resumes, never another exception, never a hang.

For every kind of stream (Streamer, cycle, a seekable source, each mux and mode, nested muxes,
the maps, cache, the window streamers, ParallelStreamer, ZMQStreamer), states are taken at a
few positions and mutated at every field of their tree: a key deleted, a value set to None or
to another type, an int made negative, huge or off by one, a bool flipped, a list truncated
or extended, a packed string or a generator state corrupted, two nested children swapped.

- Unchanged, a state resumes exactly: the items that the interrupted iterator went on to give.
- Mutated and not resealed, it is refused (StateError: digest), unless the mutation left its
  canonical JSON unchanged (then it resumes exactly).
- Mutated and resealed (its digest recomputed, as a crafted state would be), it raises
  StateError, at the load or by the 50th item, or it yields its items without any other
  exception; each case within a deadline.

The default run samples the mutations (seeded); ``-m slow`` runs all of them.
"""

from __future__ import annotations

import copy
import gc
import itertools
import json
import multiprocessing
import os
import random
import signal
import tempfile
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import pescador
import pescador._state
import pescador.io
from conftest import Counting, reseal
from pescador import (
    ACTIVATION_RNG,
    ChainMux,
    ParallelStreamer,
    RoundRobinMux,
    ShuffledMux,
    StateError,
    StochasticMux,
    Streamer,
)
from pescador.testing import items_equal

#: Items taken after a mutated state resumes, and the seconds one case may take.
TAKE = 50
DEADLINE = 10.0


# --------------------------------------------------------------------------- sources
def tagged(tag, n=None, rng=ACTIVATION_RNG):
    """Dicts of arrays, ``n`` of them (forever if None), with a draw from the activation's
    generator: a resume is exact only if it restores the seed."""
    for i in itertools.count() if n is None else range(n):
        yield {"X": np.full(2, i, np.int64), "tag": np.array(tag), "r": np.array(rng.random())}


def arrays(n):
    for i in range(n):
        yield {"x": np.full(3, i, np.int64)}


def chain_of_streams():
    for tag, n in zip("pqr", (4, 0, 6), strict=True):
        yield Streamer(tagged, tag, n)


class Checked(Counting):
    """A seekable user iterator whose ``load_state_dict`` checks what it is given (floats and
    large ints in its state, to test the digest)."""

    def item(self, i):
        return {"x": np.array(i)}

    def state_dict(self):
        return {"i": self.i, "scale": 0.1 * self.i, "big": 2**100 + self.i, "tiny": 5e-324}

    def load_state_dict(self, state):
        i = state["i"]
        if type(i) is not int or not 0 <= i <= self.n:
            raise ValueError(f"no position {i!r}")
        self.i = i


@pescador.iterator_factory
def checked(n):
    return Checked(n)


def streams(length=(5, 0, 9, 3, 12)):
    return [Streamer(tagged, c, n) for c, n in zip("abcde", length, strict=True)]


def stochastic(**options):
    args = {"n_active": 3, "rate": 4, "random_state": 0, **options}
    return StochasticMux(streams(), args.pop("n_active"), args.pop("rate"), **args)


def write_corpus(folder):
    for k in range(3):
        rows = 40 + 10 * k
        np.savez(folder / f"{k}.npz", X=np.arange(rows * 3).reshape(rows, 3), Y=np.arange(rows))
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("fuzz-corpus"))


#: name -> (build(corpus) -> stream, cycle, positions)
KINDS = {
    "Streamer": (lambda c: Streamer(tagged, "a", 40), False, (0, 3, 17)),
    "Streamer-endless": (lambda c: Streamer(tagged, "a"), False, (5,)),
    "cycle": (lambda c: Streamer(tagged, "a", 7), True, (0, 4, 16)),
    "seekable": (lambda c: Streamer(checked, 30), False, (0, 6)),
    "StochasticMux": (
        lambda c: stochastic(weights=[1, 2, 0.5, 1, 3], prune_empty_streams=True),
        False,
        (0, 5, 23),
    ),
    "StochasticMux-single": (
        lambda c: stochastic(mode="single_active", dist="poisson", prune_empty_streams=False),
        False,
        (4, 21),
    ),
    "StochasticMux-exhaustive": (
        lambda c: stochastic(mode="exhaustive", dist="constant", n_active=2),
        True,
        (3, 29),
    ),
    "StochasticMux-unlimited": (lambda c: stochastic(rate=None), False, (6,)),
    "ShuffledMux": (lambda c: ShuffledMux(streams(), [1, 2, 0, 1, 3], 1), False, (0, 7, 19)),
    "RoundRobinMux": (
        lambda c: RoundRobinMux(streams(), "permuted_cycle", random_state=2),
        False,
        (0, 8, 33),
    ),
    "ChainMux": (lambda c: ChainMux(streams(), "cycle", 3), False, (0, 6, 31)),
    "ChainMux-generator": (lambda c: ChainMux(chain_of_streams, "cycle"), False, (2, 13)),
    "nested": (
        lambda c: StochasticMux(
            [stochastic(n_active=2), Streamer(tagged, "z", 9), ShuffledMux(streams()[:2])],
            2,
            3,
            random_state=5,
        ),
        False,
        (4, 15),
    ),
    "buffer_stream": (lambda c: Streamer(pescador.buffer_stream, stochastic(), 3), False, (2,)),
    "tuples": (lambda c: Streamer(pescador.tuples, stochastic(), "X", "tag"), False, (5,)),
    "keras_tuples": (lambda c: Streamer(pescador.keras_tuples, stochastic(), "X"), False, (5,)),
    "cache": (
        lambda c: Streamer(pescador.cache, stochastic(), 4, 0.5, random_state=1),
        False,
        (2, 19),
    ),
    "npz_windows": (lambda c: Streamer(pescador.io.npz_windows, c / "1.npz", 4), False, (3,)),
    "npz_streamers": (
        lambda c: StochasticMux(pescador.io.npz_streamers(c, 5), 2, 3, random_state=0),
        False,
        (9,),
    ),
    "ParallelStreamer": (lambda c: ParallelStreamer(stochastic(), 2), False, (7,)),
    "ZMQStreamer": (
        lambda c: pescador.zmq_stream.ZMQStreamer(Streamer(arrays, 40), snapshot_every=None),
        False,
        (6,),
    ),
}

#: Mutations sampled per state in the default run (all of them with -m slow); fewer for the
#: kinds whose every resume starts processes.
SAMPLE = {"ParallelStreamer": 30, "ZMQStreamer": 20}
DEFAULT_SAMPLE = 250


# --------------------------------------------------------------------------- mutations
def leaves(value, path=()):
    """Every (path, value) of a state's tree, but the root."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, child in items:
        yield (*path, key), child
        yield from leaves(child, (*path, key))


def changed(state, path, edit):
    """A deep copy of ``state`` with ``edit(parent, key)`` applied at ``path``."""
    state = copy.deepcopy(state)
    parent = state
    for key in path[:-1]:
        parent = parent[key]
    edit(parent, path[-1])
    return state


def setter(value):
    def edit(parent, key):
        parent[key] = value

    return edit


def delete(parent, key):
    del parent[key]


def flip_char(text):
    if not text:
        return "A"
    i = len(text) // 2
    return text[:i] + ("B" if text[i] != "B" else "C") + text[i + 1 :]


def mutations(state):
    """``(label, mutated state)`` for every mutation of every field of ``state``."""
    for path, value in leaves(state):
        name = "".join(f"[{k!r}]" for k in path)
        edits = [
            ("deleted", delete),
            ("None", setter(None)),
            ("str", setter("x")),
            ("list", setter([])),
            ("dict", setter({})),
            ("float", setter(1.5)),
        ]
        if isinstance(value, bool):
            edits.append(("flipped", setter(not value)))
        elif isinstance(value, int):
            for label, new in [
                ("-1", -1),
                ("10**30", 10**30),
                ("2**63", 2**63),
                ("+1", value + 1),
                ("-1 off", value - 1),
                ("0", 0),
                ("1", 1),
                ("as float", float(value)),
            ]:
                edits.append((label, setter(new)))
            if path != ("n",):  # (the outermost count may replay a plain source: any time)
                edits.append(("2**40", setter(2**40 + value)))
        elif isinstance(value, float):
            edits += [("nan", setter(float("nan"))), ("neg", setter(-value - 1.0))]
        elif isinstance(value, str):
            edits += [
                ("empty", setter("")),
                ("truncated", setter(value[:-2])),
                ("flipped char", setter(flip_char(value))),
                ("extended", setter(value + "AAAA")),
            ]
        elif isinstance(value, list) and value:
            edits += [
                ("truncated", setter(value[:-1])),
                ("extended", setter([*value, copy.deepcopy(value[-1])])),
                ("reversed", setter(value[::-1])),
                ("emptied", setter([])),
            ]
        elif isinstance(value, dict) and value:
            edits.append(("emptied", setter({})))
        for label, edit in edits:
            yield f"{name} {label}", changed(state, path, edit)
    # Nested children swapped: the slots of a mux, and their child states.
    for path, value in leaves(state):
        if isinstance(value, list) and len(value) >= 2 and path[-1] in ("slots", "workers"):
            name = "".join(f"[{k!r}]" for k in path)
            yield f"{name} swapped", changed(state, path, setter([value[1], value[0], *value[2:]]))
            if all(isinstance(slot, list) and len(slot) == 4 for slot in value[:2]):
                a, b = copy.deepcopy(value[0]), copy.deepcopy(value[1])
                a[3], b[3] = b[3], a[3]
                yield f"{name} children swapped", changed(state, path, setter([a, b, *value[2:]]))


def canonical(state):
    return pescador._state._canonical(state)


# --------------------------------------------------------------------------- the checks
class Hang(BaseException):
    """The case ran past its deadline."""


@contextmanager
def deadline(seconds):
    """Raise Hang in this thread after ``seconds`` (restoring pytest-timeout's alarm after)."""
    previous = signal.getsignal(signal.SIGALRM)
    left, _ = signal.getitimer(signal.ITIMER_REAL)
    start = time.monotonic()

    def on_alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if left:
            signal.setitimer(signal.ITIMER_REAL, max(1e-3, left - (time.monotonic() - start)))


def resume(stream, cycle, state, k=TAKE):
    """The first ``k`` items after resuming from ``state``."""
    it = (stream.cycle if cycle else stream.iterate)(state=state)
    try:
        return list(itertools.islice(it, k))
    finally:
        it.close()


def taken(stream, cycle, position, k=30):
    """A state after ``position`` items, and the ``k`` items the iterator gave after it."""
    it = (stream.cycle if cycle else stream.iterate)()
    try:
        for _ in itertools.islice(it, position):
            pass
        state = it.state_dict()
        return state, list(itertools.islice(it, k))
    finally:
        it.close()


def outcome(stream, cycle, state):
    """``"refused"``, or the items of the resume; a failure message for anything else."""
    try:
        with deadline(DEADLINE):
            return resume(stream, cycle, state)
    except StateError:
        return "refused"
    except Hang:
        return f"hung (more than {DEADLINE} s)"
    except Exception:
        return "raised:\n" + traceback.format_exc(limit=-6)


def fuzz(name, corpus, sample):
    """Every check on stream kind ``name``; returns the failures and the cases run."""
    build, cycle, positions = KINDS[name]
    failures, cases = [], 0
    for position in positions:
        stream = build(corpus)
        state, rest = taken(stream, cycle, position)
        json_state = json.loads(json.dumps(state))
        again = resume(build(corpus), cycle, json_state, len(rest))
        if not items_equal(again, rest):
            failures.append(f"{name} at {position}: the unchanged state did not resume exactly")
        every = list(mutations(json_state))
        rng = random.Random(f"{name}-{position}")
        chosen = every if sample is None else rng.sample(every, min(sample, len(every)))
        for label, mutated in chosen:
            cases += 1
            where = f"{name} at {position}, {label}"
            # (a) Not resealed: refused, unless nothing changed but the digest's absence.
            if canonical(mutated) != canonical(json_state) or (
                "digest" in mutated and mutated["digest"] != json_state["digest"]
            ):
                try:
                    (stream.cycle if cycle else stream.iterate)(state=mutated).close()
                    failures.append(f"{where}: accepted without its digest matching")
                except StateError:
                    pass
                except Exception as exc:
                    failures.append(f"{where}, not resealed: {type(exc).__name__}: {exc}")
            elif "digest" not in mutated:
                result = outcome(build(corpus), cycle, mutated)
                if not isinstance(result, list) or not items_equal(result[: len(rest)], rest):
                    failures.append(f"{where}: a state without digest did not resume exactly")
            # (b) Resealed: refused, or resumed; nothing else.
            result = outcome(build(corpus), cycle, reseal(mutated))
            if isinstance(result, str) and result != "refused":
                failures.append(f"{where}, resealed: {result}")
    return failures, cases


# --------------------------------------------------------------------------- leaks
def _our_files():
    found = set()
    for base in {tempfile.gettempdir(), "/dev/shm"}:
        if os.path.isdir(base):
            found |= {
                name
                for name in os.listdir(base)
                if name.startswith(f"pescador-{os.getpid()}-") or "pescador-zmq-" in name
            }
    return found


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """No worker process, no shared-memory or private directory is left by a test."""
    before = _our_files()
    yield
    gc.collect()
    end = time.monotonic() + 5
    while multiprocessing.active_children() and time.monotonic() < end:
        time.sleep(0.02)
    assert multiprocessing.active_children() == []
    assert _our_files() <= before


# --------------------------------------------------------------------------- tests
@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_mutated_state_is_refused_or_resumes(name, corpus):
    failures, cases = fuzz(name, corpus, SAMPLE.get(name, DEFAULT_SAMPLE))
    assert cases
    assert not failures, f"{len(failures)} of {cases} cases failed:\n" + "\n".join(failures[:20])


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_mutation_of_every_field_is_refused_or_resumes(name, corpus):
    failures, cases = fuzz(name, corpus, None)
    assert not failures, f"{len(failures)} of {cases} cases failed:\n" + "\n".join(failures[:20])


def test_the_mutations_reach_every_field():
    state = json.loads(
        json.dumps(StochasticMux(streams(), 2, 3, random_state=0).iterate().state_dict())
    )
    labels = [label for label, _ in mutations(state)]
    assert any("['slots'][1][3]['n'] 10**30" in label for label in labels)
    assert any("['sel'][0]['state']['inc'] +1" in label for label in labels)
    assert any("['slots'] children swapped" in label for label in labels)


def test_the_deadline_interrupts_a_hang():
    with pytest.raises(Hang), deadline(0.05):
        while True:
            pass


if __name__ == "__main__":  # pragma: no cover - a sweep from the command line
    with tempfile.TemporaryDirectory() as folder:
        where = write_corpus(Path(folder))
        for kind in sorted(KINDS):
            begin = time.perf_counter()
            bad, n = fuzz(kind, where, None)
            print(f"{kind}: {n} cases, {len(bad)} failed, {time.perf_counter() - begin:.1f} s")
            for line in bad[:10]:
                print("   ", line)
