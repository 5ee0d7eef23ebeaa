"""Utilities kept for compatibility with pescador 3.0.

``batch_length`` measures a batch of data, ``get_rng`` turns a ``random_state`` argument into
a numpy random generator, and ``Deprecated``, ``rename_kw``, ``moved`` and ``deprecated`` help
to evolve an API without breaking its callers.

Examples
--------
>>> import numpy as np
>>> from pescador.util import batch_length, get_rng
>>> batch_length({"X": np.zeros((4, 3)), "Y": np.ones(4)})
4
>>> get_rng(0).randint(10, size=3)
array([5, 0, 3])
"""

from __future__ import annotations

import functools
import inspect
import types
import warnings
from collections.abc import Callable, Generator, Mapping, Sized
from typing import Any, ParamSpec, TypeVar, overload

import numpy as np

from .exceptions import PescadorError

__all__ = [
    "Deprecated",
    "PescadorError",
    "batch_length",
    "deprecated",
    "get_rng",
    "moved",
    "rename_kw",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: Integer seeds accepted by ``np.random.RandomState``: [0, 2**32).
_SEED_LIMIT = 2**32


def batch_length(batch: Mapping[Any, Sized]) -> int | None:
    """Return the common length of every field of a batch.

    Parameters
    ----------
    batch : Mapping
        A data object: a dictionary whose values all have a length (typically arrays sharing
        their first dimension).

    Returns
    -------
    int or None
        The length shared by all values, or ``None`` if ``batch`` is empty.

    Raises
    ------
    PescadorError
        If two values have different lengths.
    TypeError
        If a value has no length (e.g. a 0-d array or a scalar).

    Examples
    --------
    >>> import numpy as np
    >>> from pescador.util import batch_length
    >>> batch_length({"X": np.zeros((10, 2)), "Y": list(range(10))})
    10
    >>> batch_length({}) is None
    True
    >>> batch_length({"X": np.zeros(3), "Y": np.zeros(2)})
    Traceback (most recent call last):
    ...
    pescador.exceptions.PescadorError: Unequal field lengths: {'X': 3, 'Y': 2}
    """
    length: int | None = None
    for value in batch.values():
        n = len(value)
        if length is None:
            length = n
        elif n != length:
            lengths = {key: len(val) for key, val in batch.items()}
            raise PescadorError(f"Unequal field lengths: {lengths}")
    return length


@overload
def get_rng(random_state: None) -> types.ModuleType: ...
@overload
def get_rng(
    random_state: int | np.integer[Any] | np.random.RandomState,
) -> np.random.RandomState: ...
@overload
def get_rng(
    random_state: np.random.Generator | np.random.SeedSequence,
) -> np.random.Generator: ...
@overload
def get_rng(
    random_state: Any,
) -> types.ModuleType | np.random.RandomState | np.random.Generator: ...


def get_rng(
    random_state: Any,
) -> types.ModuleType | np.random.RandomState | np.random.Generator:
    """Turn a ``random_state`` argument into a random number generator.

    Parameters
    ----------
    random_state : None, int, numpy integer, RandomState, Generator or SeedSequence
        - ``None``: the ``np.random`` module itself, i.e. numpy's global random state.
        - An integer seed in ``[0, 2**32)`` (a Python ``int``, ``bool`` or numpy integer): a
          new ``np.random.RandomState(seed)``.
        - A ``np.random.RandomState`` or ``np.random.Generator``: that same object, not a
          copy (drawing from the result advances it).
        - A ``np.random.SeedSequence``: a new ``np.random.Generator(np.random.PCG64(seq))``.

    Returns
    -------
    module, np.random.RandomState or np.random.Generator
        ``np.random`` and ``RandomState`` share the legacy interface (``randint``, ``rand``,
        ...); a ``Generator`` has numpy's newer one (``integers``, ``random``, ...).

    Raises
    ------
    PescadorError
        If ``random_state`` is of any other type (floats and strings included), or is an
        integer outside ``[0, 2**32)``.

    Examples
    --------
    >>> import numpy as np
    >>> from pescador.util import get_rng
    >>> get_rng(None) is np.random
    True
    >>> rng = np.random.default_rng(7)
    >>> get_rng(rng) is rng
    True
    >>> get_rng(np.int64(3)).randint(100) == np.random.RandomState(3).randint(100)
    True
    >>> gen = get_rng(np.random.SeedSequence(5))  # a new Generator
    >>> bool(gen.integers(100) == np.random.default_rng(5).integers(100))
    True
    """
    if random_state is None:
        return np.random
    if isinstance(random_state, (np.random.RandomState, np.random.Generator)):
        return random_state
    if isinstance(random_state, np.random.SeedSequence):
        return np.random.Generator(np.random.PCG64(random_state))
    # ``bool`` is an ``int`` and is accepted as in pescador 3.0; ``np.bool_`` is not an integer.
    if isinstance(random_state, (int, np.integer)):
        seed = int(random_state)
        if not 0 <= seed < _SEED_LIMIT:
            raise PescadorError(
                f"Invalid random_state={random_state!r}: an integer seed must be in [0, 2**32)"
            )
        return np.random.RandomState(seed)
    raise PescadorError(
        f"Invalid random_state={random_state!r}: expected None, an integer seed in [0, 2**32), "
        "np.random.RandomState, np.random.Generator or np.random.SeedSequence"
    )


class Deprecated:
    """Placeholder default for a deprecated keyword argument.

    A function that renames a parameter keeps the old name with ``Deprecated()`` as its
    default, so :func:`rename_kw` can tell whether the caller passed it.

    Examples
    --------
    >>> from pescador.util import Deprecated
    >>> Deprecated()
    <DEPRECATED parameter>
    """

    def __repr__(self) -> str:
        return "<DEPRECATED parameter>"


def rename_kw(
    old_name: str,
    old_value: Any,
    new_name: str,
    new_value: Any,
    version_deprecated: str,
    version_removed: str,
) -> Any:
    """Handle a renamed keyword argument.

    Call it from the function whose parameter was renamed.

    Parameters
    ----------
    old_name : str
        The former name of the parameter.
    old_value : Any
        The value received under the former name; a :class:`Deprecated` instance means the
        caller did not pass it.
    new_name : str
        The current name of the parameter.
    new_value : Any
        The value received under the current name.
    version_deprecated : str
        The version in which the old name was deprecated.
    version_removed : str
        The version in which the old name will be removed.

    Returns
    -------
    Any
        ``new_value`` if ``old_value`` is a :class:`Deprecated` instance; otherwise
        ``old_value``, after a :class:`DeprecationWarning` (whose message says the argument
        was "renamed") attributed to the caller of the calling function.

    Examples
    --------
    >>> import warnings
    >>> from pescador.util import Deprecated, rename_kw
    >>> def scale(x, factor=1, fac=Deprecated()):
    ...     factor = rename_kw("fac", fac, "factor", factor, "3.0", "4.0")
    ...     return x * factor
    >>> scale(2, factor=3)
    6
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     scale(2, fac=5)
    10
    >>> print(caught[0].message)
    scale() keyword argument 'fac' has been renamed to 'factor' in version 3.0.
        This alias will be removed in version 4.0.
    """
    if isinstance(old_value, Deprecated):
        return new_value

    # The function that received the keyword: it is what the message names.
    frame = inspect.currentframe()
    caller = frame.f_back if frame is not None else None
    name = caller.f_code.co_name if caller is not None else "<module>"
    del frame, caller
    where = "Keyword argument" if name.startswith("<") else f"{name}() keyword argument"
    warnings.warn(
        f"{where} '{old_name}' has been renamed to '{new_name}' in version "
        f"{version_deprecated}.\n\tThis alias will be removed in version {version_removed}.",
        DeprecationWarning,
        stacklevel=3,
    )
    return old_value


def _warn_on_call(func: Callable[_P, _R], message: str) -> Callable[_P, _R]:
    """Wrap ``func`` so that each call emits ``DeprecationWarning(message)`` at the caller.

    A generator function stays a generator function (so ``Streamer`` still accepts it); its
    warning is then emitted when the generator starts, which is when its body runs.
    """
    if inspect.isgeneratorfunction(func):
        gen_func: Callable[..., Generator[Any, Any, Any]] = func

        @functools.wraps(func)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            warnings.warn(message, DeprecationWarning, stacklevel=2)
            return (yield from gen_func(*args, **kwargs))

        return gen_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return func(*args, **kwargs)

    return wrapper


def _warning_decorator(
    message: Callable[[str], str],
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """A decorator: each call of the decorated function emits a :class:`DeprecationWarning`
    at the caller (see :func:`_warn_on_call`), whose text is ``message(name)`` for the
    function's dotted ``name``."""

    def decorator(func: Callable[_P, _R]) -> Callable[_P, _R]:
        return _warn_on_call(func, message(_qualified_name(func)))

    return decorator


def moved(
    moved_from: str, version: str, version_removed: str
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorate an alias left behind at a function's old location.

    Parameters
    ----------
    moved_from : str
        The old, dotted location of the function (e.g. ``"pescador.old.func"``).
    version : str
        The version in which the function moved.
    version_removed : str
        The version in which the alias will be removed.

    Returns
    -------
    callable
        A decorator. The decorated function keeps its name, docstring and signature, and
        each call emits a :class:`DeprecationWarning` (whose message says the function was
        "moved", and where to) before returning the function's result.

    Examples
    --------
    >>> import warnings
    >>> from pescador.util import moved
    >>> @moved("pescador.old_module.double", "3.0", "4.0")
    ... def double(x):
    ...     "Twice x."
    ...     return 2 * x
    >>> double.__name__, double.__doc__
    ('double', 'Twice x.')
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     double(4)
    8
    >>> print(caught[0].message)  # doctest: +ELLIPSIS
    pescador.old_module.double
        This function was moved to '...double' in version 3.0.
        This alias will be removed in version 4.0.
    """

    return _warning_decorator(
        lambda name: (
            f"{moved_from}\n\tThis function was moved to '{name}' in version {version}."
            f"\n\tThis alias will be removed in version {version_removed}."
        )
    )


def deprecated(
    version: str, version_removed: str
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorate a deprecated function.

    Parameters
    ----------
    version : str
        The version in which the function was deprecated.
    version_removed : str
        The version in which the function will be removed.

    Returns
    -------
    callable
        A decorator like :func:`moved`'s, whose warning says the function is "deprecated".

    Examples
    --------
    >>> import warnings
    >>> from pescador.util import deprecated
    >>> @deprecated("3.0", "4.0")
    ... def old_sum(a, b):
    ...     return a + b
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     old_sum(1, 2)
    3
    >>> print(caught[0].message)  # doctest: +ELLIPSIS
    pescador...old_sum
        Deprecated as of version 3.0.
        It will be removed in version 4.0.
    """

    return _warning_decorator(
        lambda name: (
            f"{name}\n\tDeprecated as of version {version}."
            f"\n\tIt will be removed in version {version_removed}."
        )
    )


def _qualified_name(func: Callable[..., Any]) -> str:
    module = getattr(func, "__module__", None)
    name = str(getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or func)
    return f"{module}.{name}" if module else name
