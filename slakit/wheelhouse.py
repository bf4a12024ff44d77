"""The controller builds a wheelhouse: an application and every dependency as wheels.

App hosts cannot reach PyPI, so the `app` role copies a wheelhouse built here and installs
from it with `pip install --no-index --find-links`. A wheelhouse lives in
`<root>/<digest>/`, where the digest is a content hash over its wheels and the requirement
list: the same inputs give the same directory, so the `app` role derives its release id from
it and a re-run with nothing changed makes no new release.

Two ways to build, chosen by comparing the target with this controller:

- native (same Python major.minor, same machine, target glibc >= ours): `pip wheel` of the
  app and all its dependencies; a dependency that only ships an sdist is built here.
- cross (anything else, e.g. a Python 3.12 or aarch64 target from this 3.11 x86_64
  controller): the app (pure Python) is built with `pip wheel --no-deps`, then the
  dependencies are fetched with `pip download --only-binary=:all: --python-version X.Y
  --implementation cp --abi cpXY --platform manylinux_2_N_<machine> ...`. Only dependencies
  that publish binary wheels for the target can be used; pip names the one that does not.
  A dependency with C code and no wheel needs a build on a machine like the target.

Wheels are built with SOURCE_DATE_EPOCH fixed and from a clean copy of the source tree, so
the app's wheel is byte-for-byte the same when its source is.

With a lock (`--lock`, e.g. service/requirements.lock: `name==version --hash=sha256:...`
lines with PEP 508 markers, made by the uv command in its header), nothing is resolved: the
lock's entries whose markers hold on the target are fetched with `--no-deps --require-hashes`
(pip refuses a file whose hash the lock does not list), and every requirement of the app and
of `--extra` must be satisfied by the lock, or the build fails naming what is missing. The
same source and lock give the same wheel set, hence the same release id, on any controller.

Once built, a wheelhouse is also recorded under `<root>/inputs/<key>`, the key hashing the
source files, the lock, the extra requirements and the target: the same inputs reuse it
without running pip (a no-change deploy costs no build). Without a lock this also pins the
versions resolved at that first build; `--refresh` resolves again.

The `--keep` most recently used wheelhouses are kept, and besides them the releases that
`pin()` marked (`invoke deploy` pins a release its report APPROVED, for a promotion).

`--release ID` builds nothing: it checks the kept wheelhouse `<root>/<ID>` (every wheel's
sha256 against its manifest) and prints it, for a promotion (slakit/release.py).

CLI (used by the `app` role from a `delegate_to: localhost` task):
    python -m slakit.wheelhouse --source service --root build/wheelhouse \
        --python-version 3.11 --machine x86_64 --glibc 2.36 [--extra PKG ...] \
        [--lock service/requirements.lock] [--json]
    python -m slakit.wheelhouse --root build/wheelhouse --release 0123456789abcdef --json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from slakit.errors import SlakitError

MANIFEST = "wheelhouse.json"
DEFAULT_ROOT = Path(__file__).resolve().parents[1] / "build" / "wheelhouse"  # app role default
ARCHIVE = "wheelhouse.tar"  # the wheels + manifest in one file, for a single copy to a host
SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01, the earliest date a zip entry can carry
_IGNORED = ("build", "dist", "*.egg-info", "__pycache__", ".git", ".venv", ".pytest_cache")
_MIN_GLIBC_MINOR = 17  # manylinux2014
RELEASE_ID = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class Target:
    """The Python and platform the wheels must run on (the app hosts')."""

    python_version: str  # "3.11" or "3.11.2": the full version decides environment markers
    machine: str = "x86_64"
    glibc: str = "2.36"  # `getconf GNU_LIBC_VERSION` on the target, without "glibc "

    @property
    def minor_version(self) -> str:
        return ".".join(self.python_version.split(".")[:2])

    @property
    def abi(self) -> str:
        return "cp" + self.minor_version.replace(".", "")

    @property
    def platforms(self) -> list[str]:
        """manylinux tags the target accepts, newest first."""
        major, minor = (int(p) for p in self.glibc.split(".")[:2])
        if major != 2:
            raise SlakitError(f"wheelhouse: unsupported glibc version {self.glibc!r}")
        tags = [f"manylinux_2_{m}_{self.machine}" for m in range(minor, _MIN_GLIBC_MINOR - 1, -1)]
        return [*tags, f"manylinux2014_{self.machine}"]

    def marker_environment(self) -> dict[str, str]:
        """PEP 508 environment-marker values on the target (Linux, CPython)."""
        full = self.python_version
        if full.count(".") < 2:
            full += ".0"
        return {
            "implementation_name": "cpython",
            "implementation_version": full,
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_system": "Linux",
            "python_full_version": full,
            "python_version": self.minor_version,
            "sys_platform": "linux",
        }


def controller_target() -> Target:
    libc, version = platform.libc_ver()
    return Target(
        python_version=platform.python_version(),
        machine=platform.machine(),
        glibc=version if libc == "glibc" and version else "0.0",
    )


def is_native(target: Target, controller: Target | None = None) -> bool:
    """True when wheels built on this controller run on the target as they are."""
    here = controller or controller_target()

    def ver(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split(".")[:2])

    return (
        target.minor_version == here.minor_version
        and target.machine == here.machine
        and ver(target.glibc) >= ver(here.glibc)
    )


@dataclass(frozen=True)
class Wheelhouse:
    path: Path
    digest: str  # sha256 hex over the wheels and the requirements
    requirements: list[str]  # what the host installs: the app's own `name==version` + extras
    mode: str  # "native" or "cross"
    created: bool = field(default=False, compare=False)  # False: an identical one existed
    sha256: dict[str, str] = field(default_factory=dict, compare=False)  # wheel: hex digest
    locked: bool = field(default=False, compare=False)  # dependencies from a hashed lock

    @property
    def release_id(self) -> str:
        return self.digest[:16]

    @property
    def archive(self) -> Path:
        return self.path / ARCHIVE

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["release_id"] = self.release_id
        data["archive"] = str(self.archive)
        data["sha256"] = self.sha256 or wheel_hashes(self.path)
        data["wheels"] = sorted(data["sha256"])
        return data


def wheel_hashes(directory: Path) -> dict[str, str]:
    """{wheel file name: sha256 hex} of the wheels in a directory, read from disk."""
    return {
        w.name: hashlib.sha256(w.read_bytes()).hexdigest() for w in sorted(directory.glob("*.whl"))
    }


@dataclass(frozen=True)
class Locked:
    """One entry of a hashed lock: `name==version ; marker --hash=sha256:... ...`."""

    requirement: Requirement
    hashes: tuple[str, ...]

    def line(self) -> str:
        """The entry without its marker (already evaluated for the target)."""
        req = Requirement(str(self.requirement))
        req.marker = None
        return " ".join([str(req), *(f"--hash={h}" for h in self.hashes)])


def read_lock(path: Path) -> list[Locked]:
    """The entries of a requirements lock with hashes (pip-compile/uv format); every entry
    must be pinned with `==` and carry at least one sha256 hash."""
    if not path.is_file():
        raise SlakitError(f"wheelhouse: lock file not found: {path}")
    text = re.sub(r"\\\n", " ", path.read_text())  # join continuation lines
    entries: list[Locked] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        head, *hashes = re.split(r"\s+--hash[=\s]\s*", " " + line)
        head = head.strip()
        if head.startswith("-") or not head:
            raise SlakitError(f"wheelhouse: {path}: line {number}: only pinned entries allowed")
        try:
            req = Requirement(head)
        except ValueError as err:
            raise SlakitError(f"wheelhouse: {path}: line {number}: {err}") from None
        pins = [s for s in req.specifier if s.operator == "=="]
        bad = [h for h in hashes if not re.fullmatch(r"sha256:[0-9a-f]{64}", h)]
        if len(pins) != 1 or not hashes or bad:
            raise SlakitError(
                f"wheelhouse: {path}: {req.name} is not pinned (==) with sha256 hashes: "
                "run the command in its header"
            )
        entries.append(Locked(req, tuple(hashes)))
    return entries


def lock_for_target(entries: Sequence[Locked], target: Target) -> list[Locked]:
    """The entries the target needs: their markers evaluated with the target's values (not
    the controller's, which pip would use)."""
    env = target.marker_environment()
    return [
        e for e in entries if e.requirement.marker is None or e.requirement.marker.evaluate(env)
    ]


def _pip(args: Sequence[str], what: str) -> None:
    env = {
        **os.environ,
        "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    run = subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, env=env, check=False
    )
    if run.returncode != 0:
        raise SlakitError(f"wheelhouse: {what} failed: {_pip_cause(run.stdout + run.stderr)}")


def _pip_cause(output: str) -> str:
    """The one line of pip's output that says why it failed."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    # A failing build backend: pip quotes its output between "[N lines of output]" and
    # "[end of output]"; the last line there is the backend's own error.
    block: list[str] = []
    for i, ln in enumerate(lines):
        if re.search(r"\[\d+ lines? of output\]$", ln):
            end = next((j for j in range(i + 1, len(lines)) if lines[j] == "[end of output]"), i)
            block = lines[i + 1 : end] or block
    if block:
        return block[-1][:300]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    if errors:
        return errors[-1][:300]
    rest = [ln for ln in lines if not ln.startswith("note:")]
    return (rest[-1] if rest else "no output")[:300]


def _wheel_name(wheel: Path) -> str:
    """`name==version` from a wheel's file name (PEP 427)."""
    name, version = wheel.name.split("-")[:2]
    return f"{name.replace('_', '-').lower()}=={version}"


def _build_app_wheels(sources: Sequence[Path], out: Path, scratch: Path) -> list[Path]:
    wheels: list[Path] = []
    for source in sources:
        if source.is_file() and source.suffix == ".whl":
            shutil.copy2(source, out / source.name)
            wheels.append(out / source.name)
            continue
        if not (source / "pyproject.toml").exists() and not (source / "setup.py").exists():
            raise SlakitError(f"wheelhouse: {source} is neither a wheel nor a Python project")
        # Build from a clean copy: a stale build/ or *.egg-info in the tree never leaks in.
        copy = scratch / f"src-{len(wheels)}"
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns(*_IGNORED))
        before = set(out.glob("*.whl"))
        _pip(["wheel", "--no-deps", "--wheel-dir", str(out), str(copy)], f"building {source}")
        wheels += sorted(set(out.glob("*.whl")) - before)
    return wheels


