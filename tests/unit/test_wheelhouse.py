"""The controller's wheelhouse: built once per input, reused, and a failed build is one line;
with a hashed lock, exactly the locked wheels (a tampered hash is refused) and a stable id."""

from __future__ import annotations

import base64
import hashlib
import json
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from slakit.errors import SlakitError
from slakit.wheelhouse import (
    MANIFEST,
    PINS_KEPT,
    Target,
    archive_hashes,
    build,
    kept,
    lock_for_target,
    pin,
    read_lock,
)

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


# --- a hashed lock: exactly its entries, hash-checked; the release id stable -------------------

DEP = "slakittestdep"  # a name no index serves: only the find-links folder of the test has it


def make_wheel(directory: Path, name: str = DEP, version: str = "1.0", requires: str = "") -> Path:
    """A minimal pure-Python wheel, byte-for-byte the same on every call (no build backend:
    pip's build isolation costs seconds per build)."""
    dist = f"{name}-{version}.dist-info"
    requires_dist = f"Requires-Dist: {requires}\n" if requires else ""
    files = {
        f"{name}/__init__.py": b"X = 1\n",
        f"{dist}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{requires_dist}"
        ).encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = "".join(
        f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b'=').decode()}"
        f",{len(b)}\n"
        for n, b in files.items()
    )
    files[f"{dist}/RECORD"] = (record + f"{dist}/RECORD,,\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for n, b in files.items():
            zf.writestr(zipfile.ZipInfo(n, date_time=(1980, 1, 1, 0, 0, 0)), b)
    return wheel


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def dep_links(tmp_path, monkeypatch) -> Path:
    """The dependency's wheel in a find-links folder that pip (run by build()) searches."""
    wheel = make_wheel(tmp_path / "links")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheel.parent))
    return wheel


def app_needing_dep(root: Path) -> Path:
    """The app as a built wheel (a source build() accepts) that requires the dependency."""
    return make_wheel(root / "app", "tinyapp", "1.0", requires=f"{DEP}>=1")


def write_lock(path: Path, *lines: str) -> Path:
    path.write_text("# made by the test\n" + "".join(f"{ln}\n" for ln in lines))
    return path


def test_a_locked_build_installs_the_lock_hash_checked_and_keeps_its_release_id(
    tmp_path, dep_links
):
    project = app_needing_dep(tmp_path)
    lock = write_lock(
        tmp_path / "requirements.lock",
        f"{DEP}==1.0 \\",
        f"    --hash=sha256:{sha256(dep_links)}",
        "    # via tinyapp",
    )
    first = build([project], tmp_path / "houses", lock=lock)
    assert first.created and first.locked
    assert sorted(first.sha256) == [dep_links.name, "tinyapp-1.0-py3-none-any.whl"]
    assert first.sha256[dep_links.name] == sha256(dep_links)
    assert json.loads((first.path / MANIFEST).read_text())["sha256"] == first.sha256
    # resolved again from scratch (no reuse of the recorded build): the same bytes, the same id
    again = build([project], tmp_path / "houses", lock=lock, refresh=True)
    assert (again.created, again.release_id, again.sha256) == (
        False,
        first.release_id,
        first.sha256,
    )
    assert kept(tmp_path / "houses", first.release_id).sha256 == first.sha256
    print(f"\nlocked release {first.release_id}: {len(first.sha256)} wheels, id stable on rebuild")


def test_a_tampered_hash_in_the_lock_is_refused(tmp_path, dep_links):
    project = app_needing_dep(tmp_path)
    good = sha256(dep_links)
    tampered = ("0" if good[0] != "0" else "1") + good[1:]
    lock = write_lock(tmp_path / "requirements.lock", f"{DEP}==1.0 --hash=sha256:{tampered}")
    with pytest.raises(SlakitError) as err:
        build([project], tmp_path / "houses", lock=lock)
    message = str(err.value)
    print(f"\nrefused: {message}")
    assert "\n" not in message and message.startswith("wheelhouse:")
    assert "HASH" in message.upper()
    assert not [p for p in (tmp_path / "houses").iterdir() if (p / MANIFEST).exists()]


