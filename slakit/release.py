"""Releases of the app on the app hosts: roll back, deploy a given source, read what runs,
and check a promotion (a release that an earlier environment's readiness report APPROVED).

The work is Ansible's (playbooks/app.yml, playbooks/rollback.yml, role `app`); this module
only runs those playbooks for an environment and turns a failure into one line.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slakit import ansible, envs, stack, wheelhouse
from slakit.errors import SlakitError
from slakit.gates import Gate, gate


def _run(
    env_name: str,
    playbook: str,
    what: str,
    *,
    limit: str = "",
    extra_vars: Mapping[str, Any] | None = None,
    quiet: bool = False,
) -> ansible.PlayResult:
    env = envs.resolve(env_name)
    envs.vault_password_file(env)  # a clear line when a vault file has no password
    extra: tuple[str, ...] = ()
    tmp: str | None = None
    if extra_vars:
        # A file, never argv: values may be long or sensitive.
        fd, tmp = tempfile.mkstemp(prefix="slakit-vars-", suffix=".json")
        with os.fdopen(fd, "w") as out:
            json.dump(dict(extra_vars), out)
        extra = ("-e", f"@{tmp}")
    try:
        result = ansible.playbook(env, playbook, limit=limit, extra_args=extra, quiet=quiet)
    finally:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
    if result.returncode != 0:
        raise SlakitError(f"{what} on {env.name} failed: {result.first_failure()}", exit_code=1)
    return result


def rollback(env_name: str = "lab", limit: str = "", quiet: bool = False) -> ansible.PlayResult:
    """Switch `current` back to the previously activated release on every app host (or the
    hosts of `limit`), one at a time behind the load balancer; the release left is deleted.

    Raises SlakitError (exit code 1) with the first failure, e.g. no previous release.
    """
    return _run(env_name, "rollback.yml", "rollback", limit=limit, quiet=quiet)


def discard(env: envs.Environment, release_id: str, limit: str = "") -> str:
    """Delete a rejected release on every app host (of `limit`) that does not run it
    (playbooks/discard.yml); returns "" or why it was not deleted."""
    done = ansible.playbook(
        env,
        "discard.yml",
        limit=limit,
        extra_args=ansible.extra_vars_args({"slakit_discard_release": release_id}),
        quiet=True,
    )
    return (
        "" if done.returncode == 0 else f"release {release_id} not deleted: {done.first_failure()}"
    )


def deploy_app(
    env_name: str = "lab",
    sources: Sequence[str | Path] = (),
    extra_vars: Mapping[str, Any] | None = None,
    quiet: bool = False,
) -> ansible.PlayResult:
    """Run playbooks/app.yml; `sources` (project dirs or wheels) replace app_sources."""
    extra = dict(extra_vars or {})
    if sources:
        extra["app_sources"] = [str(Path(s).resolve()) for s in sources]
    return _run(env_name, "app.yml", "app deploy", extra_vars=extra, quiet=quiet)


# --- What a deploy ran, and promotion of a release that an earlier environment approved --------


def record(env_name: str, root: Path | None = None) -> dict[str, Any]:
    """The release the app hosts run, as the app role published it (`ansible_local.app.
    release`), and the sha256 of every wheel of it, re-hashed from the controller's kept
    wheelhouse `<root>/<id>`: what readiness.json records under "release".

    `id` is None when the hosts run different releases or none could be read (`error` says
    why); `wheels` is {} when the wheelhouse of that id is not on this controller."""
    out: dict[str, Any] = {"id": None, "hosts": {}, "wheels": {}}
    try:
        facts = stack.read_facts(envs.resolve(env_name))
    except SlakitError as err:
        return {**out, "error": str(err)}
    hosts = {
        h: str(f["app"]["release"])
        for h, f in sorted(facts.items())
        if isinstance(f.get("app"), dict) and f["app"].get("release")
    }
    out["hosts"] = hosts
    ids = set(hosts.values())
    if len(ids) != 1:
        return {**out, "error": "mixed releases" if ids else "no app host published a release"}
    out["id"] = ids.pop()
    try:
        house = wheelhouse.kept(root or wheelhouse.DEFAULT_ROOT, out["id"])
    except SlakitError as err:
        return {**out, "error": str(err)}
    return {**out, "wheels": dict(house.sha256), "wheelhouse": str(house.path)}


def keep_approved(ran: Mapping[str, Any], root: Path | None = None) -> None:
    """An APPROVED deploy's release stays on this controller for a promotion (a pin in the
    wheelhouse root: pruning spares it)."""
    if ran.get("id") and ran.get("wheels"):
        wheelhouse.pin(root or wheelhouse.DEFAULT_ROOT, str(ran["id"]))


@dataclass(frozen=True)
class Promotion:
    """`invoke deploy --release ID --from ENV`: the release to deploy as it is, and the
    earlier environment's APPROVED report that vouches for it."""

    release_id: str
    source_env: str
    report: str  # the APPROVED readiness.json of ENV that records ID ('' when none)
    wheels: dict[str, str]  # the wheel hashes that report records
    forced: str = ""  # why it would have been refused ('' = not forced)
    root: Path = wheelhouse.DEFAULT_ROOT  # where the release is kept: <root>/<id>

    def extra_vars(self) -> dict[str, str]:
        """The app role deploys the kept wheelhouse of the release instead of building one."""
        return {"app_release": self.release_id, "app_wheelhouse_root": str(self.root)}

    def gate(self, ran: Mapping[str, Any]) -> Gate:
        """The report's Promotion line: did the hosts end up on exactly this release? `ran`
        is `record()` after the deploy."""
        same_id = ran.get("id") == self.release_id
        same_wheels = bool(self.wheels) and ran.get("wheels") == self.wheels
        source = f"{self.report} (APPROVED)" if self.report else f"reports/{self.source_env}/"
        if self.forced:
            figure = f"release {self.release_id} FORCED from {self.source_env}: {self.forced}"
            return gate("Promotion", same_id, figure, detail=f"hosts run {ran.get('hosts')}")
        figure = (
            f"release {self.release_id} from {self.source_env}: "
            f"{len(self.wheels)} wheel hashes equal to {source}"
            if same_id and same_wheels
            else f"release {self.release_id} from {self.source_env} not what the hosts run"
        )
        detail = f"hosts run {ran.get('hosts')}; {ran.get('error', 'wheel hashes differ')}"
        return gate("Promotion", same_id and same_wheels, figure, detail=detail)

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.source_env,
            "report": self.report,
            "forced": bool(self.forced),
            "why_forced": self.forced,
        }


