"""The persist tier's failover drill (`invoke drill.failover`): stop the Redis primary under a
stream of durable writes and prove that no acknowledged write is lost.

From the controller, against a deployed environment whose `redis` group has two or more hosts
(the persist instance replicated, Sentinel watching it, the service finding the primary through
Sentinel with REDIS_PERSIST_MIN_REPLICAS of 1 or more):

1. the primary is read from the service's comprehensive health through the first load balancer
   (`tiers.l2.primary`), mapped to its inventory host by `ansible_host`, and confirmed by Redis
   itself: `ROLE` of the persist instance on every host of the group (Ansible, as the admin
   user the redis role published) must name that host, and only it, master. The health can lag
   a failover (each worker caches its replication figures), and stopping a replica would be a
   drill that proves nothing; the drill waits up to SETTLED_WITHIN_S for both to agree;
2. open-loop durable writes go through that load balancer (POST /api/v1/drill/ledger, one run
   id per drill, unique ids, RATE per second, bounded in time and count); each request's send
   time, status and error code are kept;
3. `redis@persist` is stopped on the primary's host (Ansible ad hoc); the drill waits until the
   health names another primary (Sentinel promoted the replica), then starts the instance again:
   Sentinel turns it into a replica of the new primary. With min replicas 1 and two Redis hosts,
   writes are refused `not_replicated` until it has rejoined: that is part of the measured time
   until writes are acknowledged again;
4. once a write sent after the stop is acknowledged and EXTRA_ACKS more have been, the load
   stops and the ledger is read back: every acknowledged id must be in it;
5. the new primary must report the old one as an online replica.

Every wait is bounded; a bound that passes is a failed drill (exit 1), not a hang.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from slakit import ansible, credentials, load, stack
from slakit.envs import Environment
from slakit.errors import SlakitError
from slakit.sla.control import fetch_token
from slakit.sla.spec import load_spec

GROUP = "redis"
INSTANCE = "persist"  # the redis role's instance the service's durable writes go to
UNIT = f"redis@{INSTANCE}"
LEDGER = "/api/v1/drill/ledger"
HEALTH = "/api/v1/health/comprehensive"
AUTH_SCHEME = "operator"  # sla/spec.yml's scheme for operator endpoints

RATE = 50  # durable writes per second through the load balancer
MAX_RATE = 200
LEDGER_MAX_IDS = 20_000  # the service's default SLAKIT_DRILL_LEDGER_MAX_IDS: one run holds that
MAX_REQUESTS = 19_000  # the load's bound in count, below what one run's ledger holds
REQUEST_TIMEOUT_S = 10.0  # per request (a durable write waits up to the WAIT timeout)
POLL_S = 0.5  # health polls while waiting
SETTLED_WITHIN_S = 60.0  # the health and Redis's own ROLE agree on the primary
WARMUP_ACKS = 50  # acknowledged before the stop
WARMUP_WITHIN_S = 60.0
PROMOTED_WITHIN_S = 120.0  # stop -> the health names another primary
RESUMED_WITHIN_S = 180.0  # restart of the old primary -> a write sent after the stop acknowledged
EXTRA_ACKS = 50  # acknowledged after the first one after the stop, before the load stops
EXTRA_WITHIN_S = 60.0
REJOINED_WITHIN_S = 120.0  # the new primary reports the old one as an online replica
ANSIBLE_TIMEOUT_S = 120.0
# the load's bound in time: every wait above, back to back, and a margin
MAX_SECONDS = WARMUP_WITHIN_S + PROMOTED_WITHIN_S + RESUMED_WITHIN_S + EXTRA_WITHIN_S + 60


# --- what the drill needs from the environment ------------------------------------------------


@dataclass(frozen=True)
class Target:
    env: str
    lb: str  # the first load balancer's host
    base_url: str
    ca_file: str | None
    redis_hosts: dict[str, str]  # {host: ansible_host} of the redis group

    def host_of(self, address: str) -> str | None:
        """The redis host whose ansible_host is the address of an "addr:port" (or bare addr)."""
        addr = address.rsplit(":", 1)[0].strip("[]") if ":" in address else address
        return next((h for h, a in self.redis_hosts.items() if a == addr), None)


def redis_hosts(inventory: dict[str, Any], env_name: str) -> dict[str, str]:
    """{host: ansible_host} of the redis group; fewer than two hosts is bad input (exit 2)."""
    hosts = list((inventory.get(GROUP) or {}).get("hosts") or [])
    if len(hosts) < 2:
        has = f"{len(hosts)}: {', '.join(hosts)}" if hosts else "none"
        raise SlakitError(
            f"env {env_name}: the failover drill needs at least two hosts in group {GROUP} "
            f"(a primary and a replica of {UNIT}); it has {has}"
        )
    hostvars = (inventory.get("_meta") or {}).get("hostvars") or {}
    return {h: str((hostvars.get(h) or {}).get("ansible_host") or h) for h in hosts}


def target(env: Environment) -> Target:
    """Checks the inventory first (no host contacted), then reads what the roles published."""
    inventory = ansible.inventory(env)
    hosts = redis_hosts(inventory, env.name)
    lbs = list((inventory.get("lb") or {}).get("hosts") or [])
    if not lbs:
        raise SlakitError(
            f"env {env.name}: the failover drill writes through a load balancer; group lb has "
            "no hosts"
        )
    deployed = stack.Stack(inventory, stack.read_facts(env))
    url = deployed.lb_urls()[lbs[0]]
    return Target(env.name, lbs[0], url, deployed.lb_ca_file(lbs[0]), hosts)


def operator_token(env: Environment, t: Target) -> str:
    scheme = load_spec().auth[AUTH_SCHEME]
    return asyncio.run(fetch_token(t.base_url, scheme, credentials.sla_credentials(env), t.ca_file))


# --- reading the service ----------------------------------------------------------------------


@dataclass(frozen=True)
class Persist:
    """The persist tier as one comprehensive health answer saw it."""

    primary: str | None  # "addr:port"
    status: str  # the replication's status (ok, insufficient_replicas, unknown, ...)
    replicas: tuple[tuple[str, str], ...]  # (address, state) of each replica the primary has

    @classmethod
    def parse(cls, health: dict[str, Any]) -> Persist:
        l2 = (health.get("tiers") or {}).get("l2") or {}
        replication = l2.get("replication") or {}
        replicas = tuple(
            (str(r.get("address", "")), str(r.get("state", "")))
            for r in replication.get("replicas") or []
            if isinstance(r, dict)
        )
        primary = l2.get("primary") or replication.get("primary")
        return cls(primary or None, str(replication.get("status", "missing")), replicas)

    def has_online_replica(self, address: str) -> bool:
        """The primary reports a replica at `address` (no port) that is online."""
        return any(a.rsplit(":", 1)[0] == address and s == "online" for a, s in self.replicas)


def read_persist(t: Target, session: requests.Session) -> Persist | None:
    """The persist tier as the health through the load balancer reports it; None: no answer."""
    try:
        reply = session.get(t.base_url + HEALTH, timeout=5, verify=t.ca_file or True)
        return Persist.parse(reply.json()) if reply.status_code == 200 else None
    except (requests.RequestException, ValueError):
        return None


ASK_ROLE = "Ask the instance its role"


def persist_roles(env: Environment) -> dict[str, str]:
    """{host: "master" | "slave" | ...}: the first line of `ROLE` of the persist instance on
    each host of the group, asked on the host as the admin user of the redis fact (a host
    that does not answer is absent)."""
    fact = "ansible_local.redis"
    play = {
        "name": f"Read the role of {UNIT}",
        "hosts": GROUP,
        "gather_facts": False,
        "tasks": [
            {"name": "Read the local facts",
             "ansible.builtin.setup": {"gather_subset": ["!all", "!min", "local"]}},
            {"name": ASK_ROLE,
             "ansible.builtin.shell": (
                 f"set -a; . {{{{ {fact}.admin_env_file | quote }}}}; set +a; "
                 f"redis-cli --no-auth-warning --user {{{{ {fact}.admin_user | quote }}}} "
                 f"-p {{{{ {fact}.instances.{INSTANCE}.port | int }}}} ROLE"
             ),
             "changed_when": False},
        ],
    }  # fmt: skip
    out = ansible.run_plays(env.inventory, [play], ANSIBLE_TIMEOUT_S)
    roles: dict[str, str] = {}
    for task in out["plays"][0]["tasks"]:  # one entry per host and task (slakit's strategy)
        if task["task"]["name"] != ASK_ROLE:
            continue
        for host, answer in task["hosts"].items():
            lines = str(answer.get("stdout", "")).split()
            if answer.get("rc") == 0 and lines:
                roles[host] = lines[0]
    return roles


def primary_disagreement(t: Target, health: Persist | None, roles: dict[str, str]) -> str:
    """Why the health's primary is not the one master Redis reports ("" when they agree)."""
    said = ", ".join(f"{h} {roles.get(h, 'no answer')}" for h in t.redis_hosts)
    if health is None or health.primary is None:
        return f"the health names no persist primary (tiers.l2.primary); Redis: {said}"
    host = t.host_of(health.primary)
    if host is None:
        return (
            f"the persist primary {health.primary} is the address of no host of group {GROUP} "
            f"({', '.join(f'{h} {a}' for h, a in t.redis_hosts.items())})"
        )
    masters = [h for h in t.redis_hosts if roles.get(h) == "master"]
    if masters != [host] or roles.keys() != t.redis_hosts.keys():
        return f"the health names {host} ({health.primary}) the persist primary; Redis: {said}"
    return ""


