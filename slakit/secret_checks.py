"""Secrets a careful operator can trust: what the preflight refuses before any host is touched.

Files (here, before Ansible decrypts anything):
- staging/production must have an ansible-vault file: there is no committed one;
- no vault file is one of the example vaults once committed to this repository;
- the vault password file (ANSIBLE_VAULT_PASSWORD_FILE) is readable by its owner only and
  is not one of the example passwords once committed in examples/.

Values, resolved by Ansible (vault decryption, the lab's lookups) in a throwaway play on the
controller whose one task hands them to `python -m slakit.secret_checks` on stdin (no_log):
that prints one problem per line, naming a variable and maybe a user, never a value. So a
secret never appears in argv, output, logs or reports.
- no secret is a published example value (SHA-256 in EXAMPLE_DIGESTS) or a placeholder
  (PLACEHOLDER, as in group_vars/all/vault.yml.example);
- app_token_secret: at least TOKEN_MIN_BYTES bytes (UTF-8) and TOKEN_MIN_DISTINCT distinct
  characters (`invoke secrets.vault` makes 64 characters of base64url);
- app_users: the service's own parser accepts it (scrypt hashes, known roles);
- the redis_*_password secrets differ from app_token_secret. Their length
  (redis_password_min_length) and their difference from each other are the redis role's
  checks (roles/redis/tasks/validate.yml), run by the preflight's `--tags preflight`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

from slakit.envs import Environment, vault_password_file
from slakit.errors import SlakitError

TOKEN_MIN_BYTES = 32
TOKEN_MIN_DISTINCT = 16
SECRETS = (
    "app_token_secret",
    "redis_app_password",
    "redis_admin_password",
    "redis_exporter_password",
    "redis_replication_password",
    "redis_sentinel_auth_password",
    "redis_sentinel_password",
    "sla_password",
)
REDIS_PASSWORDS = tuple(name for name in SECRETS if name.startswith("redis_"))
PLACEHOLDER = re.compile(r"change[_-]?me|replace[_-]?me|placeholder|example", re.IGNORECASE)

# SHA-256 of every secret of the example vaults committed until the secrets review
# (inventories/{staging,production}/group_vars/all/vault.yml, opened by the passwords that
# were in examples/*.vault-password): token secrets, Redis passwords, SLA passwords and the
# SLA operator's password hashes. Those values are public: in git history.
EXAMPLE_DIGESTS = frozenset(
    {
        "6819bd59dcaed9090e4bba52e71d930e6b7478e303c11f22875da42e86c81964",
        "d3a8b83517b3f74103f9e1d6d63658578a75df454bb56a7135f20a9becfbb2df",
        "7e109d81a97aea9e71d12ef5e738aa314e794036ff47f3ee593b5b886116f6c2",
        "eeb64aa4b0bb3eaa5bb2d3de46a08d49dc0abf93486774707510fad80ac18c79",
        "f4b90ffe1e0a7b924f6bc3e4ca7886b10f0a6e6a74b33b03f4c2d9729c630d2b",
        "0df86f5b27436f3f3f65c388379636694ff03cca6376ca12890a725069af7ed1",
        "f568e56090132d523d7348c6190c50739d90b1506a4c382df3ebe7ba56f4dd5c",
        "e35848355efb7818b5844af7ac36bbebdec1a62f27c61d69d0449c77d69ac1c5",
        "7ed490542dd76ad6647383730e214fbd851e239d179f86e8fd98c3fdad87c255",
        "afe2f14c543e7a133b6531a8baa716d449bf8451725236671731706d0450e5d5",
    }
)
# ... of those two vault files as committed (encrypted), and of their two passwords.
EXAMPLE_VAULT_FILE_DIGESTS = frozenset(
    {
        "89819d565ee5b48fc8808102217c1fcc06d6b76a00c5bb399c3fa2b2f0070905",
        "649826f473528ead929c9c916ffc4acbce8a682ce3d93d637e49cc357b43ada1",
    }
)
EXAMPLE_PASSWORD_DIGESTS = frozenset(
    {
        "412c7d4aa493dd5a8ef6617216395be30c4e1dc92ceca08fbcfb9d0f6e4b5fa7",
        "fb9683a31ec7a208ff22a647bcc88c00795a938b8c5bb0319b9fc251e0b88992",
    }
)


def _digest(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def _published(what: str, value: str) -> str | None:
    if _digest(value) in EXAMPLE_DIGESTS:
        return f"{what} is a published example value (its SHA-256 is on the list of examples)"
    if PLACEHOLDER.search(value):
        return f"{what} is a placeholder ({PLACEHOLDER.search(value).group(0)})"
    return None


def _users_problem(users: Any) -> str | None:
    """The service's own parser (slakit_service.auth), as the app reads SLAKIT_USERS."""
    from slakit_service.auth import parse_users

    if not isinstance(users, dict) or not users:
        return "app_users must be a non-empty mapping of users"
    for name, spec in users.items():
        stored = spec.get("password_hash") if isinstance(spec, dict) else None
        if isinstance(stored, str) and (
            problem := _published(f"user {name!r} password_hash", stored)
        ):
            return f"app_users: {problem}"
    try:
        parse_users(json.dumps(users, sort_keys=True))
    except ValueError as err:
        return "app_users" + str(err).removeprefix("SLAKIT_USERS")
    return None


