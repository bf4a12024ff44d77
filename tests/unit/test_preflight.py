"""Preflight on the example inventories: bad input is one line, exit 2, and no host touched.

These run ansible for real, offline (no host is contacted): the staging and production
inventories name documentation addresses that must never be reached.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
VAULT_PASS = {
    "staging": "examples/staging.vault-password",
    "production": "examples/production.vault-password",
}


def invoke(*args: str, cwd: Path = ROOT, vault: str | None = None) -> subprocess.CompletedProcess:
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
        env={**os.environ, "ANSIBLE_VAULT_PASSWORD_FILE": str(ROOT / VAULT_PASS[env])},
    ).stdout
    for line in ("@lb:", "@app:", "@redis:", "--lb-1", "--app-1", "--app-2", "--redis-1"):
        assert line in graph


@pytest.mark.parametrize("env", ["staging", "production"])
def test_offline_preflight_validates_every_role_input(env):
    result = invoke("check.preflight", "--env", env, "--offline", vault=VAULT_PASS[env])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 hosts, groups lb, app, redis" in result.stdout
    assert "role inputs valid on every host" in result.stdout


def test_unknown_env():
    line = one_line_error(invoke("deploy", "--env", "nowhere"))
    assert "unknown env 'nowhere'" in line and "known: lab, production, staging" in line


def test_missing_vault_password():
    line = one_line_error(invoke("check.preflight", "--env", "staging", "--offline"))
    assert "vault.yml is vault-encrypted: set ANSIBLE_VAULT_PASSWORD_FILE" in line


def test_wrong_vault_password():
    line = one_line_error(
        invoke("check.preflight", "--env", "staging", "--offline", vault=VAULT_PASS["production"])
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
        "examples",
    ):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    return tmp_path


def staging_preflight_in(copy: Path) -> str:
    """Offline preflight of the copy's staging inventory; returns its one error line."""
    return one_line_error(
        invoke(
            "check.preflight",
            "--env",
            "staging",
            "--offline",
            cwd=copy,
            vault=VAULT_PASS["staging"],
        )
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


def test_port_collision_between_roles_is_named(project_copy):
    hosts = project_copy / "inventories/staging/hosts.yml"
    text = hosts.read_text().replace(
        "    redis:\n      hosts:\n", "    redis:\n      hosts:\n        app-1:\n", 1
    )
    hosts.write_text(text)
    (project_copy / "inventories/staging/host_vars").mkdir()
    (project_copy / "inventories/staging/host_vars/app-1.yml").write_text("---\napp_port: 6380\n")
    line = staging_preflight_in(project_copy)
    assert "app-1: port 6380 is used by both app (app_port) and redis instance persist" in line
