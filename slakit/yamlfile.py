"""Reading YAML files the user edits: a syntax error is one line naming file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from slakit.errors import SlakitError


def parse(text: str, path: Path | str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None) or err
        raise SlakitError(f"{path}{where}: not valid YAML ({problem})") from None
