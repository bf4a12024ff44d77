"""Preflight on the example inventories: bad input is one line, exit 2, and no host touched.

These run ansible for real, offline (no host is contacted): the staging and production
inventories name documentation addresses that must never be reached. They carry no vault (no
committed secrets): a preflight that passes runs in a project copy with a fresh vault made by
`invoke secrets.vault` and a temporary password file (0600).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from slakit import ansible, envs, preflight
from slakit.errors import SlakitError
from slakit.lab.tls import ensure_tls

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def invoke(
    *args: str, cwd: Path = ROOT, vault: str | Path | None = None
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ANSIBLE_VAULT_PASSWORD_FILE"}
    env["PATH"] = f"{BIN}:{env['PATH']}"
    if vault:
        env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(cwd / vault)
    return subprocess.run(
        [str(BIN / "invoke"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("env", ["staging", "production"])
def test_example_inventories_have_the_stack_groups(env):
    graph = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", f"inventories/{env}", "--graph"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "ANSIBLE_VAULT_PASSWORD_FILE"},
    ).stdout
    for line in ("@lb:", "@app:", "@redis:", "--lb-1", "--app-1", "--app-2", "--redis-1"):
        assert line in graph


def vault_password_file(path: Path) -> Path:
    """A fresh random vault password in a file only its owner can read (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32) + "\n")
    return path


def make_vault(copy: Path, env: str) -> Path:
    """A real vault for the copy's `env` from `invoke secrets.vault`; returns its password file."""
    (copy / f"inventories/{env}/group_vars/all/vault.yml").unlink(missing_ok=True)  # a local one
    password = vault_password_file(copy / f".{env}-vault-pass")
    result = invoke("secrets.vault", "--env", env, cwd=copy, vault=password)
    assert result.returncode == 0, result.stdout + result.stderr
    # the certificate an operator brings (inventories/<env>/group_vars/lb/tls.yml), for the
    # load balancers of the pristine inventory (a test may break the copy's)
    groups = yaml.safe_load((ROOT / f"inventories/{env}/hosts.yml").read_text())["all"]["children"]
    hosts = groups["lb"]["hosts"]
    ensure_tls({name: vars_["ansible_host"] for name, vars_ in hosts.items()}, copy / "tls" / env)
    return password


@pytest.mark.parametrize("env", ["staging", "production"])
def test_offline_preflight_validates_every_role_input(env, project_copy):
    """A fresh vault from `invoke secrets.vault` (0600) passes every check."""
    password = make_vault(project_copy, env)
    vault = project_copy / f"inventories/{env}/group_vars/all/vault.yml"
    assert vault.stat().st_mode & 0o777 == 0o600
    result = invoke("check.preflight", "--env", env, "--offline", cwd=project_copy, vault=password)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 hosts, groups lb, app, redis" in result.stdout
    assert "role inputs valid on every host" in result.stdout


def test_unknown_env():
    line = one_line_error(invoke("deploy", "--env", "nowhere"))
    assert "unknown env 'nowhere'" in line and "known: lab, production, staging" in line


def test_missing_vault_password(project_copy):
    make_vault(project_copy, "staging")
    line = one_line_error(
        invoke("check.preflight", "--env", "staging", "--offline", cwd=project_copy)
    )
    assert "vault.yml is vault-encrypted: set ANSIBLE_VAULT_PASSWORD_FILE" in line


def test_wrong_vault_password(project_copy):
    make_vault(project_copy, "staging")
    other = vault_password_file(project_copy / ".other-vault-pass")
    line = one_line_error(
        invoke("check.preflight", "--env", "staging", "--offline", cwd=project_copy, vault=other)
    )
    assert "vault password is wrong" in line


@pytest.fixture
def project_copy(tmp_path):
    """A copy of the project's Ansible side, to break an inventory without touching the real one."""
    for name in (
        "ansible.cfg",
        "tasks.py",
        "playbooks",
        "roles",
        "inventories",
        "plugins",
        "slakit",
        "sla",
    ):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    return tmp_path


def staging_preflight_in(copy: Path) -> str:
    """Offline preflight of the copy's staging inventory (a fresh vault made for it if it has
    none); returns its one error line."""
    password = copy / ".staging-vault-pass"
    if not password.exists():
        password = make_vault(copy, "staging")
    return one_line_error(
        invoke("check.preflight", "--env", "staging", "--offline", cwd=copy, vault=password)
    )


def test_yaml_error_names_file_and_line(project_copy):
    hosts = project_copy / "inventories/staging/hosts.yml"
    hosts.write_text(hosts.read_text().replace("    app:\n", "    app: [\n", 1))
    line = staging_preflight_in(project_copy)
    assert "inventories/staging/hosts.yml:" in line and "not valid YAML" in line


def test_wrong_typed_role_variable_is_named(project_copy):
    extra = project_copy / "inventories/staging/group_vars/all/broken.yml"
    extra.write_text("---\napp_port: eighty\n")
    line = staging_preflight_in(project_copy)
    assert "app_port" in line


def test_a_refusal_stops_the_playbook_running_beside_it():
    """preflight.run checks the secrets while the playbook runs: when the check raises, the
    playbook's process is terminated, also one that starts only afterwards."""
    running = subprocess.Popen(["sleep", "60"])
    late = subprocess.Popen(["sleep", "60"])
    with pytest.raises(SlakitError), preflight._stopped_on_failure() as started:
        started(running)
        raise SlakitError("a refused secret")
    assert running.wait(timeout=10) == -signal.SIGTERM
    started(late)
    assert late.wait(timeout=10) == -signal.SIGTERM


def test_a_refused_secret_is_the_one_line_and_the_playbook_beside_it_stops(monkeypatch):
    """The preflight's playbook runs while the secrets are checked; a refused secret is the
    error, and the playbook's process is terminated rather than waited for."""
    processes: list[subprocess.Popen] = []

    def playbook(env, name, *, started, **_):
        process = subprocess.Popen(["sleep", "60"])
        processes.append(process)
        started(process)
        return ansible.PlayResult(process.wait(), {}, {}, [], {})

    def check_values(env, args):
        raise SlakitError("a refused secret")

    monkeypatch.setattr(ansible, "playbook", playbook)
    monkeypatch.setattr(preflight.secret_checks, "check_values", check_values)
    with pytest.raises(SlakitError, match="a refused secret"):
        preflight.run(envs.resolve("lab"))
    assert [p.wait(timeout=10) for p in processes] == [-signal.SIGTERM]