def approved_reports(reports_dir: Path, release_id: str) -> tuple[list[Path], list[Path]]:
    """(APPROVED, other) readiness.json files in `reports_dir` that record `release_id` as
    the release the app hosts ran, newest first."""
    approved: list[Path] = []
    other: list[Path] = []
    for path in sorted(reports_dir.glob("*/readiness.json"), reverse=True):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        rel = data.get("release") if isinstance(data, dict) else None
        if not isinstance(rel, dict) or rel.get("id") != release_id:
            continue
        (approved if data.get("approved") is True else other).append(path)
    return approved, other


def check_promotion(
    release_id: str, source_env: str, force: bool = False, root: Path | None = None
) -> Promotion:
    """Checks, touching no host, that `release_id` may be promoted from `source_env`: an
    APPROVED readiness report of that environment records it, and the release kept on this
    controller (`<root>/<id>`) has exactly the wheel hashes that report records. Raises
    SlakitError (exit 2, one line) when not, unless `force`; a release that is not kept on
    this controller, or whose wheels no longer hash to its id, is refused even then."""
    if not wheelhouse.RELEASE_ID.match(release_id):
        raise SlakitError(f"--release {release_id!r}: a release id is 16 hex digits")
    source = envs.resolve(source_env)
    approved, other = approved_reports(source.reports_dir, release_id)
    problem = ""
    report: Path | None = approved[0] if approved else None
    wheels: dict[str, str] = {}
    if report is None:
        newest = f" (newest report for it: {other[0]}, NOT APPROVED)" if other else ""
        problem = (
            f"no APPROVED readiness report for release {release_id} in "
            f"{source.reports_dir}/{newest}"
        )
    else:
        wheels = dict(json.loads(report.read_text())["release"].get("wheels") or {})
    if problem and not force:
        raise SlakitError(f"promotion refused: {problem} (--force deploys it anyway)")
    root = Path(root or wheelhouse.DEFAULT_ROOT).resolve()
    house = wheelhouse.kept(root, release_id)  # not kept, or altered: exit 2 even forced
    if report is not None and house.sha256 != wheels:
        differ = sorted({n for n, _ in set(house.sha256.items()) ^ set(wheels.items())})
        problem = (
            f"release {release_id} on this controller is not byte-for-byte the one {report} "
            f"approved: {len(differ)} wheel(s) differ ({', '.join(differ[:3]) or 'none recorded'})"
        )
    if problem and not force:
        raise SlakitError(f"promotion refused: {problem} (--force deploys it anyway)")
    return Promotion(release_id, source.name, str(report or ""), wheels, problem, root)
