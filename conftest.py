"""pytest configuration shared by the tests and the doctests of the package.

The doctests of ``pescador/torch`` and ``pescador/ray`` need PyTorch and Ray (the ``torch`` and
``ray`` extras, which ``make test`` installs); without them they are not collected, and
``tests/test_torch*.py`` and ``tests/test_ray.py`` skip themselves.

Ray advertises the machine's own address and listens on every interface, even when told
127.0.0.1, unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is in the environment before ray is
imported: set here, before any test or doctest module imports it, so that every Ray process
the tests start (they inherit the environment) stays on 127.0.0.1.

Those of ``pescador/keras`` and ``pescador/tf`` are never collected here: Keras fixes its
backend when it is imported, and importing TensorFlow imports Keras, so they run in the worker
processes of ``tests/test_keras.py`` and ``tests/test_tf.py``, one per Keras backend
(``tests/framework_worker.py``).
"""

from __future__ import annotations

import importlib.util
import os

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

collect_ignore_glob = [
    f"pescador/{name}/*" for name in ("torch", "ray") if importlib.util.find_spec(name) is None
]
collect_ignore = ["pescador/keras", "pescador/tf"]