def problems(values: dict[str, Any]) -> list[str]:
    """What is wrong with the secrets (absent ones are the argument specs' business)."""
    found: list[str] = []
    strings = {k: v for k in SECRETS if isinstance(v := values.get(k), str)}
    for name, value in strings.items():
        if problem := _published(name, value):
            found.append(problem)
    token = values.get("app_token_secret")
    if token is not None and not isinstance(token, str):
        found.append("app_token_secret must be a string")
    elif isinstance(token, str):
        size, distinct = len(token.encode()), len(set(token))
        if size < TOKEN_MIN_BYTES or distinct < TOKEN_MIN_DISTINCT:
            found.append(
                f"app_token_secret is too weak: {size} bytes, {distinct} distinct characters "
                f"(needs >= {TOKEN_MIN_BYTES} bytes and >= {TOKEN_MIN_DISTINCT} distinct)"
            )
        for name in REDIS_PASSWORDS:
            if strings.get(name) == token:
                found.append(f"{name} is the same as app_token_secret: every secret must differ")
    if values.get("app_users") is not None and (problem := _users_problem(values["app_users"])):
        found.append(problem)
    return found


def main() -> int:
    """Secrets as JSON on stdin; one problem per line on stdout. Never echoes its input."""
    try:
        values = json.loads(sys.stdin.read())
        found = problems(values) if isinstance(values, dict) else ["secrets: not a mapping"]
    except Exception as err:  # a value must never reach a traceback
        found = [f"secret checks failed ({type(err).__name__})"]
    for line in found:
        print(line)
    return 0


# --- the preflight's side -------------------------------------------------------------------


def remedy(env: Environment) -> str:
    if env.is_lab:
        return "remove it from .lab/secrets.yml, `invoke lab.up` makes a new one"
    return (
        "fix it with `ansible-vault edit` or make fresh secrets with "
        f"`invoke secrets.vault --env {env.name}`"
    )


