"""The controller's wheelhouse: built once per input, reused, and a failed build is one line."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from slakit.errors import SlakitError
from slakit.wheelhouse import MANIFEST, build

PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "tinyapp"
version = "{version}"
"""


def make_project(root: Path, version: str = "1.0") -> Path:
    project = root / "tinyapp"
    (project / "tinyapp").mkdir(parents=True)
    (project / "pyproject.toml").write_text(PYPROJECT.format(version=version))
    (project / "tinyapp" / "__init__.py").write_text("ANSWER = 42\n")
    return project


def test_builds_once_then_reuses_and_rebuilds_on_change(tmp_path):
    project = make_project(tmp_path)
    first = build([project], tmp_path / "houses")
    assert first.created
    wheels = sorted(p.name for p in first.path.glob("*.whl"))
    assert wheels == ["tinyapp-1.0-py3-none-any.whl"]
    with zipfile.ZipFile(first.path / wheels[0]) as wheel:
        assert "tinyapp/__init__.py" in wheel.namelist()
    assert (first.path / MANIFEST).is_file() and first.archive.is_file()

    again = build([project], tmp_path / "houses")
    assert (again.created, again.path, again.release_id) == (False, first.path, first.release_id)

    (project / "tinyapp" / "__init__.py").write_text("ANSWER = 43\n")
    changed = build([project], tmp_path / "houses")
    assert changed.created and changed.release_id != first.release_id


def test_a_source_that_does_not_build_is_one_line(tmp_path):
    project = make_project(tmp_path)
    (project / "pyproject.toml").write_text(
        "[project]\nname = 'tinyapp'\nversion = 'not a version'\n"
    )
    with pytest.raises(SlakitError) as err:
        build([project], tmp_path / "houses")
    assert "\n" not in str(err.value) and str(err.value).startswith("wheelhouse:")


def test_a_missing_source_is_named(tmp_path):
    with pytest.raises(SlakitError, match=r"app source not found: .*nowhere"):
        build([tmp_path / "nowhere"], tmp_path / "houses")
