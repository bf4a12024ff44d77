"""Secrets a careful operator can trust: the preflight refuses example, placeholder, weak and
malformed secrets, a missing vault and a vault password file others can read — one line, exit
2, no host touched, and never a secret value in what it prints.

The checks' rules are tested through `python -m slakit.secret_checks` (JSON on stdin, as the
preflight's throwaway play runs it); the preflight itself runs for real (ansible-vault,
ansible-playbook offline) on a project copy whose vault each test writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import test_preflight
import yaml
from test_preflight import BIN, ROOT, invoke, make_vault, one_line_error, vault_password_file

from slakit import secrets as generated

project_copy = test_preflight.project_copy  # the fixture: a copy of the project's Ansible side

# The last commit that carried the example vaults and their passwords (read, never changed).
OLD_EXAMPLES = "76ac2f6fa29a121b811d0351ae5e0340b739d680"
VAULT = "inventories/{env}/group_vars/all/vault.yml"


def check(values: dict) -> list[str]:
    """The checks' verdict on `values`, as the preflight's play gets it."""
    run = subprocess.run(
        [str(BIN / "python"), "-B", "-m", "slakit.secret_checks"],
        input=json.dumps(values),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert not run.stderr
    return run.stdout.splitlines()


@pytest.fixture(scope="module")
def good() -> dict:
    """A complete set of secrets as `invoke secrets.vault` and the lab make them."""
    values: dict = {}
    generated.complete(values)
    return values


def plain_vault(values: dict) -> str:
    return "---\n" + yaml.safe_dump({"vault_" + k: v for k, v in values.items()}, sort_keys=True)


def encrypt(plain: str, password: Path, dest: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ANSIBLE_VAULT_PASSWORD_FILE"}
    subprocess.run(
        [BIN / "ansible-vault", "encrypt", f"--vault-password-file={password}", "--output", dest],
        input=plain,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )


def preflight(copy: Path, password: Path | None, env: str = "staging"):
    return invoke("check.preflight", "--env", env, "--offline", cwd=copy, vault=password)


def refusal(copy: Path, values: dict) -> subprocess.CompletedProcess:
    """Offline preflight of the copy's staging with a vault holding `values`."""
    password = vault_password_file(copy / ".vault-pass")
    encrypt(plain_vault(values), password, copy / VAULT.format(env="staging"))
    return preflight(copy, password)


def refused_line(
    result: subprocess.CompletedProcess, values: dict, hidden: tuple[str, ...] = ()
) -> str:
    """The run's one line; no secret of `values` (nor any of `hidden`) in what it printed."""
    for value in [v for v in values.values() if isinstance(v, str) and len(v) > 12] + [*hidden]:
        assert value not in result.stdout + result.stderr
    return one_line_error(result)


def git_show(path: str) -> str:
    run = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{OLD_EXAMPLES}:{path}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        pytest.skip(f"git history without commit {OLD_EXAMPLES[:7]} (a shallow clone?)")
    return run.stdout


def old_example_values(tmp_path: Path, env: str) -> str:
    """The plaintext of the example vault once committed for `env` (git history), in memory."""
    password = vault_password_file(tmp_path / f"old-{env}-pass")
    password.write_text(git_show(f"examples/{env}.vault-password"))
    vault = tmp_path / f"old-{env}-vault.yml"
    vault.write_text(git_show(VAULT.format(env=env)))
    return subprocess.run(
        [str(BIN / "ansible-vault"), "view", "--vault-password-file", str(password), str(vault)],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "ANSIBLE_VAULT_PASSWORD_FILE"},
        check=True,
    ).stdout


# --- the rules, through `python -m slakit.secret_checks` -----------------------------------


def test_generated_secrets_pass_every_check(good):
    assert check(good) == []


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("a1B2" * 7, "28 bytes"),  # short
        ("abcdefgh" * 8, "8 distinct characters"),  # long, low entropy
    ],
)
def test_weak_token_secret_is_named_without_its_value(good, token, why):
    (line,) = check({**good, "app_token_secret": token})
    assert line.startswith("app_token_secret is too weak:") and why in line
    assert ">= 32 bytes and >= 16 distinct" in line and token not in line