def check_password_file(path: Path) -> None:
    """The vault password file: readable by its owner only, not a published example password."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SlakitError(
            f"vault password file {path}: mode {mode:04o} lets group or others use it "
            f"(needs 0600 or 0400): chmod 600 {path}"
        )
    if (
        not os.access(path, os.X_OK)
        and _digest(path.read_text().strip()) in EXAMPLE_PASSWORD_DIGESTS
    ):
        raise SlakitError(
            f"vault password file {path}: holds a published example vault password: choose "
            "your own (e.g. openssl rand -base64 32)"
        )


def check_files(env: Environment) -> Path | None:
    """Before decryption: a vault exists (not lab), is not an example, its password file is
    private. Returns the vault password file (None for the lab)."""
    vault = env.inventory / "group_vars" / "all" / "vault.yml"
    vaults = env.vault_files()
    if not env.is_lab and not vaults:
        if vault.is_file():
            raise SlakitError(
                f"{vault} is not vault-encrypted: encrypt it (`ansible-vault encrypt {vault}`) "
                f"or make a fresh one with `invoke secrets.vault --env {env.name}`"
            )
        raise SlakitError(
            f"{env.inventory}: no vault (group_vars/all/vault.yml) holds the {env.name} secrets: "
            f"make one with `ANSIBLE_VAULT_PASSWORD_FILE=<0600 file> invoke secrets.vault "
            f"--env {env.name}` (README, Secrets)"
        )
    for path in vaults:
        if _digest(path.read_bytes()) in EXAMPLE_VAULT_FILE_DIGESTS:
            raise SlakitError(f"{path} is a published example vault: {remedy(env)}")
    password_file = vault_password_file(env)
    if password_file:
        check_password_file(password_file)
    return password_file


def _source(env: Environment) -> str:
    if env.is_lab:
        return ".lab/secrets.yml"
    return ", ".join(str(p) for p in env.vault_files()) or str(env.inventory)


def check_values(env: Environment, controller_args: tuple[str, ...]) -> list[str]:
    """Resolve the secrets with Ansible on the controller (no host contacted) and check them;
    the first problem is one SlakitError line naming the file and the variable. Returns the
    hosts whose secrets did not resolve: the caller must see the role checks fail there."""
    from slakit import ansible

    # absent ones are null (the roles' argument specs name them); sla_password is vault-only
    sources = {**{name: name for name in SECRETS}, "sla_password": "vault_sla_password"}
    secrets = {k: f"{{{{ {v} | default(none) }}}}" for k, v in sources.items()}
    secrets["app_users"] = "{{ app_users | default(none) }}"
    plays = [
        {
            "name": "Check the secrets (on the controller)",
            "hosts": "all",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Check the secrets",
                    "ansible.builtin.command": {
                        # -B: no bytecode written into the service's checkout
                        "argv": [
                            "{{ ansible_playbook_python }}",
                            "-B",
                            "-m",
                            "slakit.secret_checks",
                        ],
                        "chdir": str(ansible.ROOT),
                        "stdin": "{{ slakit_secrets | to_json }}",
                    },
                    "vars": {"slakit_secrets": secrets},
                    "no_log": True,
                    "changed_when": False,
                    "failed_when": False,
                    "register": "slakit_secret_check",
                },
                {
                    "name": "Publish the problems",
                    "ansible.builtin.debug": {
                        "msg": "{{ {'rc': slakit_secret_check.rc,"
                        " 'problems': slakit_secret_check.stdout_lines} }}"
                    },
                },
            ],
        }
    ]
    out = ansible.run_plays(env.inventory, plays, args=controller_args)
    unresolved: list[str] = []
    for task in out.get("plays", [{}])[0].get("tasks", []):
        for host, result in sorted(task["hosts"].items()):
            if result.get("failed") or result.get("unreachable"):
                # A secret that does not template (a bad lookup): no_log hides Ansible's reason
                # here, but the roles' checks that follow use the same variables and name it.
                unresolved.append(host)
                continue
            report = result.get("msg") if task["task"]["name"] == "Publish the problems" else None
            if not isinstance(report, dict):
                continue
            if report.get("rc") != 0:
                raise SlakitError(f"secret checks on {host}: python -m slakit.secret_checks failed")
            for line in report.get("problems", []):
                raise SlakitError(f"{_source(env)}: {line}; {remedy(env)}")
    return unresolved


if __name__ == "__main__":
    raise SystemExit(main())
