"""``python -m macie_pipeline.local``: the command line (see :mod:`macie_pipeline.local.cli`)."""

import sys

from . import INSTALL_HINT, missing_modules


def _main() -> int:
    missing = missing_modules()
    if missing:
        print(f"error: the local engine needs the [local] extra (missing: {', '.join(missing)}): {INSTALL_HINT}", file=sys.stderr)
        return 2
    from .cli import main

    return main()


if __name__ == "__main__":
    sys.exit(_main())
