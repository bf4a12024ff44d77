"""The infra suite catches what it claims to check: properties are changed on lab hosts, each
by one mutant, and the check for each must fail naming host, property, expected and actual;
then every host is restored.

Each mutant is a plausible drift or role bug (a sysctl reset, a Redis directive changed at
runtime, the app user's ACL widened, a gunicorn setting rewritten, an HAProxy limit changed on
the admin socket, a unit's hardening dropped by a drop-in). The mutants are in place together
and their checks run in one pytest run (each check collects every mismatch it finds, so two
mutants under one check are both named): one run instead of one per mutant, as each run costs
an inventory load and a role-variable play (~15 s). After every mutant is restored, the same
checks run once more and must all pass: the lab is left as the deploy made it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.e2e.support import run

INVENTORY = "inventories/lab"
REDIS_ADMIN = "set -a; . /root/.redis-admin.env; set +a; redis-cli --no-auth-warning --user admin"
HAPROXY = "socat stdio /run/haproxy/admin.sock"
GUNICORN_CONF = "/etc/slakit-service/gunicorn.conf.py"
DROPIN = "/run/systemd/system/redis@persist.service.d"


@dataclass(frozen=True)
class Mutant:
    role: str
    host: str
    check: str  # tests/infra node id
    names: str  # what the failure message must contain
    mutate: str  # shell on the host; {saved} is what `save` printed
    restore: str
    save: str = "true"


MUTANTS = (
    Mutant(
        "host_tuning",
        "app-1",
        "test_host_tuning.py::test_sysctl_keys_hold",
        "app-1: net.core.somaxconn: expected '65536', actual '4096'",
        "sysctl -qw net.core.somaxconn=4096",
        "sysctl -qw net.core.somaxconn={saved}",
        save="sysctl -n net.core.somaxconn",
    ),
    Mutant(
        "redis",
        "redis-1",
        "test_redis.py::test_live_config_values",
        "redis-1: cache CONFIG tcp-keepalive: expected '300', actual '60'",
        f"{REDIS_ADMIN} -p 6379 CONFIG SET tcp-keepalive 60",
        f"{REDIS_ADMIN} -p 6379 CONFIG SET tcp-keepalive {{saved}}",
        save=f"{REDIS_ADMIN} -p 6379 CONFIG GET tcp-keepalive | tail -1",
    ),
    Mutant(
        "redis",
        "redis-1",
        "test_redis.py::test_live_config_values",
        "redis-1: persist CONFIG maxmemory: expected",
        f"{REDIS_ADMIN} -p 6380 CONFIG SET maxmemory 1gb",
        f"{REDIS_ADMIN} -p 6380 CONFIG SET maxmemory {{saved}}",
        save=f"{REDIS_ADMIN} -p 6380 CONFIG GET maxmemory | tail -1",
    ),
    Mutant(
        "redis",
        "redis-1",
        "test_redis.py::test_app_user_permissions",
        "redis-1: cache app: EVAL return 1 0 (inside ['slakit:*']): expected 'denied', actual 'OK'",
        f"{REDIS_ADMIN} -p 6379 ACL SETUSER app +@scripting",
        f"{REDIS_ADMIN} -p 6379 ACL SETUSER app -@scripting",
    ),
    Mutant(
        "redis",
        "redis-1",
        "test_redis.py::test_unit_hardening",
        "redis-1: redis@persist.service NoNewPrivileges: expected 'yes', actual 'no'",
        f"mkdir -p {DROPIN} && printf '[Service]\\nNoNewPrivileges=no\\n' > {DROPIN}/zz-mutant.conf"
        " && systemctl daemon-reload",
        f"rm -rf {DROPIN} && systemctl daemon-reload",
    ),
    Mutant(
        "app",
        "app-1",
        "test_app.py::test_gunicorn_settings",
        "app-1: gunicorn keepalive: expected 75, actual 5",
        f"cp -p {GUNICORN_CONF} /root/gunicorn.conf.saved"
        f" && sed -i 's/^keepalive = .*/keepalive = 5/' {GUNICORN_CONF}",
        f"cp -p /root/gunicorn.conf.saved {GUNICORN_CONF} && rm /root/gunicorn.conf.saved",
    ),
    Mutant(
        "loadbalancer",
        "lb-1",
        "test_loadbalancer.py::test_backend_settings",
        "lb-1: server app-2 maxconn: expected 1024, actual '10'",
        f"echo 'set maxconn server app/app-2 10' | {HAPROXY}",
        f"echo 'set maxconn server app/app-2 {{saved}}' | {HAPROXY}",
        save=f"echo 'show stat' | {HAPROXY} | awk -F, '$1==\"app\" && $2==\"app-2\" {{print $7}}'",
    ),
)


def infra(hosts: list[str], checks: list[str]):
    nodes = [f"tests/infra/{c}" for c in checks]
    return run(
        "pytest",
        *nodes,
        "--hosts=" + ",".join(f"ansible://{h}" for h in hosts),
        f"--ansible-inventory={INVENTORY}",
        "-q",
        "-p",
        "no:cacheprovider",
        timeout=600,
    )


def test_each_mutant_is_caught_and_the_host_restored(on_host):
    hosts = sorted({m.host for m in MUTANTS})
    checks = sorted({m.check for m in MUTANTS})
    saved: list[tuple[Mutant, str]] = []
    try:
        for mutant in MUTANTS:
            value = on_host(mutant.host, mutant.save)
            saved.append((mutant, value))  # restored from here on, even if mutating fails
            on_host(mutant.host, mutant.mutate.format(saved=value))
        result = infra(hosts, checks)
    finally:
        for mutant, value in reversed(saved):
            on_host(mutant.host, mutant.restore.format(saved=value))
    output = result.stdout + result.stderr
    caught = [f"{m.role}: {m.names}" for m in MUTANTS if m.names in output]
    missed = [f"{m.check} on {m.host}" for m in MUTANTS if m.names not in output]
    print(f"\nproperties mutated: {len(MUTANTS)}, caught: {len(caught)}")
    for line in caught:
        print(f"  caught  {line}")
    assert result.returncode == 1, f"exit {result.returncode}:\n{output[-3000:]}"
    assert not missed, f"mutants not caught: {missed}\n{output[-3000:]}"
    # restored: the same checks pass again on every mutated host
    again = infra(hosts, checks)
    assert again.returncode == 0, f"not restored:\n{again.stdout[-3000:]}"
