"""Tests for pescador.util: batch_length, get_rng and the deprecation helpers."""

from __future__ import annotations

import inspect
import re
import types
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pescador
import pescador.exceptions
import pescador.util
from pescador.util import Deprecated, batch_length, deprecated, get_rng, moved, rename_kw

# --------------------------------------------------------------------------- module surface


def test_util_exposes_pescador_error():
    assert pescador.util.PescadorError is pescador.exceptions.PescadorError
    assert pescador.util.PescadorError is pescador.PescadorError


def test_util_all():
    assert set(pescador.util.__all__) == {
        "Deprecated",
        "PescadorError",
        "batch_length",
        "deprecated",
        "get_rng",
        "moved",
        "rename_kw",
    }
    for name in pescador.util.__all__:
        assert hasattr(pescador.util, name), name


# --------------------------------------------------------------------------- batch_length


@pytest.mark.parametrize("n", [0, 1, 7])
def test_batch_length_common_length(n):
    batch = {"X": np.zeros((n, 3, 2)), "Y": np.arange(n), "Z": list(range(n)), "s": "a" * n}
    assert batch_length(batch) == n


def test_batch_length_zero_is_not_none():
    assert batch_length({"X": np.zeros((0, 4))}) == 0


def test_batch_length_empty_dict_is_none():
    assert batch_length({}) is None


def test_batch_length_accepts_any_mapping():
    batch = types.MappingProxyType({"X": np.zeros(5), "Y": np.ones(5)})
    assert batch_length(batch) == 5


@pytest.mark.parametrize(
    "batch",
    [
        {"X": np.zeros(3), "Y": np.zeros(2)},
        {"X": np.zeros(3), "Y": np.zeros(3), "Z": np.zeros(4)},
        {"X": [], "Y": [1]},
    ],
)
def test_batch_length_unequal_raises(batch):
    with pytest.raises(pescador.util.PescadorError, match=r"^Unequal field lengths"):
        batch_length(batch)


def test_batch_length_unequal_message_names_fields():
    with pytest.raises(pescador.PescadorError, match=r"'X': 3, 'Y': 2"):
        batch_length({"X": np.zeros(3), "Y": np.zeros(2)})


@pytest.mark.parametrize("value", [np.float64(1.0), np.array(2.0), 5])
def test_batch_length_unsized_value_is_type_error(value):
    with pytest.raises(TypeError):
        batch_length({"X": value})


@given(st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=6))
def test_batch_length_property(lengths):
    batch = {f"k{i}": np.zeros(n) for i, n in enumerate(lengths)}
    if len(set(lengths)) == 1:
        assert batch_length(batch) == lengths[0]
    else:
        with pytest.raises(pescador.PescadorError, match="Unequal field lengths"):
            batch_length(batch)


# --------------------------------------------------------------------------- get_rng


def test_get_rng_none_is_numpy_global_module():
    rng = get_rng(None)
    assert rng is np.random
    np.random.seed(11)
    first = rng.randint(1000, size=5)
    np.random.seed(11)
    assert np.array_equal(first, np.random.randint(1000, size=5))


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**32 - 1, True, False])
def test_get_rng_int_is_seeded_random_state(seed):
    rng = get_rng(seed)
    assert type(rng) is np.random.RandomState
    expected = np.random.RandomState(int(seed)).randint(2**31, size=10)
    assert np.array_equal(rng.randint(2**31, size=10), expected)


def test_get_rng_int_gives_a_new_state_each_call():
    a, b = get_rng(3), get_rng(3)
    assert a is not b
    assert np.array_equal(a.rand(4), b.rand(4))


@pytest.mark.parametrize(
    "dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.uint64]
)
def test_get_rng_numpy_integer(dtype):
    rng = get_rng(dtype(42))
    assert type(rng) is np.random.RandomState
    assert np.array_equal(rng.rand(5), np.random.RandomState(42).rand(5))


