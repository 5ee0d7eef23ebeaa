"""pytest configuration shared by the tests and the doctests of the package.

The doctests of ``pescador/torch`` need PyTorch (the ``torch`` extra, which ``make test``
installs); without it they are not collected, and ``tests/test_torch*.py`` skip themselves.
"""

from __future__ import annotations

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("torch") else ["pescador/torch/*"]