def _fetch(
    out: Path, target: Target, native: bool, inputs: Sequence[str], locked: Path | None = None
) -> None:
    """Put `inputs` and their dependencies into `out` as wheels (see the module doc); with
    `locked` (a requirements file with hashes), exactly its entries, hash-checked."""
    if locked is not None:
        inputs = ["--no-deps", "--require-hashes", "-r", str(locked)]
    if native:
        _pip(
            ["wheel", "--wheel-dir", str(out), "--find-links", str(out), *inputs],
            "collecting dependencies (pip wheel)",
        )
        return
    plat = [a for p in target.platforms for a in ("--platform", p)]
    _pip(
        [
            "download",
            "--dest",
            str(out),
            "--find-links",
            str(out),
            "--only-binary=:all:",
            "--python-version",
            target.minor_version,
            "--implementation",
            "cp",
            "--abi",
            target.abi,
            *plat,
            *inputs,
        ],
        f"fetching binary wheels for Python {target.python_version} {target.machine}",
    )


def _requires(wheel: Path) -> list[Requirement]:
    """Requires-Dist of a wheel, from its METADATA."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        head = zf.read(meta).decode().split("\n\n", 1)[0]
    return [
        Requirement(line.split(":", 1)[1].strip())
        for line in head.splitlines()
        if line.startswith("Requires-Dist:")
    ]


def _missing_for_target(wheel_dir: Path, target: Target, wanted: Sequence[str]) -> list[str]:
    """Requirements (with their extras) that the target needs and the wheelhouse lacks.

    Walks Requires-Dist from `wanted` with the target's marker values, e.g.
    `async-timeout; python_full_version < "3.11.3"` is skipped by pip on a 3.11.7 controller
    but needed on a 3.11.2 host.
    """
    wheels = {canonicalize_name(w.name.split("-")[0]): w for w in wheel_dir.glob("*.whl")}
    env = target.marker_environment()
    pending = [Requirement(r) for r in wanted]
    seen: set[tuple[str, frozenset[str]]] = set()
    missing: set[str] = set()
    while pending:
        req = pending.pop()
        name, extras = canonicalize_name(req.name), frozenset(req.extras)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        wheel = wheels.get(name)
        if wheel is None:
            missing.add(
                f"{req.name}{'[' + ','.join(sorted(extras)) + ']' if extras else ''}{req.specifier}"
            )
            continue
        version = Version(wheel.name.split("-")[1])
        if not req.specifier.contains(version, prereleases=True):
            raise SlakitError(f"wheelhouse: {wheel.name} does not satisfy {req} on the target")
        for dep in _requires(wheel):
            if dep.marker is None or any(
                dep.marker.evaluate({**env, "extra": e}) for e in ("", *extras)
            ):
                dep.marker = None
                pending.append(dep)
    return sorted(missing)


def _digest(wheel_dir: Path, requirements: Sequence[str]) -> str:
    h = hashlib.sha256()
    for wheel in sorted(wheel_dir.glob("*.whl")):
        h.update(wheel.name.encode() + b"\0" + hashlib.sha256(wheel.read_bytes()).digest())
    h.update("\n".join(requirements).encode())
    return h.hexdigest()


SKIPPED_PARTS = {"build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}


def _inputs_key(
    paths: Sequence[Path], extras: Sequence[str], target: Target, lock: Path | None = None
) -> str:
    """A hash of what goes into a build: every source file, the lock, the extras, the target."""
    h = hashlib.sha256(json.dumps([list(extras), asdict(target)], sort_keys=True).encode())
    if lock is not None:
        h.update(b"lock\0" + lock.read_bytes())
    for source in paths:
        files = (
            [source]
            if source.is_file()
            else sorted(
                f
                for f in source.rglob("*")
                if f.is_file()
                and not SKIPPED_PARTS.intersection(f.relative_to(source).parts)
                and not any(part.endswith(".egg-info") for part in f.relative_to(source).parts)
            )
        )
        for f in files:
            h.update(str(f.relative_to(source.parent)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:32]


def _recorded(root: Path, key: str) -> Wheelhouse | None:
    record = root / "inputs" / key
    if not record.is_file():
        return None
    final = root / record.read_text().strip()
    manifest = final / MANIFEST
    if not manifest.is_file():
        return None
    data = json.loads(manifest.read_text())
    os.utime(final)
    return Wheelhouse(
        final,
        data["digest"],
        data["requirements"],
        data["mode"],
        False,
        data.get("sha256") or wheel_hashes(final),
        bool(data.get("locked")),
    )


def kept(root: str | Path, release_id: str) -> Wheelhouse:
    """The wheelhouse of release `release_id` kept under `root`, checked: its wheels must
    still hash to its digest (the release id), and its archive (what hosts receive) must
    hold exactly those wheels, else it is written again from them. Builds nothing."""
    if not RELEASE_ID.match(release_id):
        raise SlakitError(f"wheelhouse: {release_id!r} is not a release id (16 hex digits)")
    path = Path(root).resolve() / release_id
    manifest = path / MANIFEST
    if not manifest.is_file():
        raise SlakitError(
            f"wheelhouse: release {release_id} is not kept on this controller: {path}"
        )
    data = json.loads(manifest.read_text())
    on_disk = wheel_hashes(path)
    if _digest(path, data["requirements"]) != data["digest"] or not data["digest"].startswith(
        release_id
    ):
        listed = data.get("sha256") or {}
        changed = sorted({n for n, _ in set(on_disk.items()) ^ set(listed.items())})
        raise SlakitError(
            f"wheelhouse: release {release_id} in {path} was altered: "
            f"{', '.join(changed) or 'its wheels no longer hash to its id'}"
        )
    house = Wheelhouse(
        path,
        data["digest"],
        data["requirements"],
        data["mode"],
        False,
        on_disk,
        bool(data.get("locked")),
    )
    if not house.archive.exists() or archive_hashes(house.archive) != on_disk:
        _write_archive(house)
    os.utime(path)
    return house


def archive_hashes(archive: Path) -> dict[str, str]:
    """{wheel file name: sha256 hex} of the wheels inside a wheelhouse archive."""
    out: dict[str, str] = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(".whl"):
                data = tar.extractfile(member)
                out[member.name] = hashlib.sha256(data.read() if data else b"").hexdigest()
    return out


def build(
    sources: Sequence[str | Path],
    root: str | Path,
    extra_requirements: Sequence[str] = (),
    target: Target | None = None,
    keep: int = 5,
    refresh: bool = False,
    lock: str | Path | None = None,
) -> Wheelhouse:
    """Build (or find) the wheelhouse for `sources` (project dirs or .whl files) + extras.

    Returns the wheelhouse at `<root>/<digest[:16]>`; `created` is False when an identical
    one was already there. Keeps the `keep` most recently used wheelhouses under `root`.
    With `lock`, dependencies come from that hashed lock only (module doc).
    Raises SlakitError with a one-line cause when a wheel cannot be built or fetched.
    """
    target = target or controller_target()
    paths = [Path(s).resolve() for s in sources]
    missing = [str(p) for p in paths if not p.exists()]
    if not paths or missing:
        raise SlakitError(f"wheelhouse: app source not found: {', '.join(missing) or '(none)'}")
    lock_path = Path(lock).resolve() if lock else None
    entries = lock_for_target(read_lock(lock_path), target) if lock_path else None
    root_path = Path(root).resolve()
    root_path.mkdir(parents=True, exist_ok=True)
    key = _inputs_key(paths, extra_requirements, target, lock_path)
    known = None if refresh else _recorded(root_path, key)
    if known and known.archive.exists():
        return known
    native = is_native(target)
    with tempfile.TemporaryDirectory(dir=root_path, prefix=".build-") as tmp:
        scratch = Path(tmp)
        out = scratch / "wheels"
        out.mkdir()
        app_wheels = _build_app_wheels(paths, out, scratch)
        requirements = [_wheel_name(w) for w in app_wheels] + list(extra_requirements)
        if entries is not None and lock_path is not None:
            _fetch_locked(out, target, native, entries, lock_path, requirements, scratch)
        else:
            _fetch_resolved(out, target, native, app_wheels, requirements, extra_requirements)
        digest = _digest(out, requirements)
        final = root_path / digest[:16]
        house = Wheelhouse(
            final,
            digest,
            requirements,
            "native" if native else "cross",
            sha256=wheel_hashes(out),
            locked=entries is not None,
        )
        created = not (final / MANIFEST).exists()
        if created:
            shutil.rmtree(final, ignore_errors=True)
            manifest = {**house.as_json(), "target": asdict(target)}
            manifest.pop("created", None)
            manifest["lock"] = str(lock_path) if lock_path else None
            (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            out.rename(final)
        else:
            os.utime(final)  # most recently used: pruned last
    result = Wheelhouse(
        final, digest, requirements, house.mode, created, house.sha256, house.locked
    )
    if not result.archive.exists():
        _write_archive(result)
    (root_path / "inputs").mkdir(exist_ok=True)
    (root_path / "inputs" / key).write_text(final.name + "\n")
    _prune(root_path, keep)
    return result


def _fetch_resolved(
    out: Path,
    target: Target,
    native: bool,
    app_wheels: Sequence[Path],
    requirements: Sequence[str],
    extra_requirements: Sequence[str],
) -> None:
    """No lock: pip resolves the dependencies of the app wheels and the extras."""
    _fetch(out, target, native, [str(w) for w in app_wheels] + list(extra_requirements))
    # pip evaluates environment markers with the controller's interpreter, even with
    # --python-version: add what the target needs and pip left out.
    for _ in range(5):
        missing = _missing_for_target(out, target, requirements)
        if not missing:
            return
        _fetch(out, target, native, missing)
    raise SlakitError(f"wheelhouse: cannot complete for the target: {', '.join(missing)}")


def _fetch_locked(
    out: Path,
    target: Target,
    native: bool,
    entries: Sequence[Locked],
    lock: Path,
    requirements: Sequence[str],
    scratch: Path,
) -> None:
    """The lock's entries for the target, hash-checked; then the lock must cover everything
    the app and the extras require on the target (no resolution: what is missing is named)."""
    if entries:
        target_lock = scratch / "requirements.target.txt"
        target_lock.write_text("".join(e.line() + "\n" for e in entries))
        _fetch(out, target, native, (), locked=target_lock)
    try:
        missing = _missing_for_target(out, target, requirements)
    except SlakitError as err:
        raise SlakitError(f"{err} (lock {lock.name}: run the command in its header)") from None
    if missing:
        raise SlakitError(
            f"wheelhouse: the lock {lock} lacks {', '.join(missing)} for the target: "
            "run the command in its header"
        )


def _write_archive(house: Wheelhouse) -> None:
    partial = house.archive.with_suffix(".partial")
    with tarfile.open(partial, "w") as tar:
        for member in sorted([*house.path.glob("*.whl"), house.path / MANIFEST]):
            tar.add(member, arcname=member.name)
    partial.rename(house.archive)


PINNED = "pinned"  # <root>/pinned/<id>: releases an APPROVED report vouches for
PINS_KEPT = 5


def pin(root: str | Path, release_id: str, keep: int = PINS_KEPT) -> None:
    """Keep release `release_id` under `root` for a later promotion: pruning spares the
    `keep` most recently pinned releases, whatever `--keep` says."""
    pins = Path(root).resolve() / PINNED
    pins.mkdir(parents=True, exist_ok=True)
    (pins / release_id).write_text(release_id + "\n")
    os.utime(pins / release_id)
    for old in sorted(pins.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)[keep:]:
        old.unlink(missing_ok=True)


def _pinned(root: Path) -> set[str]:
    pins = root / PINNED
    return {p.name for p in pins.iterdir()} if pins.is_dir() else set()


def _prune(root: Path, keep: int) -> None:
    pinned = _pinned(root)
    houses = sorted(
        (
            p
            for p in root.iterdir()
            if p.is_dir() and (p / MANIFEST).exists() and p.name not in pinned
        ),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in houses[max(keep, 1) :]:
        shutil.rmtree(old, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m slakit.wheelhouse", description=__doc__.split("\n")[0]
    )
    ap.add_argument(
        "--source",
        action="append",
        default=[],
        help="app project directory or .whl file (repeatable)",
    )
    ap.add_argument("--root", default="build/wheelhouse", help="where wheelhouses are kept")
    ap.add_argument("--extra", action="append", default=[], help="extra requirement (repeatable)")
    here = controller_target()
    ap.add_argument("--python-version", default=here.python_version, help="target Python X.Y")
    ap.add_argument("--machine", default=here.machine, help="target machine, e.g. x86_64")
    ap.add_argument("--glibc", default=here.glibc, help="target glibc version, e.g. 2.36")
    ap.add_argument("--keep", type=int, default=5, help="wheelhouses to keep under --root")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--refresh", action="store_true", help="resolve dependencies again")
    ap.add_argument("--lock", default="", help="requirements lock with hashes (deps from it)")
    ap.add_argument("--release", default="", help="build nothing: check and print this kept one")
    args = ap.parse_args(argv)
    if not args.source and not args.release:
        ap.error("--source or --release is required")
    try:
        if args.release:
            house = kept(args.root, args.release)
        else:
            house = build(
                args.source,
                args.root,
                args.extra,
                Target(args.python_version, args.machine, args.glibc),
                args.keep,
                args.refresh,
                args.lock or None,
            )
    except SlakitError as err:
        print(err, file=sys.stderr)
        return err.exit_code
    out = house.as_json()
    out["target"] = json.loads((house.path / MANIFEST).read_text()).get("target", {})
    print(json.dumps(out, sort_keys=True) if args.json else house.path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
