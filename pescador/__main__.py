"""``python -m pescador``: the ``pescador`` command (see :mod:`pescador.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
