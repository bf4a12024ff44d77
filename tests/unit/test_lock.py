"""The deploy lock: one deploy per environment at a time.

The host script (slakit/host_scripts/deploy_lock.py) runs here on real files, racing processes
included; slakit/lock.py and `invoke deploy` / `invoke rollback` take the lock through real
Ansible plays on this machine (an inventory whose `lb` host is reached with the local
connection, with the lock file under tmp_path). Only the deploy's preflight and converge are
replaced.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from invoke import Context
from invoke.exceptions import Exit

from slakit import ansible, credentials, envs, lock, preflight, release
from slakit.errors import SlakitError
from slakit.tasks.deploy import deploy as deploy_task
from slakit.tasks.release import rollback as rollback_task

SCRIPT = Path(lock.__file__).parent / "host_scripts" / "deploy_lock.py"


def host_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_lock", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = host_script()


def holder(token: str, command: str = "invoke deploy --env lab") -> dict[str, str]:
    return {
        "token": token,
        "owner": "ops@ctl",
        "started": "2024-05-01T12:00:00Z",
        "command": command,
    }


def age(path: Path, seconds: float) -> None:
    """Make the lock file look `seconds` old (the script reads its age from the file)."""
    then = time.time() - seconds
    os.utime(path, (then, then))


# --- the host script


def test_take_refuses_a_second_holder_and_names_the_first(tmp_path):
    path = str(tmp_path / "d" / "deploy.lock")
    first = script.take(path, holder("aaa"), 3600, False)
    assert first["held"] is True and json.loads(Path(path).read_text()) == holder("aaa")
    second = script.take(path, holder("bbb"), 3600, False)
    assert second["held"] is False and second["holder"] == holder("aaa")
    assert second["stale"] is False and 0 <= second["age_s"] < 60
    assert json.loads(Path(path).read_text())["token"] == "aaa"  # untouched
    assert not [p.name for p in Path(path).parent.iterdir() if p.name != "deploy.lock"]


def test_only_the_holders_token_releases_it(tmp_path):
    path = str(tmp_path / "deploy.lock")
    script.take(path, holder("aaa"), 3600, False)
    assert script.release(path, "bbb") == {"released": False, "holder": holder("aaa")}
    assert Path(path).exists()
    assert script.release(path, "aaa")["released"] is True and not Path(path).exists()
    assert script.release(path, "aaa") == {"released": False, "holder": None}
    assert script.take(path, holder("ccc"), 3600, False)["held"] is True


def test_a_stale_lock_is_broken_only_with_break_and_only_when_older_than_the_limit(tmp_path):
    path = tmp_path / "deploy.lock"
    script.take(str(path), holder("old"), 3600, False)
    age(path, 1800)  # younger than the limit: never broken, not even with --break
    young = script.take(str(path), holder("new"), 3600, True)
    assert young["held"] is False and young["stale"] is False and young["broken"] is None
    age(path, 7200)
    stale = script.take(str(path), holder("new"), 3600, False)  # stale, but no --break
    assert stale["held"] is False and stale["stale"] is True
    broken = script.take(str(path), holder("new"), 3600, True)
    assert broken["held"] is True and broken["broken"]["token"] == "old"
    assert broken["broken"]["age_s"] > 7000
    assert json.loads(path.read_text())["token"] == "new"


def test_an_unreadable_lock_file_still_locks(tmp_path):
    path = tmp_path / "deploy.lock"
    path.write_text("not json")
    out = script.take(str(path), holder("aaa"), 3600, False)
    assert out["held"] is False and out["holder"]["owner"].startswith("unknown")


def test_concurrent_takes_have_exactly_one_winner(tmp_path):
    path = tmp_path / "deploy.lock"
    racers = [
        subprocess.Popen(
            [
                sys.executable,
                str(SCRIPT),
                "take",
                str(path),
                "--holder",
                json.dumps(holder(f"t{i}")),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(12)
    ]
    answers = [json.loads(p.communicate(timeout=60)[0]) for p in racers]
    winners = [a["holder"]["token"] for a in answers if a["held"]]
    print(f"\n12 racing takes: {len(winners)} won, {12 - len(winners)} refused")
    assert len(winners) == 1
    assert json.loads(path.read_text())["token"] == winners[0]
    # every loser names the winner (the file was never seen half-written)
    assert {a["holder"]["token"] for a in answers if not a["held"]} == set(winners)
    assert [p.name for p in tmp_path.iterdir()] == ["deploy.lock"]  # no temporary file left


# --- through Ansible, `invoke deploy` and `invoke rollback`


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> envs.Environment:
    """An environment whose first lb host is this machine; the lock file under tmp_path."""
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {
        "all": {
            "vars": {"slakit_deploy_lock_path": str(tmp_path / "state" / "deploy.lock")},
            "children": {
                "lb": {"hosts": {"lb-9": local}},
                "app": {"hosts": {"app-9": local, "app-8": local}},
            },
        }
    }
    (inventory / "hosts.yml").write_text(json.dumps(hosts))
    environment = envs.Environment("locktest", inventory)
    real_resolve = envs.resolve
    monkeypatch.setattr(
        envs, "resolve", lambda name: environment if name == "locktest" else real_resolve(name)
    )
    monkeypatch.chdir(tmp_path)  # reports/<env>/
    monkeypatch.setattr(preflight, "run", lambda env, **kw: ["checked"])
    monkeypatch.setattr(credentials, "export", lambda env: None)
    return environment


def lock_file(env: envs.Environment) -> Path:
    return env.inventory.parent / "state" / "deploy.lock"


def run_task(task: Any, **options: Any) -> tuple[int, str]:
    try:
        task(Context(), **{"env": "locktest", **options})
    except Exit as exit_:
        return exit_.code, str(exit_.message)
    return 0, ""


def test_a_second_deploy_or_rollback_is_refused_with_one_line_and_exit_2(env, monkeypatch):
    converges: list[str] = []
    monkeypatch.setattr(
        ansible, "playbook", lambda e, name, **kw: converges.append(name) or ansible.PlayResult(2)
    )
    monkeypatch.setattr(release, "rollback", lambda *a, **kw: converges.append("rollback"))
    first = lock.acquire(env, "invoke deploy --env locktest")  # as a first deploy takes it
    assert first.host == "lb-9"  # the first lb host, whatever the app hosts are
    try:
        for task in (deploy_task, rollback_task):
            code, message = run_task(task)
            print(f"\n{message}")
            assert code == 2 and "\n" not in message
            assert message.startswith("slakit: deploy lock of locktest on lb-9 is held by ")
            assert f"{first.holder['owner']} since {first.holder['started']}" in message
            assert "running `invoke deploy --env locktest`" in message
            assert "--break-lock once it is older than slakit_deploy_lock_stale_after" in message
        assert converges == []  # refused before converge
        assert json.loads(lock_file(env).read_text())["token"] == first.token  # still theirs
    finally:
        assert lock.release(env, first)
    assert not lock_file(env).exists()


def test_the_lock_is_held_during_the_deploy_and_released_even_when_it_raises(env, monkeypatch):
    seen: list[dict[str, Any]] = []

    def crash(e, name, **kw):  # the converge: reads the lock file, then the controller fails
        seen.append(json.loads(lock_file(env).read_text()))
        raise RuntimeError("controller bug")

    monkeypatch.setattr(ansible, "playbook", crash)
    with pytest.raises(RuntimeError):
        run_task(deploy_task, limit="app-9")
    assert not lock_file(env).exists()  # released by the try/finally
    [held] = seen
    assert held["command"] == "invoke deploy --env locktest --limit app-9"
    assert "@" in held["owner"] and held["started"].endswith("Z")
    assert set(held) == {"token", "owner", "started", "command"}  # nothing else, no secret


def test_break_lock_removes_only_a_stale_lock(env, monkeypatch):
    monkeypatch.setattr(ansible, "playbook", lambda e, name, **kw: ansible.PlayResult(2))
    stale = lock.acquire(env, "invoke deploy --env locktest")
    age(lock_file(env), 600)
    with pytest.raises(SlakitError) as err:  # 10 min < 3600 s: left alone
        lock.acquire(env, "invoke deploy --env locktest", break_lock=True)
    assert err.value.exit_code == 2 and "not stale yet, so --break-lock leaves it" in str(err.value)
    assert json.loads(lock_file(env).read_text())["token"] == stale.token
    age(lock_file(env), 4000)
    code, _ = run_task(deploy_task, break_lock=True)
    assert code == 1  # it ran (converge failed here), then released its own lock
    assert not lock_file(env).exists()


def test_a_lock_host_that_cannot_be_reached_is_one_line(env, monkeypatch):
    hosts = json.loads((env.inventory / "hosts.yml").read_text())
    hosts["all"]["children"]["lb"]["hosts"]["lb-9"] = {"ansible_host": "192.0.2.1"}
    hosts["all"]["vars"]["ansible_ssh_common_args"] = "-o ConnectTimeout=2"
    (env.inventory / "hosts.yml").write_text(json.dumps(hosts))
    with pytest.raises(SlakitError) as err:
        lock.acquire(env, "invoke deploy --env locktest")
    assert str(err.value).startswith("deploy lock on lb-9: ") and err.value.exit_code == 2
