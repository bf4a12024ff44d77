"""The canary of `invoke deploy`: the first app host switches alone, is measured against a host
still on the old release, and only if it holds up do the other hosts switch.

1. Converge with `slakit_rollout_hosts=<canary>` (playbooks/app.yml): everything is built and
   configured everywhere, but only the canary switches release.
2. If it switched from an earlier release: playbooks/canary.yml gives it
   `loadbalancer_canary_weight` of the traffic; the SLA checker measures story `canary` of
   sla/spec.yml through the first load balancer pinned to a host on the old release
   (`X-Slakit-Server`, allowed from `loadbalancer_pin_sources` only), then pinned to the canary
   with the first run as `--baseline`: the checker's regression test (slakit/sla/baseline.py)
   decides. The weights go back in any case.
3. Passed (or nothing to check): playbooks/app.yml for every app host (the canary has nothing
   left to do). Failed: the other hosts never switch and delete the rejected release; the
   caller rolls the canary back (slakit/deploy.py, the drain path).

A first deploy (an app host has published no release yet) is one plain converge: the load
balancer's wait for every server UP would fail on hosts that have never started.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from rich.console import Console

from slakit import ansible, stack
from slakit.envs import Environment
from slakit.errors import SlakitError
from slakit.gates import Gate, gate
from slakit.sla.model import Result
from slakit.sla.spec import Spec, load_spec
from slakit.status import Status

STORY = "canary"  # the story of sla/spec.yml the check measures (on demand)
PIN_HEADER = "X-Slakit-Server"  # roles/loadbalancer/templates/haproxy.cfg.j2
PIN_ENV = "SLAKIT_PIN_SERVER"  # the story's header takes the server name from this variable
PIN_PROBES = 3  # pinned requests per server before measuring: each must come back from it
SWITCHED = "slakit_release_switched"  # published by the app role (docs/contract.md)
PREVIOUS = "slakit_release_previous"
LB_FACTS = "slakit_canary_lb"  # published by playbooks/canary.yml (share)
TARGET = "no significant regression against the old release (sla/README.md#baseline)"


@dataclass
class Rollout:
    """The converge runs of one rollout, and what the canary stage adds to the report."""

    plays: list[ansible.PlayResult]
    gates: list[Gate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stopped: bool = False  # the canary failed its check: no other host switched

    @property
    def converge(self) -> ansible.PlayResult:
        """The runs as one: stats summed per host, failures and published values together."""
        hosts: dict[str, dict[str, int]] = {}
        changed: dict[str, list[str]] = {}
        published: dict[str, dict[str, Any]] = {}
        for play in self.plays:
            for host, stats in play.hosts.items():
                into = hosts.setdefault(host, {})
                for key, value in stats.items():
                    into[key] = into.get(key, 0) + value
            for host, tasks in play.changed_tasks.items():
                changed.setdefault(host, []).extend(tasks)
            for host, data in play.published.items():
                published.setdefault(host, {}).update(data)
        code = next((p.returncode for p in self.plays if p.returncode), 0)
        failures = [f for p in self.plays for f in p.failures]
        return ansible.PlayResult(code, hosts, changed, failures, published)


def app_hosts(env: Environment, limit: str = "") -> list[str]:
    """The app hosts in the order a play over `app` takes them (within `limit`)."""
    cmd = [str(ansible.BIN / "ansible"), "-i", str(env.inventory), "app", "--list-hosts"]
    run = subprocess.run(
        cmd + (["--limit", limit] if limit else []),
        capture_output=True,
        text=True,
        env=ansible.command_env(),
        check=False,
    )
    if run.returncode != 0:
        raise SlakitError(
            f"{env.inventory}: cannot list the app hosts: {run.stderr.strip()[-200:]}"
        )
    return [ln.strip() for ln in run.stdout.splitlines()[1:] if ln.strip()]


def not_serving(env: Environment, hosts: list[str]) -> list[str]:
    """The app hosts that have published no running release yet (docs/contract.md)."""
    try:
        facts = stack.read_facts(env)
    except SlakitError:  # unreadable: as if none served; the converge will say why
        return hosts
    return [h for h in hosts if not (facts.get(h, {}).get("app") or {}).get("release")]


def rollout(
    env: Environment,
    outdir: Path,
    console: Console,
    *,
    limit: str = "",
    tags: str = "",
    skip_tags: str = "",
    extra_vars: Mapping[str, Any] | None = None,
    playbook: str = "site.yml",
) -> Rollout:
    """Converge with the canary first (module docstring); never raises on a failed gate."""
    extra = dict(extra_vars or {})

    def converge(**more: Any) -> ansible.PlayResult:
        return ansible.playbook(
            env,
            playbook,
            limit=limit,
            tags=tags,
            skip_tags=skip_tags,
            extra_args=ansible.extra_vars_args({**extra, **more}),
        )

    everyone = app_hosts(env)
    in_limit = app_hosts(env, limit) if limit else everyone
    waiting = not_serving(env, everyone)
    if waiting:  # a first deploy: the load balancer's wait would fail on hosts not yet started
        note = f"Canary: not used, {', '.join(waiting)} ran no release before (a first deploy)"
        return Rollout([converge()], notes=[note] if in_limit else [])
    if not in_limit:  # no app host in this run: nothing switches, nothing to gate
        return Rollout([converge()])
    canary = in_limit[0]
    console.print(f"canary: {canary} switches first")
    first = converge(slakit_rollout_hosts=canary)
    done = Rollout([first])
    if first.returncode != 0:
        return done
    release = first.published_by_host(SWITCHED).get(canary)
    previous = first.published_by_host(PREVIOUS).get(canary)
    others = [h for h in everyone if h != canary]
    if release is None:
        pass  # the canary's release did not change (configuration at most): nothing to compare
    elif previous == "":
        done.notes.append(
            f"Canary: {canary} got the first release of this environment: not checked"
        )
    elif not others:
        done.notes.append(f"Canary: {canary} is the only app host: nothing to compare it with")
    else:
        console.rule(f"[bold]Canary: {canary} against {others[0]}")
        check = check_canary(env, canary, others[0], outdir, console)
        done.gates += [check.gate] if check.gate else []
        done.notes += check.notes
        if check.gate and not check.gate.passed:
            done.stopped = True
            return done  # deploy rolls the canary back and deletes the release everywhere
    console.rule("[bold]Converge: the other app hosts")
    done.plays.append(
        ansible.playbook(
            env, "app.yml", limit=limit, tags=tags, extra_args=ansible.extra_vars_args(extra)
        )
    )
    return done


@dataclass
class Check:
    gate: Gate | None  # None: not measured, and that is no failure (pinning off)
    notes: list[str] = field(default_factory=list)


def check_canary(
    env: Environment, canary: str, baseline: str, outdir: Path, console: Console
) -> Check:
    """Weights the canary, measures both hosts pinned through the LB, puts the weights back."""
    name = f"Canary: {canary} against {baseline} (old release)"
    began = time.monotonic()
    share = _weights(env, canary, "share")
    try:
        if share.returncode != 0:
            return Check(gate(name, False, "not measured", TARGET, share.first_failure()))
        lb = next(iter(share.published_by_host(LB_FACTS).values()), None)
        if not lb:
            return Check(gate(name, False, "not measured", TARGET, "no load balancer answered"))
        if not lb.get("pinning"):
            return Check(
                None,
                [
                    f"Canary: {canary} switched first but was not measured: pinning is off "
                    "(loadbalancer_pin_sources is empty)"
                ],
            )
        servers = {h: str(s) for h, s in dict(lb.get("servers") or {}).items()}
        deployed = stack.load(env)
        url = next(iter(deployed.lb_urls().values()))
        ca_file = deployed.lb_ca_file()
        for host in (canary, baseline):
            problem = pin_problem(url, servers.get(host, host), ca_file)
            if problem:
                return Check(gate(name, False, "not measured", TARGET, problem))
        spec = load_spec().select([STORY])
        results = {}
        for role, host in (("baseline", baseline), ("canary", canary)):
            results[role] = measure(
                spec,
                url,
                ca_file,
                servers.get(host, host),
                outdir / "canary" / role,
                baseline=outdir / "canary" / "baseline" / "report.json"
                if role == "canary"
                else None,
            )
        verdict = judge(name, results["canary"], results["baseline"])
        note = (
            f"Canary: {canary} had weight {lb.get('canary_weight')} (the others "
            f"{lb.get('server_weight')}) during its check, {time.monotonic() - began:.0f} s; "
            f"reports in {outdir / 'canary'}"
        )
        return Check(verdict, [note])
    except SlakitError as err:
        return Check(gate(name, False, "not measured", TARGET, str(err)))
    finally:
        back = _weights(env, canary, "restore")
        if back.returncode != 0:
            console.print(f"[red]canary: weights not restored: {back.first_failure()}")


def _weights(env: Environment, canary: str, action: str) -> ansible.PlayResult:
    return ansible.playbook(
        env,
        "canary.yml",
        extra_args=ansible.extra_vars_args(
            {"slakit_canary": canary, "slakit_canary_action": action}
        ),
        quiet=True,
    )


def pin_problem(url: str, server: str, ca_file: str | None) -> str:
    """'' when pinned requests to `server` come back from it, else why not (one line)."""
    for _ in range(PIN_PROBES):
        try:
            reply = requests.get(
                f"{url}/api/v1/health",
                headers={PIN_HEADER: server},
                verify=ca_file or True,
                timeout=5,
                allow_redirects=False,
            )
        except requests.RequestException as err:
            return f"pinned request to {server} failed: {type(err).__name__}"
        answered = reply.headers.get(PIN_HEADER)
        if answered != server:
            return (
                f"a request pinned to {server} came back "
                + (f"from {answered}" if answered else "unpinned")
                + f" (HTTP {reply.status_code}): is this controller's address in "
                "loadbalancer_pin_sources, and the server name right?"
            )
        if reply.status_code != 200:
            return f"a request pinned to {server} got HTTP {reply.status_code}"
    return ""


def measure(
    spec: Spec, url: str, ca_file: str | None, server: str, outdir: Path, baseline: Path | None
) -> Result:
    """The canary story through the load balancer, every request pinned to `server`."""
    from slakit.sla import RunOptions, run_checks, write_reports

    result = run_checks(
        spec,
        url,
        options=RunOptions(
            env={**os.environ, PIN_ENV: server},
            ca_file=ca_file,
            baseline=baseline,
        ),
    )
    write_reports(result, outdir)
    return result


def _figures(result: Result) -> tuple[str, str, int, int]:
    story = result.stories[0] if result.stories else None
    errors = sum(e.error_count for s in result.stories for e in s.endpoints)

    def ms(value: float | None) -> str:
        return f"{value:.1f}" if value is not None else "-"

    if story is None:
        return "-", "-", errors, 0
    return ms(story.p50_ms), ms(story.p95_ms), errors, story.samples


def judge(name: str, canary: Result, baseline: Result) -> Gate:
    """The canary's gate: both measurements valid, something compared, and no regression."""
    c50, c95, c_err, c_n = _figures(canary)
    b50, b95, b_err, b_n = _figures(baseline)
    regressed = [r for r in canary.regressions if r.status == Status.FAIL]
    figure = (
        f"p50 {c50} vs {b50} ms, p95 {c95} vs {b95} ms, errors {c_err} vs {b_err} "
        f"({c_n} vs {b_n} requests); {len(regressed)}/{len(canary.regressions)} comparisons "
        "regressed"
    )
    if Status.INVALID in (canary.status, baseline.status):
        which = "canary" if canary.status == Status.INVALID else "old release"
        why = f"the {which}'s measurement is invalid (the checker could not keep its schedule)"
        return gate(name, False, figure, TARGET, why)
    if not canary.regressions:
        return gate(name, False, figure, TARGET, "nothing compared: no endpoint measured on both")
    detail = "; ".join(f"{r.endpoint} {r.message}" for r in regressed[:2])
    if len(regressed) > 2:
        detail += f" (+{len(regressed) - 2} more)"
    return gate(name, not regressed, figure, TARGET, f"slower than the old release: {detail}")