def read_ledger(t: Target, session: requests.Session, run: str, token: str) -> set[str]:
    """Every id the ledger holds for `run` (a few tries: a 503 while Sentinel settles)."""
    last = ""
    for _ in range(10):
        try:
            reply = session.get(
                t.base_url + LEDGER,
                params={"run": run},
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
                verify=t.ca_file or True,
            )
            if reply.status_code == 200:
                return set(reply.json()["ids"])
            last = f"HTTP {reply.status_code}: {reply.text[:160]}"
        except (requests.RequestException, ValueError, KeyError) as err:
            last = type(err).__name__
        time.sleep(1)
    raise SlakitError(f"reading the ledger of run {run} back failed: {last}", exit_code=1)


def systemd(env: Environment, host: str, state: str) -> None:
    """`ansible <host> -m systemd_service -a "name=redis@persist state=<state>"`."""
    cmd = [
        str(ansible.BIN / "ansible"), host, "-i", str(env.inventory),
        "-m", "ansible.builtin.systemd_service", "-a", f"name={UNIT} state={state}",
    ]  # fmt: skip
    try:
        run = subprocess.run(
            cmd,
            cwd=ansible.ROOT,
            env=ansible.command_env(),
            capture_output=True,
            text=True,
            timeout=ANSIBLE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        why = f"{host}: {UNIT} {state}: no answer in {ANSIBLE_TIMEOUT_S:.0f} s"
        raise SlakitError(why, exit_code=1) from None
    if run.returncode != 0:
        tail = " ".join((run.stdout + run.stderr).split())[-300:]
        raise SlakitError(f"{host}: {UNIT} {state} failed: {tail}", exit_code=1)


# --- figures from the samples (pure) ----------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    sent: int
    acked: int
    refused: dict[str, int]  # an HTTP answer other than 200, by the body's error code
    transport: dict[str, int]  # no HTTP answer, by exception
    present: int  # ids the ledger holds
    lost: list[str]  # acknowledged, not in the ledger
    kept_unacked: int  # in the ledger though never acknowledged (refused after reaching Redis)
    resumed_s: float | None  # stop -> send time of the first write sent after it and acknowledged
    acked_after_stop: int


def figures(samples: Iterable[load.Sample], stopped: float, present: set[str]) -> Figures:
    samples = list(samples)
    acked = {s.tag for s in samples if s.ok}
    after = [s.sent for s in samples if s.ok and s.sent > stopped]
    return Figures(
        sent=len(samples),
        acked=len(acked),
        refused=dict(Counter(s.error for s in samples if not s.ok and not s.transport)),
        transport=dict(Counter(s.error for s in samples if s.transport)),
        present=len(present),
        lost=sorted(acked - present),
        kept_unacked=len(present - acked),
        resumed_s=(min(after) - stopped) if after else None,
        acked_after_stop=len(after),
    )


def first_ack_after(samples: Iterable[load.Sample], since: float) -> float | None:
    """Send time of the first acknowledged write sent after `since`."""
    return min((s.sent for s in samples if s.ok and s.sent > since), default=None)


@dataclass
class FailoverResult:
    env: str
    run: str
    rate: float
    old_primary: str  # host
    old_address: str  # "addr:port" the health named before the stop
    new_primary: str | None = None
    new_address: str | None = None
    failover_s: float | None = None  # stop -> the health names another primary
    figures: Figures | None = None
    rejoined: bool = False
    load_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)  # why the drill failed, in order found
    timeline: dict[str, float] = field(default_factory=dict)  # seconds since the load started
    samples: list[load.Sample] = field(default_factory=list, repr=False)  # every request
    load_started: float = 0.0  # time.monotonic() of the load's first request

    @property
    def passed(self) -> bool:
        return not self.problems

    def line(self) -> str:
        f = self.figures
        failover = f"{self.failover_s:.1f} s" if self.failover_s is not None else "none"
        head = (
            f"failover drill ({self.env}, run {self.run}): {self.old_primary} -> "
            f"{self.new_primary or '?'}; failover {failover}"
        )
        if f is None:
            return f"{head}; no figures: {self.problems[0] if self.problems else '?'}"
        resumed = f"{f.resumed_s:.1f} s" if f.resumed_s is not None else "never"
        return (
            f"{head}, writes acknowledged again after {resumed}; requests {f.sent} at "
            f"{self.rate:g}/s: acknowledged {f.acked}, refused {_counts(f.refused)}, transport "
            f"failures {_counts(f.transport)}; acknowledged {f.acked} vs present {f.present}, "
            f"lost {len(f.lost)}; old primary rejoined as a replica: "
            f"{'yes' if self.rejoined else 'no'}"
        )

    def to_json(self) -> dict[str, Any]:
        """The figures, and every request as [seconds since the load started, id, status,
        error] in send order."""
        data = {k: v for k, v in asdict(self).items() if k not in ("samples", "load_started")}
        data["passed"] = self.passed
        data["line"] = self.line()
        data["requests"] = [
            [round(s.sent - self.load_started, 4), s.tag, s.status, s.error]
            for s in sorted(self.samples, key=lambda s: s.sent)
        ]
        return data


