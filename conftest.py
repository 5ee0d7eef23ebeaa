"""pytest configuration shared by the tests and the doctests of the package.

The doctests of ``pescador/torch`` need PyTorch (the ``torch`` extra, which ``make test``
installs); without it they are not collected, and ``tests/test_torch*.py`` skip themselves.
Those of ``pescador/keras`` and ``pescador/tf`` are never collected here: Keras fixes its
backend when it is imported, and importing TensorFlow imports Keras, so they run in the worker
processes of ``tests/test_keras.py`` and ``tests/test_tf.py``, one per Keras backend
(``tests/framework_worker.py``).
"""

from __future__ import annotations

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("torch") else ["pescador/torch/*"]
collect_ignore = ["pescador/keras", "pescador/tf"]
