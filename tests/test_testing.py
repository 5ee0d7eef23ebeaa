"""pescador.testing: the conformance helpers users run on their own streams.

Each helper must pass on a conforming stream and fail, with a message naming the first
mismatch, on a broken one. Streams are seeded, so every test is deterministic. The tests of
:func:`assert_proportions` that expect a pass state their false-failure probability (at most
``alpha``, by the bound the helper documents); those that expect a failure use deviations many
times the tolerance.
"""

from __future__ import annotations

import itertools
import math
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pescador
from conftest import REPO, Counting, draws, endless, letters
from pescador import ShuffledMux, StochasticMux, Streamer
from pescador.testing import (
    assert_proportions,
    assert_restartable,
    assert_resumable,
    checkpoint_positions,
    hoeffding_tolerance,
    items_equal,
)


class OffByOne(Counting):
    """A broken user iterator: its state is one item behind its position."""

    def state_dict(self):
        return {"i": max(0, self.i - 1)}

    def load_state_dict(self, state):
        self.i = state["i"]


class NotJson(OffByOne):
    def state_dict(self):
        return {"i": {self.i}}  # a set: not JSON


@pescador.iterator_factory
def off_by_one(n):
    return OffByOne(n)


@pescador.iterator_factory
def not_json(n):
    return NotJson(n)


# --------------------------------------------------------------------------- items_equal
@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ({"X": np.arange(3), "y": 1}, {"X": np.arange(3), "y": 1}, True),
        ({"X": np.arange(3)}, {"X": np.arange(3.0)}, False),  # dtype
        ({"X": np.zeros((2, 3))}, {"X": np.zeros((3, 2))}, False),  # shape
        ({"X": np.array([np.nan, 1.0])}, {"X": np.array([np.nan, 1.0])}, True),
        ({"X": np.zeros(2)}, {"X": np.zeros(2), "Y": 1}, False),  # keys
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, True),  # key order does not matter
        ((np.ones(2), "a"), (np.ones(2), "a"), True),
        ((1, 2), [1, 2], False),  # tuple vs list
        ([1, 2], [1, 2, 3], False),
        (np.array([{"a": np.ones(2)}], dtype=object), np.array([{"a": np.ones(2)}]), True),
        (float("nan"), float("nan"), True),
        (np.float32(2.5), np.float32(2.5), True),
        ("a", "b", False),
        (np.arange(3), [0, 1, 2], False),  # an array equals only an array of its dtype
        ({"X": [np.ones(2), np.zeros(1)]}, {"X": [np.ones(2), np.zeros(1)]}, True),
    ],
)
def test_items_equal(a, b, equal):
    assert items_equal(a, b) is equal
    assert items_equal(b, a) is equal


def test_items_equal_survives_comparisons_that_raise():
    class Raises:
        def __eq__(self, other):
            raise RuntimeError("no comparing me")

    assert not items_equal(Raises(), Raises())
    thing = Raises()
    assert items_equal(thing, thing)  # the same object


# --------------------------------------------------------------------------- restartable
def test_restartable_passes_on_seeded_streams_and_returns_the_items():
    mux = StochasticMux([Streamer(draws, t) for t in "abc"], 2, 3, random_state=0)
    items = assert_restartable(mux, n=50)
    assert items == list(mux.iterate(max_iter=50))
    assert assert_restartable(Streamer(letters, "a", 3), n=10) == ["a0", "a1", "a2"]
    assert assert_restartable(Streamer([]), n=10) == []


def test_restartable_fails_on_a_one_shot_iterator():
    with pytest.raises(
        AssertionError, match=r"iteration 2 differs from iteration 1: it yielded nothing"
    ):
        assert_restartable(Streamer(letters("a", 5)), n=10)


def test_restartable_fails_on_an_unseeded_random_stream():
    """Fresh entropy per iteration: equal first items with probability 2**-30."""
    with pytest.raises(AssertionError, match=r"not restartable: .*item 0 differs"):
        assert_restartable(Streamer(draws, "a"), n=10)


