"""Import "package.module:attribute" and check that it is callable; exit with the cause if not.

Run by the app role (tasks/release.yml) with the release's venv Python, as the app user.
Usage: python import_check.py package.module:attribute
"""

from __future__ import annotations

import importlib
import sys


def check(target: str) -> str:
    """'' when `target` imports and is callable, else the cause in one line."""
    module, _, attribute = target.partition(":")
    try:
        app = getattr(importlib.import_module(module), attribute)
    except BaseException as err:  # the release's own code may raise anything at import
        return f"{type(err).__name__}: {err}"
    return "" if callable(app) else f"{target} is not callable"


if __name__ == "__main__":
    sys.exit(check(sys.argv[1]) or None)
