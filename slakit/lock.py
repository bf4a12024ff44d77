"""The deploy lock: one `invoke deploy` (or `invoke rollback`) per environment at a time.

The lock is a file on the environment's first load balancer (the first host of the `lb`
group; the first app host when there is none): every rollout of the environment drains and
re-enables its app hosts on that host, it is the same host whatever `--limit` says, and it
outlives the controller that took the lock. slakit/host_scripts/deploy_lock.py creates the file
atomically (a hard link of a complete temporary file: EEXIST when it exists) through one
Ansible play (`slakit.ansible.run_plays`), with the holder: owner (user@controller host),
start time (UTC), the command and a random token that only the holder releases it with. No
secret is in it. The file is /var/lib/slakit/deploy.lock (inventory variable
`slakit_deploy_lock_path`). A lock older than `slakit_deploy_lock_stale_after` seconds
(inventory variable, default 3600) is stale: `--break-lock` removes it; a younger lock is
never broken.
"""

from __future__ import annotations

import getpass
import json
import secrets
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from slakit import ansible
from slakit.envs import Environment
from slakit.errors import SlakitError

LOCK_PATH = "/var/lib/slakit/deploy.lock"
PATH_VAR = "slakit_deploy_lock_path"  # inventory variable; default LOCK_PATH
# the lock file's path, templated on the lock host
PATH_JINJA = f"{{{{ {PATH_VAR} | default('{LOCK_PATH}') | quote }}}}"
SCRIPT = Path(__file__).parent / "host_scripts" / "deploy_lock.py"
STALE_VAR = "slakit_deploy_lock_stale_after"
STALE_DEFAULT_S = 3600
PLAY_TIMEOUT_S = 120


@dataclass(frozen=True)
class Lock:
    host: str
    token: str
    holder: dict[str, str]
    broken: dict[str, Any] | None = None  # the stale lock that --break-lock removed


def lock_host(env: Environment) -> str:
    """The host that holds the environment's lock: the first LB host, else the first app host."""
    inventory = ansible.inventory(env)
    for group in ("lb", "app"):
        hosts = (inventory.get(group) or {}).get("hosts") or []
        if hosts:
            return str(hosts[0])
    raise SlakitError(f"{env.inventory}: no lb or app host to keep the deploy lock on")


def new_holder(command: str) -> dict[str, str]:
    return {
        "token": secrets.token_hex(8),
        "owner": f"{getpass.getuser()}@{socket.gethostname()}",
        "started": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "command": command,
    }


def _script_play(host: str, cmd: str, variables: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "Deploy lock",
        "hosts": host,
        "gather_facts": False,
        "vars": variables,
        "tasks": [
            {
                "name": "Deploy lock",
                "ansible.builtin.script": {"cmd": f"{SCRIPT} {cmd}", "executable": "python3"},
                "register": "slakit_lock",
                "changed_when": "(slakit_lock.stdout | from_json).held | default(false)",
            }
        ],
    }


def _run_script(
    env: Environment, host: str, cmd: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Runs the lock script on `host` with `cmd` (Jinja, templated there); its JSON answer."""
    play = _script_play(host, cmd, variables or {})
    out = ansible.run_plays(env.inventory, [play], PLAY_TIMEOUT_S)
    results = [r for t in out["plays"][0]["tasks"] for r in t["hosts"].values()]
    if len(results) != 1:
        raise SlakitError(f"deploy lock on {host}: the play ran on {len(results)} hosts, not 1")
    result = results[0]
    if result.get("failed") or result.get("unreachable"):
        why = result.get("stderr") or result.get("msg") or "failed"
        raise SlakitError(f"deploy lock on {host}: {' '.join(str(why).split())[:300]}")
    try:
        answer = json.loads(result.get("stdout", ""))
    except ValueError:
        raise SlakitError(
            f"deploy lock on {host}: unexpected answer {result.get('stdout')!r}"
        ) from None
    return answer


def _age(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def describe(holder: dict[str, Any]) -> str:
    return (
        f"{holder.get('owner') or 'unknown'} since {holder.get('started') or '?'}, "
        f"running `{holder.get('command') or '?'}`"
    )


def acquire(env: Environment, command: str, *, break_lock: bool = False) -> Lock:
    """Takes the environment's lock or raises SlakitError (exit 2) naming who holds it."""
    host = lock_host(env)
    holder = new_holder(command)
    stale = f"{{{{ {STALE_VAR} | default({STALE_DEFAULT_S}) | string | quote }}}}"
    cmd = (
        f"take {PATH_JINJA} --holder {{{{ slakit_lock_holder | to_json | quote }}}}"
        f" --stale-after {stale}" + (" --break" if break_lock else "")
    )
    answer = _run_script(env, host, cmd, {"slakit_lock_holder": holder})
    if answer.get("held"):
        return Lock(host, holder["token"], holder, answer.get("broken"))
    other = answer.get("holder") or {}
    hint = (
        "it is not stale yet, so --break-lock leaves it"
        if break_lock
        else (
            "it is stale: --break-lock removes it"
            if answer.get("stale")
            else f"wait, or --break-lock once it is older than {STALE_VAR}"
            f" ({_age(float(answer.get('stale_after_s', STALE_DEFAULT_S)))})"
        )
    )
    raise SlakitError(
        f"deploy lock of {env.name} on {host} is held by {describe(other)} "
        f"({_age(float(answer.get('age_s', 0)))} ago); {hint}"
    )


def release(env: Environment, lock: Lock) -> bool:
    """Releases the lock if we still hold it; True when it was released."""
    answer = _run_script(env, lock.host, f"release {PATH_JINJA} --token {lock.token}")
    return bool(answer.get("released"))


@contextmanager
def held(
    env: Environment, command: str, *, break_lock: bool = False, console: Console | None = None
) -> Iterator[Lock]:
    """The lock for the body's duration: released at the end, also on failure or exception
    (SIGTERM included: it raises SystemExit here so that the release still runs)."""
    console = console or Console()
    lock = acquire(env, command, break_lock=break_lock)
    if lock.broken:
        console.print(
            f"[yellow]deploy lock: broke the stale lock of {describe(lock.broken)} "
            f"({_age(float(lock.broken.get('age_s', 0)))} old)"
        )
    console.print(f"deploy lock: taken on {lock.host} ({describe(lock.holder)})")
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield lock
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        try:
            released = release(env, lock)
        except SlakitError as err:
            console.print(f"[red]deploy lock: NOT released ({err}): --break-lock once stale")
        else:
            if released:
                console.print(f"deploy lock: released on {lock.host}")
            else:
                console.print(f"[red]deploy lock on {lock.host}: no longer ours, left alone")


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