@pytest.mark.parametrize("seed", [-1, 2**32, 2**64, np.int64(-5), np.uint64(2**32)])
def test_get_rng_int_out_of_range(seed):
    with pytest.raises(pescador.PescadorError, match=re.escape(f"random_state={seed!r}")) as info:
        get_rng(seed)
    assert "[0, 2**32)" in str(info.value)


def test_get_rng_random_state_is_same_object():
    rs = np.random.RandomState(5)
    assert get_rng(rs) is rs


def test_get_rng_generator_is_same_object():
    gen = np.random.default_rng(5)
    assert get_rng(gen) is gen


def test_get_rng_seed_sequence_makes_pcg64_generator():
    seq = np.random.SeedSequence(2024)
    rng = get_rng(seq)
    assert isinstance(rng, np.random.Generator)
    assert isinstance(rng.bit_generator, np.random.PCG64)
    expected = np.random.Generator(np.random.PCG64(np.random.SeedSequence(2024)))
    assert np.array_equal(rng.integers(2**40, size=8), expected.integers(2**40, size=8))


def test_get_rng_seed_sequence_is_a_recipe():
    seq = np.random.SeedSequence(9)
    first = get_rng(seq).random(6)
    second = get_rng(seq).random(6)
    assert np.array_equal(first, second)


@pytest.mark.parametrize(
    "value",
    [
        "foo",
        "3",
        b"3",
        1.5,
        3.0,
        np.float64(3.0),
        np.bool_(True),
        1 + 0j,
        [1, 2],
        (1,),
        {"seed": 1},
        object(),
        np.random,
        np.random.PCG64(1),
    ],
    ids=repr,
)
def test_get_rng_invalid(value):
    with pytest.raises(pescador.util.PescadorError, match=r"^Invalid random_state="):
        get_rng(value)


def test_get_rng_invalid_message_lists_accepted_types():
    with pytest.raises(pescador.PescadorError) as info:
        get_rng("foo")
    message = str(info.value)
    assert "'foo'" in message
    for accepted in ("None", "RandomState", "Generator", "SeedSequence"):
        assert accepted in message


# --------------------------------------------------------------------------- Deprecated


def test_deprecated_sentinel_repr():
    assert repr(Deprecated()) == "<DEPRECATED parameter>"
    assert str(Deprecated()) == "<DEPRECATED parameter>"


# --------------------------------------------------------------------------- rename_kw


def _api(new=None, old=Deprecated()):
    return rename_kw("old", old, "new", new, "2.0", "4.0")


def test_rename_kw_returns_new_value_silently():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _api(new=5) == 5
        assert _api() is None


@pytest.mark.parametrize("old", [3, None, 0, "x"])
def test_rename_kw_warns_and_returns_old_value(old):
    with pytest.warns(DeprecationWarning, match="renamed") as record:
        assert _api(new=5, old=old) is old
    assert len(record) == 1


def test_rename_kw_message():
    with pytest.warns(DeprecationWarning) as record:
        _api(old=1)
    message = str(record[0].message)
    assert message == (
        "_api() keyword argument 'old' has been renamed to 'new' in version 2.0."
        "\n\tThis alias will be removed in version 4.0."
    )


def test_rename_kw_warning_points_at_callers_caller():
    with pytest.warns(DeprecationWarning) as record:
        _api(old=1)
        line = inspect.currentframe().f_lineno - 1
    assert record[0].filename == __file__
    assert record[0].lineno == line


def test_rename_kw_at_module_level():
    namespace = {"rename_kw": rename_kw}
    with pytest.warns(DeprecationWarning, match="^Keyword argument 'a' has been renamed to 'b'"):
        exec("value = rename_kw('a', 1, 'b', 2, '1.0', '2.0')", namespace)
    assert namespace["value"] == 1


# --------------------------------------------------------------------------- deprecated


