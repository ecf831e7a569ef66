"""``python -m macie_pipeline.local``: the command line (see :mod:`macie_pipeline.local.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