def test_restartable_runs_two_iterations_side_by_side():
    """A generator sharing a cursor between iterations is restartable one at a time, but two
    iterations interleaved disturb each other."""

    class Cursor:
        position = 0

    def from_cursor(cursor, n):
        cursor.position = 0
        while cursor.position < n:
            cursor.position += 1
            yield cursor.position

    stream = Streamer(from_cursor, Cursor(), 6)
    assert list(stream) == list(stream)  # sequentially, it looks restartable
    with pytest.raises(AssertionError, match=r"iteration 2 differs from iteration 1: item \d"):
        assert_restartable(stream, n=6)


def test_restartable_with_a_custom_equal():
    stream = Streamer(draws, "a")
    assert_restartable(stream, n=5, equal=lambda a, b: a[0] == b[0])  # tags only


# --------------------------------------------------------------------------- resumable
def test_resumable_passes_and_returns_the_uninterrupted_items():
    streams = [Streamer(letters, c, n) for c, n in zip("abc", (4, 0, 6), strict=True)]
    mux = pescador.RoundRobinMux(streams)
    assert assert_resumable(mux, n=20, positions="all") == list(mux)


def test_resumable_names_the_first_bad_position_and_item():
    stream = Streamer(off_by_one, 10)
    with pytest.raises(AssertionError) as info:
        assert_resumable(stream, n=10, positions=range(1, 11))
    message = str(info.value)
    assert "from a checkpoint at position 1 " in message
    assert "item 1 differs" in message
    assert "expected 1" in message and "got      0" in message


def test_resumable_reports_a_resume_that_ends_early_or_yields_extra_items():
    class Shrinks(OffByOne):
        def state_dict(self):
            return {"i": self.i}

        def load_state_dict(self, state):
            self.i = state["i"]
            self.n -= 2  # resumes at the right item, but ends two items early

    @pescador.iterator_factory
    def shrinks(n):
        return Shrinks(n)

    with pytest.raises(AssertionError, match=r"position 3 .*it ended after item 7 \(5 items\)"):
        assert_resumable(Streamer(shrinks, 10), n=10, positions=[3])
    # OffByOne at its end: the state is one behind, so one item too many comes out (n=12
    # leaves room for it: a resumed iteration counts the items before the checkpoint).
    with pytest.raises(AssertionError, match=r"position 10 .*1 extra item\(s\) after item 9"):
        assert_resumable(Streamer(off_by_one, 10), n=12, positions=[10])


def test_resumable_reports_a_state_that_is_not_json():
    with pytest.raises(AssertionError, match="position 1 is not JSON-serialisable"):
        assert_resumable(Streamer(not_json, 5), n=5, positions=[1])


def test_resumable_reports_a_state_that_cannot_be_taken():
    """A map over a plain list cannot describe its input's position."""
    stream = Streamer(pescador.buffer_stream, [{"x": np.zeros(1)}] * 6, 2)
    with pytest.raises(AssertionError, match=r"state_dict\(\) at position 1 raised StateError"):
        assert_resumable(stream, n=3, positions=[1])


def test_resumable_reports_a_state_that_cannot_be_loaded():
    """A user iterator whose load_state_dict raises: the message says where and why."""

    class Fussy(OffByOne):
        def load_state_dict(self, state):
            raise ValueError("no such position")

    @pescador.iterator_factory
    def fussy(n):
        return Fussy(n)

    # (its ValueError, about the state it was given, becomes a StateError naming the source)
    expected = r"cannot resume .* position 2: StateError: .*Fussy.load_state_dict rejected"
    with pytest.raises(AssertionError, match=expected + r" the state \(ValueError: no such"):
        assert_resumable(Streamer(fussy, 5), n=5, positions=[2])


def test_resumable_with_a_custom_equal_and_cycle():
    stream = Streamer(letters, "a", 3)
    items = assert_resumable(stream, n=8, cycle=True, positions=range(1, 9))
    assert items == ["a0", "a1", "a2", "a0", "a1", "a2", "a0", "a1"]
    with pytest.raises(AssertionError, match="item 1 differs"):
        assert_resumable(stream, n=3, positions=[1], equal=lambda a, b: False)