def test_the_lock_must_cover_every_requirement_of_the_app(tmp_path, dep_links):
    project = app_needing_dep(tmp_path)
    lock = write_lock(tmp_path / "requirements.lock")  # nothing locked
    with pytest.raises(SlakitError, match=rf"lacks {DEP}>=1 for the target"):
        build([project], tmp_path / "houses", lock=lock)


@pytest.mark.parametrize(
    "line",
    [f"{DEP}>=1.0 --hash=sha256:{'a' * 64}", f"{DEP}==1.0", f"{DEP}==1.0 --hash=md5:abc", "-e ."],
    ids=["not pinned", "no hash", "not sha256", "an option"],
)
def test_a_lock_entry_without_a_pin_and_sha256_is_refused(tmp_path, line):
    with pytest.raises(SlakitError, match=r"pinned"):
        read_lock(write_lock(tmp_path / "requirements.lock", line))


def test_markers_of_the_lock_are_evaluated_for_the_target_not_the_controller(tmp_path):
    lock = write_lock(
        tmp_path / "requirements.lock",
        f"async-timeout==5.0.1 ; python_full_version < '3.11.3' --hash=sha256:{'a' * 64}",
        f"uvloop==0.23.0 ; sys_platform != 'win32' --hash=sha256:{'b' * 64}",
        f"colorama==0.4.6 ; sys_platform == 'win32' --hash=sha256:{'c' * 64}",
    )
    entries = read_lock(lock)

    def names(version: str) -> list[str]:
        return [e.requirement.name for e in lock_for_target(entries, Target(version))]

    assert names("3.11.2") == ["async-timeout", "uvloop"]
    assert names("3.11.7") == ["uvloop"]
    assert lock_for_target(entries, Target("3.11.2"))[0].line() == (
        f"async-timeout==5.0.1 --hash=sha256:{'a' * 64}"
    )


def test_the_service_lock_pins_every_dependency_of_the_service_with_hashes():
    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "service/pyproject.toml").read_text())["project"]
    entries = {e.requirement.name: e for e in read_lock(root / "service/requirements.lock")}
    for dep in map(Requirement, project["dependencies"]):
        entry = entries.get(dep.name)
        assert entry is not None, f"{dep.name} not in service/requirements.lock: re-lock"
        [pin] = entry.requirement.specifier
        assert dep.specifier.contains(pin.version), f"{pin} does not satisfy {dep}: re-lock"
    # the lab's Debian 12 hosts run Python 3.11.2: redis needs async-timeout there
    assert "async-timeout" in [
        e.requirement.name for e in lock_for_target(list(entries.values()), Target("3.11.2"))
    ]


def test_a_kept_release_whose_wheel_changed_is_refused_and_a_bad_archive_rewritten(
    tmp_path, dep_links
):
    house = build([app_needing_dep(tmp_path), dep_links], tmp_path / "houses")
    with tarfile.open(house.archive, "w") as tar:  # an archive that lost its wheels
        tar.add(house.path / MANIFEST, arcname=MANIFEST)
    again = kept(tmp_path / "houses", house.release_id)
    assert archive_hashes(again.archive) == house.sha256
    wheel = next(house.path.glob("*.whl"))
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    with pytest.raises(SlakitError, match=rf"release {house.release_id} .* was altered"):
        kept(tmp_path / "houses", house.release_id)
    with pytest.raises(SlakitError, match=r"not kept on this controller"):
        kept(tmp_path / "houses", "0123456789abcdef")


def test_a_pinned_release_survives_pruning(tmp_path):
    root = tmp_path / "houses"

    def release(version: str):
        return build([make_wheel(tmp_path / version, "tinyapp", version)], root, keep=1)

    pinned = release("1.0")
    pin(root, pinned.release_id)
    unpinned, newest = release("2.0"), release("3.0")
    assert [h.path.exists() for h in (pinned, unpinned, newest)] == [True, False, True]
    assert kept(root, pinned.release_id).sha256 == pinned.sha256
    for i in range(PINS_KEPT):  # newer pins push it out: pruned by the next build
        pin(root, f"{i:016x}")
    release("4.0")
    assert not pinned.path.exists()