@pytest.mark.parametrize(
    "name", ["redis_app_password", "redis_admin_password", "redis_exporter_password"]
)
def test_redis_password_equal_to_the_token_secret_is_named(good, name):
    assert check({**good, name: good["app_token_secret"]}) == [
        f"{name} is the same as app_token_secret: every secret must differ"
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"password_hash": "hunter2-plaintext", "roles": ["operator"]}, "not a scrypt"),
        ({"password_hash": "scrypt:3:8:1$salt$00ff", "roles": ["reader"]}, "unsupported scrypt"),
        ({"roles": ["operator"]}, "needs a password_hash string"),
        ({"password_hash": None, "roles": ["admin"]}, "needs a password_hash string"),
        ({"password_hash": "HASH", "roles": ["admin"]}, "roles must be a list of"),
    ],
)
def test_bad_user_is_named_by_the_services_parser(good, spec, expected):
    if spec.get("password_hash") == "HASH":
        spec = {**spec, "password_hash": good["app_users"]["sla-operator"]["password_hash"]}
    (line,) = check({**good, "app_users": {**good["app_users"], "ops-bob": spec}})
    assert line.startswith("app_users: user 'ops-bob'") and expected in line
    if isinstance(spec.get("password_hash"), str):
        assert spec["password_hash"] not in line


def test_placeholders_are_refused(good):
    lines = check(
        {
            **good,
            "redis_admin_password": "CHANGE_ME-redis-admin-password",
            "app_users": {"sla-operator": {"password_hash": "change-me", "roles": ["operator"]}},
        }
    )
    assert lines == [
        "redis_admin_password is a placeholder (CHANGE_ME)",
        "app_users: user 'sla-operator' password_hash is a placeholder (change-me)",
    ]


def test_exporter_password_placeholder_is_refused(good):
    assert check({**good, "redis_exporter_password": "CHANGE_ME-redis-exporter-password"}) == [
        "redis_exporter_password is a placeholder (CHANGE_ME)"
    ]