def test_resumable_checks_a_finite_stream_past_its_end():
    stream = Streamer(letters, "a", 3)
    assert assert_resumable(stream, n=10, positions=[1, 3, 7, 10]) == ["a0", "a1", "a2"]
    assert assert_resumable(stream, n=0) == []


def test_resumable_needs_a_stream():
    with pytest.raises(TypeError, match="expected a pescador stream"):
        assert_resumable([1, 2, 3], n=3)
    with pytest.raises(TypeError, match=r"Streamer\(buffer_stream, mux, 32\)"):
        assert_resumable(pescador.buffer_stream([{"x": 1}], 1), n=3)
    with pytest.raises(ValueError, match="n=-1"):
        assert_resumable(Streamer([1]), n=-1)


def test_checkpoint_positions():
    assert checkpoint_positions("all", 3) == [0, 1, 2, 3]
    assert checkpoint_positions(None, 5) == list(range(6))
    many = checkpoint_positions(None, 1000)
    assert len(many) == 100 and many[0] == 0 and many[-1] == 1000
    assert checkpoint_positions(None, 1000) == many  # deterministic
    assert checkpoint_positions(7, 3) == [0, 1, 2, 3]
    assert checkpoint_positions(2, 50) == [0, 50]
    assert checkpoint_positions(1, 50) == [0]
    assert checkpoint_positions([3, 1, 3], 5) == [1, 3]
    for bad in ("some", 0, [11], [-1]):
        with pytest.raises(ValueError, match="positions"):
            checkpoint_positions(bad, 10)


# --------------------------------------------------------------------------- proportions
def shuffled(weights, seed=0):
    return ShuffledMux(
        [Streamer(endless, {"tag": t}) for t in "abc"], weights=weights, random_state=seed
    )


def test_proportions_pass_on_independent_draws():
    """ShuffledMux draws are independent: false-failure probability <= alpha = 1e-6."""
    shares = assert_proportions(shuffled([1, 2, 1]), "tag", {"a": 1, "b": 2, "c": 1}, n=20_000)
    assert list(shares) == ["a", "b", "c"]
    assert math.isclose(sum(shares.values()), 1.0)
    assert abs(shares["b"] - 0.5) < hoeffding_tolerance(20_000, 1e-6, 3)


def test_proportions_fail_naming_the_category_and_the_bound():
    with pytest.raises(AssertionError) as info:
        assert_proportions(shuffled([3, 1, 0]), "tag", {"a": 0.5, "b": 0.5}, n=10_000)
    message = str(info.value)
    tol = hoeffding_tolerance(10_000, 1e-6, 2)
    assert message.startswith("share of 'a' is 0.7")
    assert f"expected 0.5 ± {tol:.3g}" in message
    assert "10000 items, effective n = 1e+04, alpha = 1e-06" in message


def test_proportions_fail_on_a_category_not_expected():
    with pytest.raises(AssertionError, match=r"share of 'c' is 0.3.*not in `expected`"):
        assert_proportions(shuffled([1, 1, 1]), "tag", {"a": 0.5, "b": 0.5}, n=6000)


def test_proportions_of_a_stochastic_mux_with_its_correlation():
    """Runs of about ``rate`` items from one streamer: ``correlation = 2 * rate`` (the rule
    of thumb documented). The shares are 1/4, 1/2, 1/4 in the long run."""
    mux = StochasticMux(
        [Streamer(endless, {"tag": t}) for t in "abc"], 2, 8, weights=[1, 2, 1], random_state=4
    )
    expected = {"a": 0.25, "b": 0.5, "c": 0.25}
    assert_proportions(mux, "tag", expected, n=40_000, correlation=16)
    with pytest.raises(AssertionError, match="effective n = 2500"):
        assert_proportions(mux, "tag", {"a": 1, "b": 1, "c": 1}, n=40_000, correlation=16)


