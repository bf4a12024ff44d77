"""Load hosts: the SLA checker on several machines of the inventory (`check.sla --from GROUP`).

Two halves:

- `checker_wheelhouse`: the checker (slakit/sla and the three modules it imports) as a wheel,
  `slakit-checker`, with its few dependencies and pip, built on the controller by
  `slakit.wheelhouse` for the hosts' Python (hosts without an index install from it). The
  `loadgen` role calls it as `python -m slakit.loadgen --json --python-version ...`.
- `run_distributed`: `playbooks/loadgen.yml` installs the checker on every host of the group,
  picks a start instant a few seconds ahead, runs `python -m slakit.sla share` on each as an
  unprivileged user and fetches the shares; `distributed.merge_shares` makes the one result.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slakit import ansible, wheelhouse
from slakit.errors import SlakitError

if TYPE_CHECKING:
    from slakit.envs import Environment
    from slakit.sla.engine import RunOptions
    from slakit.sla.model import Result
    from slakit.sla.spec import Spec
    from slakit.stack import Stack

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = ROOT / "build" / "loadgen"
PLAYBOOK = "loadgen.yml"
DEFAULT_GROUP = "loadgen"
LEAD_S = 5.0  # the start instant is this far ahead of the controller's clock
CHECKER_FILES = ("slakit/__init__.py", "slakit/errors.py", "slakit/status.py", "slakit/sla")
# what slakit/sla imports (requirements.txt's bounds); pip: installs the rest on the host
CHECKER_REQUIREMENTS = (
    "aiohttp>=3.9,<4",
    "uvloop>=0.19,<1",
    "hdrhistogram>=0.10,<0.11",
    "PyYAML>=6,<7",
    "jsonschema>=4,<5",
    "rich>=13,<16",
)
PYPROJECT = """\
[build-system]
requires = ["setuptools>=77", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "slakit-checker"
version = "0.1.0+{digest}"
description = "slakit's SLA checker alone, for load hosts"
requires-python = ">=3.11"
dependencies = [{requirements}]

[tool.setuptools.packages.find]
include = ["slakit*"]
"""


def checker_source(root: Path) -> Path:
    """`<root>/src/slakit-checker`: the checker's modules and a pyproject naming its
    dependencies; its version carries a digest of the modules, so a change reinstalls."""
    project = root / "src" / "slakit-checker"
    files = []
    for name in CHECKER_FILES:
        path = ROOT / name
        files += sorted(p for p in path.rglob("*.py")) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for f in files:
        digest.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes())
    shutil.rmtree(project, ignore_errors=True)
    for f in files:
        dest = project / f.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dest)
    requirements = ", ".join(json.dumps(r) for r in CHECKER_REQUIREMENTS)
    (project / "pyproject.toml").write_text(
        PYPROJECT.format(digest=digest.hexdigest()[:12], requirements=requirements)
    )
    return project


def checker_wheelhouse(root: Path, target: wheelhouse.Target) -> wheelhouse.Wheelhouse:
    """The checker and its dependencies as wheels for `target`, plus pip's own wheel (a
    host's venv is made without pip: Debian's python3 lacks ensurepip)."""
    return wheelhouse.build([checker_source(root)], root, ["pip"], target, keep=2)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m slakit.loadgen",
        description="Build the SLA checker's wheelhouse for the load hosts (the loadgen role).",
    )
    here = wheelhouse.controller_target()
    ap.add_argument("--root", default=str(DEFAULT_ROOT), help="where it is kept")
    ap.add_argument("--python-version", default=here.python_version, help="hosts' Python X.Y.Z")
    ap.add_argument("--machine", default=here.machine, help="hosts' machine, e.g. x86_64")
    ap.add_argument("--glibc", default=here.glibc, help="hosts' glibc version, e.g. 2.36")
    ap.add_argument("--json", action="store_true", help="print the wheelhouse as JSON")
    args = ap.parse_args(argv)
    target = wheelhouse.Target(args.python_version, args.machine, args.glibc)
    try:
        house = checker_wheelhouse(Path(args.root).resolve(), target)
    except SlakitError as err:
        print(err, file=sys.stderr)
        return err.exit_code
    out = house.as_json()
    out["pip_wheel"] = next(w for w in out["wheels"] if str(w).startswith("pip-"))  # type: ignore[attr-defined]
    print(json.dumps(out, sort_keys=True) if args.json else house.path)
    return 0


def run_distributed(
    env: Environment,
    deployed: Stack,
    spec: Spec,
    group: str,
    outdir: Path,
    options: RunOptions,
    lead_s: float = LEAD_S,
) -> Result:
    """The spec's stories from every host of `group` at once; one merged, judged result.
    The hosts' shares land in `outdir/hosts/<host>.json`."""
    from slakit.sla.distributed import load_share, merge_shares, planned_seconds

    hosts = deployed.hosts(group)
    if not hosts:
        raise SlakitError(f"no host in the inventory's {group} group (--from {group})")
    base_url = next(iter(deployed.lb_urls().values()))
    ca_file = deployed.lb_ca_file()
    results = (outdir / "hosts").resolve()
    shutil.rmtree(results, ignore_errors=True)
    results.mkdir(parents=True)
    run = {
        "id": time.strftime("%Y%m%dT%H%M%S"),
        "spec": str(Path(spec.source).resolve()),
        "stories": [s.id for s in spec.stories],
        "base_url": base_url,
        "cacert": str(Path(ca_file).resolve()) if ca_file else "",
        "lead_s": lead_s,
        "timeout_s": round(planned_seconds(spec) + lead_s + 120),
        "results_dir": str(results),
    }
    began = time.monotonic()
    played = ansible.playbook(
        env,
        PLAYBOOK,
        extra_args=ansible.extra_vars_args({"loadgen_group": group, "loadgen_run": run}),
    )
    if played.returncode != 0:
        raise SlakitError(f"load hosts: {played.first_failure()}", exit_code=1)
    shares = {h: load_share(results / f"{h}.json") for h in hosts}
    result = merge_shares(spec, shares, options, {h: _offset(results, h) for h in hosts})
    result.duration_s = round(time.monotonic() - began, 3)
    return result


def _offset(results: Path, host: str) -> list[float]:
    """[low, high] ms of the host's clock minus the controller's: its reading lies between
    the controller's readings before and after the probe task."""
    path = results / f"{host}.clock.json"
    if not path.is_file():
        return []
    data: dict[str, Any] = json.loads(path.read_text())
    reading, before, after = (float(data[k]) for k in ("host", "before", "after"))
    return [round((reading - after) * 1000, 1), round((reading - before) * 1000, 1)]


if __name__ == "__main__":
    raise SystemExit(main())