def test_no_value_is_ever_echoed():
    assert check({"app_token_secret": ["s3cr3t-in-a-list"]}) == [
        "app_token_secret must be a string"
    ]
    run = subprocess.run(
        [str(BIN / "python"), "-B", "-m", "slakit.secret_checks"],
        input="{not json s3cr3t",
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert run.stdout == "secret checks failed (JSONDecodeError)\n" and not run.stderr


# --- the preflight, for real, offline --------------------------------------------------------


def test_no_committed_vault_is_an_example_and_no_password_file_is_committed():
    """A vault in the checkout is the operator's own (never committed by slakit); none may be a
    published example, and no vault password file lies in the project."""
    from slakit.secret_checks import EXAMPLE_VAULT_FILE_DIGESTS

    for env in ("staging", "production"):
        vault = ROOT / VAULT.format(env=env)
        if vault.exists():
            assert hashlib.sha256(vault.read_bytes()).hexdigest() not in EXAMPLE_VAULT_FILE_DIGESTS
        assert "CHANGE_ME" in Path(str(vault) + ".example").read_text()
    skip = (".venv", ".lab", ".git")
    assert [p for p in ROOT.rglob("*vault-pass*") if p.relative_to(ROOT).parts[0] not in skip] == []


@pytest.mark.parametrize("env", ["staging", "production"])
def test_an_inventory_without_vault_says_how_to_make_one(project_copy, env):
    (project_copy / VAULT.format(env=env)).unlink(missing_ok=True)  # an operator's own
    line = one_line_error(invoke("check.preflight", "--env", env, "--offline", cwd=project_copy))
    assert line == (
        f"slakit: inventories/{env}: no vault (group_vars/all/vault.yml) holds the {env} "
        "secrets: make one with `ANSIBLE_VAULT_PASSWORD_FILE=<0600 file> invoke secrets.vault "
        f"--env {env}` (README, Secrets)"
    )


def test_the_template_is_not_loaded_by_ansible(project_copy):
    (project_copy / VAULT.format(env="staging")).unlink(missing_ok=True)  # an operator's own
    hostvars = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", "inventories/staging", "--host", "app-1"],
        cwd=project_copy,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "vault_" not in hostvars.replace("{{ vault_", "")


def test_the_template_encrypted_as_is_is_refused(project_copy):
    password = vault_password_file(project_copy / ".vault-pass")
    vault = project_copy / VAULT.format(env="staging")
    encrypt(Path(str(vault) + ".example").read_text(), password, vault)
    line = one_line_error(preflight(project_copy, password))
    assert line.startswith(
        "slakit: inventories/staging/group_vars/all/vault.yml: app_token_secret is a "
        "placeholder (CHANGE_ME); fix it with `ansible-vault edit`"
    )


@pytest.mark.parametrize("env", ["staging", "production"])
def test_a_vault_of_the_old_example_values_is_refused_naming_the_file(project_copy, tmp_path, env):
    """Re-encrypted with a fresh password: only the values' digests can tell."""
    plain = old_example_values(tmp_path, env)
    password = vault_password_file(project_copy / ".vault-pass")
    encrypt(plain, password, project_copy / VAULT.format(env=env))
    result = preflight(project_copy, password, env)
    for value in yaml.safe_load(plain).values():
        if isinstance(value, str) and len(value) > 12:
            assert value not in result.stdout + result.stderr
    line = one_line_error(result)
    assert line.startswith(
        f"slakit: inventories/{env}/group_vars/all/vault.yml: app_token_secret is a published "
        "example value (its SHA-256 is on the list of examples)"
    ), line


def test_the_old_example_vault_file_and_password_are_refused(project_copy, tmp_path):
    vault = project_copy / VAULT.format(env="staging")
    vault.write_text(git_show(VAULT.format(env="staging")))
    password = vault_password_file(project_copy / ".vault-pass")
    line = one_line_error(preflight(project_copy, password))
    assert line == (
        "slakit: inventories/staging/group_vars/all/vault.yml is a published example vault: fix "
        "it with `ansible-vault edit` or make fresh secrets with `invoke secrets.vault --env "
        "staging`"
    )
    vault.unlink()
    old = tmp_path / "old-pass"
    old.write_text(git_show("examples/staging.vault-password"))
    old.chmod(0o600)
    line = one_line_error(invoke("secrets.vault", "--env", "staging", cwd=project_copy, vault=old))
    assert line == (
        f"slakit: vault password file {old}: holds a published example vault password: choose "
        "your own (e.g. openssl rand -base64 32)"
    )


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_vault_password_file_others_can_read_is_refused(project_copy, mode):
    password = make_vault(project_copy, "staging")
    password.chmod(mode)
    line = one_line_error(preflight(project_copy, password))
    assert line == (
        f"slakit: vault password file {password}: mode {mode:04o} lets group or others use it "
        f"(needs 0600 or 0400): chmod 600 {password}"
    )
    line = one_line_error(
        invoke("secrets.vault", "--env", "production", cwd=project_copy, vault=password)
    )
    assert line.startswith(f"slakit: vault password file {password}: mode {mode:04o}")
    assert not (project_copy / VAULT.format(env="production")).exists()


def test_a_plaintext_vault_is_refused(project_copy):
    vault = project_copy / VAULT.format(env="staging")
    vault.write_text((project_copy / (VAULT.format(env="staging") + ".example")).read_text())
    line = one_line_error(preflight(project_copy, None))
    assert line.startswith(
        "slakit: inventories/staging/group_vars/all/vault.yml is not vault-encrypted"
    )


WEAK_TOKEN = "ab" * 24
PLAINTEXT = "hunter2hunter2"
SHORT_REDIS = "Zx9" + secrets.token_hex(4)
# {case: good secrets -> (the vault's values, more values that must never be printed)}
REFUSALS: dict[str, Callable[[dict], tuple[dict, tuple[str, ...]]]] = {
    "weak token": lambda good: ({**good, "app_token_secret": WEAK_TOKEN}, (WEAK_TOKEN,)),
    "plaintext user password": lambda good: (
        {
            **good,
            "app_users": {
                **good["app_users"],
                "ops-bob": {"password_hash": PLAINTEXT, "roles": ["operator"]},
            },
        },
        (PLAINTEXT,),
    ),
    "unknown role": lambda good: (
        {
            **good,
            "app_users": {
                **good["app_users"],
                "ops-bob": {**good["app_users"]["sla-operator"], "roles": ["root"]},
            },
        },
        (),
    ),
    "redis password is the token": lambda good: (
        {**good, "redis_app_password": good["app_token_secret"]},
        (),
    ),
    "short redis password": lambda good: (
        {**good, "redis_admin_password": SHORT_REDIS},
        (SHORT_REDIS,),
    ),
    "equal redis passwords": lambda good: (
        {**good, "redis_admin_password": good["redis_app_password"]},
        (),
    ),
    "sentinel password is the app's": lambda good: (
        {**good, "redis_sentinel_password": good["redis_app_password"]},
        (),
    ),
}
PARALLEL_REFUSALS = 3  # each an offline preflight (two ansible-playbook runs), mostly waiting


@pytest.fixture(scope="module")
def refusals(good, tmp_path_factory) -> dict[str, str]:
    """{case of REFUSALS: its preflight's one line}, each in a project copy of its own, a few
    at a time (one after another they took about 100 s of CI)."""

    def run(case: str) -> tuple[subprocess.CompletedProcess, dict, tuple[str, ...]]:
        values, hidden = REFUSALS[case](good)
        copy = project_copy.__wrapped__(tmp_path_factory.mktemp("refusal"))
        return refusal(copy, values), values, hidden

    with ThreadPoolExecutor(max_workers=PARALLEL_REFUSALS) as pool:
        runs = dict(zip(REFUSALS, pool.map(run, REFUSALS), strict=True))
    return {case: refused_line(*ran) for case, ran in runs.items()}


def test_weak_token_secret_is_refused_naming_the_variable(refusals):
    assert refusals["weak token"].startswith(
        "slakit: inventories/staging/group_vars/all/vault.yml: app_token_secret is too weak: "
        "48 bytes, 2 distinct characters (needs >= 32 bytes and >= 16 distinct)"
    )


def test_plaintext_user_password_is_refused_naming_the_user(refusals):
    assert refusals["plaintext user password"].startswith(
        "slakit: inventories/staging/group_vars/all/vault.yml: app_users: user 'ops-bob': not a "
        "scrypt:<n>:<r>:<p>$<salt>$<hex> hash"
    )


def test_unknown_role_is_refused_naming_the_user(refusals):
    assert (
        "app_users: user 'ops-bob' roles must be a list of ['operator', 'reader']"
        in refusals["unknown role"]
    )


def test_redis_password_equal_to_token_secret_is_refused(refusals):
    assert (
        "redis_app_password is the same as app_token_secret: every secret must differ"
        in refusals["redis password is the token"]
    )


def test_short_redis_password_is_named_by_the_redis_role(refusals):
    line = refusals["short redis password"]
    assert "redis_admin_password: needs a string of at least 16 characters on redis-1" in line
    assert "redis_app_password:" not in line


def test_equal_redis_passwords_are_named_by_the_redis_role(refusals):
    assert (
        "redis_app_password and redis_admin_password: must differ on redis-1"
        in refusals["equal redis passwords"]
    )


def test_a_sentinel_password_equal_to_the_apps_is_named_by_the_redis_role(refusals):
    line = refusals["sentinel password is the app's"]
    assert (
        "redis_replication_password, redis_sentinel_auth_password and redis_sentinel_password: "
        "must differ from each other and from the other Redis passwords on redis-1"
    ) in line
    assert "redis_app_password and redis_admin_password" not in line
