"""The persist tier's failover drill on the deployed lab, as a user runs it: `invoke drill.failover
--env lab` stops `redis@persist` on the primary under open-loop durable writes through the load
balancer (slakit/failover.py), Sentinel promotes the replica, the stopped instance is started
again and rejoins as a replica, and the ledger is read back.

Printed (JUnit system-out): the drill's line (failover seconds, seconds until writes were
acknowledged again, requests sent / acknowledged / refused / failed in transport, acknowledged
vs present, lost, old and new primary) and what the Redis hosts themselves report after it.
Required: no acknowledged write lost, a promotion, writes acknowledged again, the old primary an
online replica of the new one (read by the drill through the service's health, and here on the
hosts with redis-cli), and no transport failure through the load balancer: the app hosts stay
up for the whole drill and the service answers a write it cannot make durable with a 503 at
once (or after its WAIT timeout), so a request without an HTTP answer would be a bug in the
edge or the service, not a cost of the failover. Every bound is the drill's own (generous, for
a slow 2-core machine); nothing here is timed tightly.
"""

from __future__ import annotations

import json
import re

from slakit import envs, stack
from tests.e2e.support import ROOT, invoke

LEDGER_DB = 6  # app_redis_persist_db (the lab keeps the default)


def replication_of(on_host, host: str, fact: dict, port: int) -> dict[str, str]:
    """INFO replication of the instance on `port`, as the role's admin user reads it."""
    text = on_host(
        host,
        f"set -a; . {fact['admin_env_file']}; set +a; "
        f"redis-cli --user {fact['admin_user']} -p {port} INFO replication",
    )
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def test_the_persist_primary_fails_over_without_losing_an_acknowledged_write(deployed, on_host):
    drill = invoke("drill.failover", "--env", "lab", timeout=1500)
    print(f"\n{drill.stdout[-4000:]}{drill.stderr[-2000:]}")
    match = re.search(r"^report: (\S+)$", drill.stdout, re.M)
    assert match and drill.returncode in (0, 1), (drill.returncode, drill.stderr[-2000:])
    data = json.loads((ROOT / match.group(1)).read_text())
    figures = data["figures"]

    lab = stack.load(envs.resolve("lab"))
    new, old = data["new_primary"], data["old_primary"]
    port = int(str(data["old_address"]).rsplit(":", 1)[1])
    fact = lab.published(old, "redis")
    on_old = replication_of(on_host, old, fact, port)
    on_new = replication_of(on_host, new, lab.published(new, "redis"), port)
    key = f"slakit:drill:ledger:{data['run']}"
    held = on_host(
        new,
        f"set -a; . {fact['admin_env_file']}; set +a; "
        f"redis-cli --user {fact['admin_user']} -p {port} -n {LEDGER_DB} SCARD {key}",
    )
    print(
        f"after the drill: {new} role {on_new.get('role')}, {on_new.get('connected_slaves')} "
        f"replica(s); {old} role {on_old.get('role')}, following "
        f"{on_old.get('master_host')}:{on_old.get('master_port')}, link "
        f"{on_old.get('master_link_status')}; ledger on {new}: {held} ids"
    )

    assert data["failover_s"] is not None, data["problems"]
    assert new and new != old, (old, new)
    assert figures["resumed_s"] is not None, data["problems"]
    assert figures["acked_after_stop"] > 0
    assert figures["lost"] == [], f"acknowledged writes lost: {figures['lost'][:20]}"
    assert figures["acked"] <= figures["present"] == int(held)
    assert data["rejoined"] is True, data["problems"]
    assert on_old.get("role") == "slave" and on_old.get("master_link_status") == "up", on_old
    assert on_old.get("master_host") == lab.inventory["_meta"]["hostvars"][new]["ansible_host"]
    assert on_new.get("role") == "master", on_new
    assert figures["transport"] == {}, figures["transport"]
    assert set(figures["refused"]) <= {"not_replicated", "store_unavailable"}, figures["refused"]
    assert drill.returncode == 0 and data["passed"] is True, data["problems"]
    assert data["line"].startswith("failover drill (lab")
