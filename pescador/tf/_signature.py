"""The ``output_signature`` of a stream, from its first item (private; see :mod:`pescador.tf`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from ..exceptions import DataError

__all__ = ["infer_signature"]


def infer_signature(item: Any, path: str = "item") -> Any:
    """A ``tf.TensorSpec`` structure for items like ``item``.

    Dicts give dicts and tuples give tuples (lists too), down to the values: arrays of any
    numeric or boolean dtype keep their dtype, strings (``str``, ``bytes``, NumPy ``U`` and
    ``S`` arrays) become ``tf.string``, Python ``int``/``float``/``bool`` become ``int64``,
    ``float64``/``float32``... as NumPy converts them. The first dimension of every array is
    left free (``None``): the batch dimension, which may change from item to item (a last
    partial batch); the other dimensions are the first item's.
    """
    if isinstance(item, Mapping):
        return {key: infer_signature(value, f"{path}[{key!r}]") for key, value in item.items()}
    if isinstance(item, (tuple, list)) and not _is_namedtuple(item):
        return tuple(infer_signature(v, f"{path}[{i}]") for i, v in enumerate(item))
    value = np.asarray(item)
    if value.dtype.kind in "US":
        dtype = tf.string
    elif value.dtype.kind in "biufc":
        dtype = tf.as_dtype(value.dtype)
    else:
        raise DataError(
            f"{path} has dtype {value.dtype}, which has no TensorFlow dtype: convert it, or "
            "pass output_signature"
        )
    shape = (None, *value.shape[1:]) if value.ndim else ()
    return tf.TensorSpec(shape=shape, dtype=dtype)


def _is_namedtuple(item: Any) -> bool:
    return isinstance(item, tuple) and hasattr(item, "_fields")
