"""``python -m scwlm`` runs the ``scwlm`` command (see :mod:`scwlm.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
