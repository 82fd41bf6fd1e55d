"""``python -m bridge`` is the ``vipgate`` command."""

import sys

from bridge.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
