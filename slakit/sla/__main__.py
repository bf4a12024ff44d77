"""`python -m slakit.sla`: see slakit/sla/cli.py and sla/README.md."""

import sys

from slakit.sla.cli import main

if __name__ == "__main__":
    sys.exit(main())