def assert_warning_points_at_caller(decorated):
    """The warning of ``decorated(0)`` names the line that called it."""
    with pytest.warns(DeprecationWarning) as record:
        decorated(0)
        line = inspect.currentframe().f_lineno - 1
    assert record[0].filename == __file__
    assert record[0].lineno == line


@deprecated("2.5", "4.0")
def _old_add(a, b=10):
    """Add two numbers."""
    return a + b


def test_deprecated_warns_and_returns_result():
    with pytest.warns(DeprecationWarning, match="deprecated|Deprecated"):
        assert _old_add(1, b=2) == 3


def test_deprecated_message():
    with pytest.warns(DeprecationWarning) as record:
        _old_add(1)
    assert str(record[0].message) == (
        f"{__name__}._old_add\n\tDeprecated as of version 2.5."
        "\n\tIt will be removed in version 4.0."
    )


def test_deprecated_warns_on_every_call():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(3):
            _old_add(0)
    assert [w.category for w in record] == [DeprecationWarning] * 3


def test_deprecated_warning_points_at_caller():
    assert_warning_points_at_caller(_old_add)


def test_deprecated_keeps_metadata():
    assert _old_add.__name__ == "_old_add"
    assert _old_add.__doc__ == "Add two numbers."
    assert _old_add.__module__ == __name__
    assert str(inspect.signature(_old_add)) == "(a, b=10)"
    assert callable(_old_add.__wrapped__)


def test_deprecated_wrong_arguments_raise_type_error():
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError):
        _old_add(1, 2, 3)


def test_deprecated_method():
    class Thing:
        @deprecated("1.0", "2.0")
        def size(self, k):
            return 2 * k

    with pytest.warns(DeprecationWarning, match=r"Thing\.size"):
        assert Thing().size(4) == 8


def test_deprecated_exception_propagates():
    @deprecated("1.0", "2.0")
    def fails():
        raise KeyError("boom")

    with pytest.warns(DeprecationWarning), pytest.raises(KeyError, match="boom"):
        fails()


@deprecated("1.0", "2.0")
def _old_gen(n):
    yield from range(n)
    return "done"


def test_deprecated_generator_function_stays_generator_function():
    assert inspect.isgeneratorfunction(_old_gen)
    gen = _old_gen(3)
    with pytest.warns(DeprecationWarning, match="Deprecated as of version 1.0"):
        assert next(gen) == 0
    assert list(gen) == [1, 2]


def test_deprecated_generator_keeps_return_value():
    gen = _old_gen(0)
    with pytest.warns(DeprecationWarning), pytest.raises(StopIteration) as info:
        next(gen)
    assert info.value.value == "done"


def test_deprecated_generator_function_is_streamable():
    stream = pescador.Streamer(_old_gen, 4)
    with pytest.warns(DeprecationWarning):
        assert list(stream) == [0, 1, 2, 3]


# --------------------------------------------------------------------------- moved


@moved("pescador.legacy.triple", "2.1", "4.0")
def _triple(x):
    """Three times x."""
    return 3 * x


def test_moved_warns_and_returns_result():
    with pytest.warns(DeprecationWarning, match="moved") as record:
        assert _triple(x=2) == 6
    assert len(record) == 1


def test_moved_message():
    with pytest.warns(DeprecationWarning) as record:
        _triple(1)
    assert str(record[0].message) == (
        "pescador.legacy.triple"
        f"\n\tThis function was moved to '{__name__}._triple' in version 2.1."
        "\n\tThis alias will be removed in version 4.0."
    )


def test_moved_warning_points_at_caller():
    assert_warning_points_at_caller(_triple)


def test_moved_keeps_metadata():
    assert _triple.__name__ == "_triple"
    assert _triple.__doc__ == "Three times x."
    assert str(inspect.signature(_triple)) == "(x)"


def test_moved_warns_on_every_call():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _triple(1)
        _triple(2)
    assert len(record) == 2
    assert all(issubclass(w.category, DeprecationWarning) for w in record)
