#!/usr/bin/env python3
"""The seed's entry point, kept for its users: same flags as `python -m slakit.sla`.

python scripts/performance_benchmark.py --validate-production --base-url URL
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slakit.sla.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="scripts/performance_benchmark.py"))