def _counts(counts: dict[str, int]) -> str:
    if not counts:
        return "0"
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return f"{sum(counts.values())} (" + ", ".join(f"{k} {v}" for k, v in ordered) + ")"


def judge(result: FailoverResult) -> None:
    """Adds to `result.problems` what the figures show went wrong."""
    f = result.figures
    if result.failover_s is None:
        result.problems.append(
            f"no other primary named by the health within {PROMOTED_WITHIN_S:.0f} s of the stop"
        )
    if f is not None:
        if f.resumed_s is None:
            result.problems.append("no write sent after the stop was acknowledged")
        if f.lost:
            first = ", ".join(f.lost[:5])
            result.problems.append(
                f"{len(f.lost)} acknowledged writes missing from the ledger: {first}"
            )
    if result.failover_s is not None and not result.rejoined:
        result.problems.append(
            f"{result.old_primary} is not an online replica of the primary within "
            f"{REJOINED_WITHIN_S:.0f} s"
        )


# --- the drill --------------------------------------------------------------------------------


def wait_for(
    condition: Callable[[], Any], within: float, drill: load.OpenLoopLoad | None = None
) -> Any:
    """`condition()`'s first true value, polled every POLL_S for at most `within` seconds (and,
    given a load, only while it still sends); None when it never held."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if drill is not None and not drill.sending:
            return condition() or None
        time.sleep(POLL_S)
    return None


def acked(drill: load.OpenLoopLoad) -> int:
    return sum(s.ok for s in drill.snapshot())


@dataclass(frozen=True)
class Start:
    """What the drill found before it began: where to write, as whom, and the primary."""

    target: Target
    token: str
    primary: Persist
    host: str  # the primary's inventory host


def begin(env: Environment, rate: float) -> Start:
    """Bad input and an environment not ready for the drill: SlakitError, exit 2."""
    if not 0 < rate <= MAX_RATE:
        raise SlakitError(f"--rate {rate:g}: the drill writes at 1 to {MAX_RATE} per second")
    t = target(env)
    token = operator_token(env, t)
    deadline = time.monotonic() + SETTLED_WITHIN_S
    with requests.Session() as session:
        while True:
            before = read_persist(t, session)
            why = primary_disagreement(t, before, persist_roles(env))
            if not why or time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
    if why or before is None or before.primary is None:
        raise SlakitError(f"the persist primary is not settled in {SETTLED_WITHIN_S:.0f} s: {why}")
    host = str(t.host_of(before.primary))
    if before.status != "ok":
        raise SlakitError(
            f"the persist tier is not ready for a failover: replication status {before.status} "
            f"on {host} ({before.primary}); it needs an online replica first"
        )
    return Start(t, token, before, host)


def run(env: Environment, rate: float = RATE, say: Callable[[str], None] = print) -> FailoverResult:
    """The drill, start to end; the result says whether it passed and why not."""
    start = begin(env, rate)
    t, old = start.target, start.host
    run_id = f"failover-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    result = FailoverResult(env.name, run_id, rate, old, str(start.primary.primary))
    say(
        f"primary {result.old_address} on {old}; durable writes at {rate:g}/s through {t.lb} "
        f"({t.base_url}), run {run_id}"
    )
    headers = {"Authorization": f"Bearer {start.token}"}

    def write(i: int) -> load.Request:
        entry = f"w{i:06d}"
        return load.Request("POST", LEDGER, {"run": run_id, "id": entry}, headers, entry)

    drill = load.OpenLoopLoad(
        t.base_url, load.verifying(t.base_url, t.ca_file), write,
        rate=rate, max_seconds=MAX_SECONDS, max_requests=min(MAX_REQUESTS, int(rate * MAX_SECONDS)),
        timeout=REQUEST_TIMEOUT_S, connections=256,
    )  # fmt: skip
    with requests.Session() as session, drill:
        stop_at = _under_load(env, start, result, drill, session, say)
    result.samples = drill.snapshot()
    result.load_started = drill.started
    result.load_seconds = round(drill.seconds, 3)
    if stop_at is None:
        return result
    with requests.Session() as session:
        present = read_ledger(t, session, run_id, start.token)
        result.figures = figures(result.samples, stop_at, present)
        if result.failover_s is not None:
            _check_rejoined(t, session, result)
    judge(result)
    return result


def _under_load(
    env: Environment,
    start: Start,
    result: FailoverResult,
    drill: load.OpenLoopLoad,
    session: requests.Session,
    say: Callable[[str], None],
) -> float | None:
    """Stop the primary, wait for the promotion, start it again, wait for writes to resume;
    returns when the stop was done (None: the drill never got that far)."""
    t, old, mark = start.target, start.host, result.timeline

    def since() -> float:
        return round(time.monotonic() - drill.started, 3)

    if not wait_for(lambda: acked(drill) >= WARMUP_ACKS, WARMUP_WITHIN_S, drill):
        seen = Counter(s.error or "acknowledged" for s in drill.snapshot())
        result.problems.append(
            f"fewer than {WARMUP_ACKS} writes acknowledged in {WARMUP_WITHIN_S:.0f} s before "
            f"the stop: {_counts(dict(seen))}"
        )
        return None
    mark["stop_sent"] = since()
    say(f"stopping {UNIT} on {old}")
    try:
        systemd(env, old, "stopped")
        stop_at = time.monotonic()
        mark["stopped"] = since()

        def promoted() -> Persist | None:
            now = read_persist(t, session)
            moved = now is not None and now.primary not in (None, result.old_address)
            return now if moved else None

        now = wait_for(promoted, PROMOTED_WITHIN_S)
        if now is not None:
            result.failover_s = time.monotonic() - stop_at
            result.new_address = now.primary
            result.new_primary = t.host_of(now.primary or "") or now.primary
            mark["promoted_seen"] = since()
            say(f"the health names {now.primary} ({result.new_primary}) the primary")
    finally:  # never leave the instance stopped
        say(f"starting {UNIT} on {old} again")
        systemd(env, old, "started")
        mark["restarted"] = since()
    if result.failover_s is None:
        return stop_at
    first = wait_for(lambda: first_ack_after(drill.snapshot(), stop_at), RESUMED_WITHIN_S, drill)
    if first is not None:
        mark["first_acked_after_stop_sent"] = round(first - drill.started, 3)
        say(f"writes acknowledged again (sent {first - stop_at:.1f} s after the stop)")
        enough = acked(drill) + EXTRA_ACKS
        wait_for(lambda: acked(drill) >= enough, EXTRA_WITHIN_S, drill)
    return stop_at


def _check_rejoined(t: Target, session: requests.Session, result: FailoverResult) -> None:
    """The primary reports the old one as an online replica (bounded wait)."""
    address = t.redis_hosts[result.old_primary]

    def rejoined() -> Persist | None:
        now = read_persist(t, session)
        return now if now is not None and now.has_online_replica(address) else None

    final = wait_for(rejoined, REJOINED_WITHIN_S)
    result.rejoined = final is not None
    if final is not None and final.primary != result.new_address:  # failed over once more
        result.new_address = final.primary
        result.new_primary = t.host_of(final.primary or "") or final.primary


def write_report(env: Environment, result: FailoverResult, when: datetime | None = None) -> Path:
    """reports/<env>/drill-failover/<UTC time>/failover.json: the figures, the timeline and
    every request (seconds since the load started, id, status, error)."""
    stamp = (when or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    outdir = env.reports_dir / "drill-failover" / stamp
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / "failover.json"
    path.write_text(json.dumps(result.to_json(), indent=1, sort_keys=True) + "\n")
    return path