def test_proportions_keys_and_expected_forms():
    items = [{"k": np.array([i % 2]), "s": i % 2} for i in range(1000)]
    stream = Streamer(items)
    assert assert_proportions(stream, "k", [0.5, 0.5], n=1000) == {0: 0.5, 1: 0.5}
    assert assert_proportions(stream, lambda item: item["s"], {0: 1, 1: 1}, n=1000)
    assert assert_proportions(Streamer("abab" * 100), None, {"a": 1, "b": 1}, n=400)
    # A stream shorter than n is checked on the items it gave.
    assert assert_proportions(Streamer("ab"), None, {"a": 1, "b": 1}, n=10**6) == {
        "a": 0.5,
        "b": 0.5,
    }


def test_proportions_effective_n_overrides_correlation():
    stream = Streamer("a" * 60 + "b" * 40)
    with pytest.raises(AssertionError, match="effective n = 100"):
        assert_proportions(stream, None, {"a": 0.9, "b": 0.1}, n=100)
    assert_proportions(stream, None, {"a": 0.9, "b": 0.1}, n=100, effective_n=10)


def test_proportions_argument_errors():
    stream = Streamer("ab")
    for bad in ({"a": -1}, {"a": 0}, {"a": "x"}, 3, "ab", {"a": math.inf}):
        with pytest.raises(ValueError, match="expected="):
            assert_proportions(stream, None, bad)
    with pytest.raises(ValueError, match="correlation"):
        assert_proportions(stream, None, {"a": 1}, correlation=0.5)
    with pytest.raises(AssertionError, match="yielded no items"):
        assert_proportions(Streamer([]), None, {"a": 1})


def test_hoeffding_tolerance():
    assert hoeffding_tolerance(100, 0.01) == pytest.approx(math.sqrt(math.log(200) / 200))
    assert hoeffding_tolerance(100, 0.01, 5) == pytest.approx(math.sqrt(math.log(1000) / 200))
    for n, alpha, k in ((0, 0.1, 1), (10, 0, 1), (10, 1, 1), (10, 0.1, 0)):
        with pytest.raises(ValueError):
            hoeffding_tolerance(n, alpha, k)


def test_proportions_false_failure_rate_is_below_alpha():
    """200 seeds at alpha = 0.01: a correct helper fails at most 1% of them on average; more
    than 10 failures has probability < 1e-5 (binomial tail, p = 0.01, n = 200)."""
    failures = 0
    for seed in range(200):
        try:
            expected = {"a": 1, "b": 2, "c": 1}
            assert_proportions(shuffled([1, 2, 1], seed), "tag", expected, n=2000, alpha=0.01)
        except AssertionError:
            failures += 1
    assert failures <= 10


# --------------------------------------------------------------------------- plain scripts
def test_helpers_work_in_a_plain_script_even_with_asserts_stripped(tmp_path):
    """They raise AssertionError themselves (no ``assert``), so ``python -O`` keeps them."""
    script = tmp_path / "check.py"
    script.write_text(
        textwrap.dedent(
            """
            import pescador
            from pescador.testing import assert_restartable, assert_resumable

            mux = pescador.StochasticMux(
                [pescador.Streamer("abc"), pescador.Streamer("xyz")], 2, 2, random_state=0
            )
            assert_restartable(mux, n=6)
            assert_resumable(mux, n=6, positions=range(1, 7))
            try:
                assert_restartable(pescador.Streamer(iter("abc")), n=3)
            except AssertionError as exc:
                print("caught:", exc)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-O", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": ""},
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"caught: Streamer\(str\w*iterator\) is not restartable", done.stdout)


def test_helpers_are_importable_from_the_package():
    from pescador import testing

    assert set(testing.__all__) >= {"assert_restartable", "assert_resumable", "assert_proportions"}
    assert list(itertools.islice(testing.checkpoint_positions("all", 2), 5)) == [0, 1, 2]
