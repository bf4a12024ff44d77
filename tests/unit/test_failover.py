"""The failover drill's pure parts (slakit/failover.py): acknowledged vs present, the time until
writes resume, the summary line and the verdict, from recorded samples; the health it reads,
shaped by the service's own summary of INFO replication; the inventory's bad input; and the
open-loop load (slakit/load.py) against a small HTTP server on loopback, bounded in count and
time. The drill itself runs against the lab in tests/e2e/test_13_failover_drill.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from slakit_service.replication import summarize
from stand_in import serving

from slakit import failover, load
from slakit.envs import Environment
from slakit.errors import SlakitError

STOP = 100.0  # the stop's monotonic time in the samples below


def sample(at: float, n: int, status: int = 200, error: str = "") -> load.Sample:
    return load.Sample(STOP + at, f"w{n:06d}", status, error)


def drill_samples() -> list[load.Sample]:
    """Acked before the stop, refused while the primary is down and until the old one rejoins
    (store_unavailable, then not_replicated), one transport failure, then acked again."""
    out = [sample(-5 + i * 0.1, i) for i in range(50)]  # w0..w49 acked
    out += [sample(0.5 + i * 0.1, 50 + i, 503, "store_unavailable") for i in range(10)]
    out += [sample(1.5 + i * 0.1, 60 + i, 503, "not_replicated") for i in range(20)]
    out.append(sample(3.6, 80, 0, "ServerDisconnectedError"))
    out += [sample(3.7 + i * 0.1, 81 + i) for i in range(20)]  # w81..w100 acked
    return out


def test_figures_count_acked_present_lost_and_the_time_to_resume() -> None:
    samples = drill_samples()
    present = {s.tag for s in samples if s.ok} | {"w000060", "w000061"}  # kept, never acked
    present.discard("w000003")  # an acknowledged write the new primary does not have
    f = failover.figures(samples, STOP, present)
    assert (f.sent, f.acked, f.present) == (101, 70, 71)
    assert f.lost == ["w000003"]
    assert f.kept_unacked == 2
    assert f.refused == {"store_unavailable": 10, "not_replicated": 20}
    assert f.transport == {"ServerDisconnectedError": 1}
    assert f.resumed_s == pytest.approx(3.7)
    assert f.acked_after_stop == 20


def test_writes_that_never_resume_have_no_resume_time() -> None:
    samples = [s for s in drill_samples() if s.sent < STOP + 3.6]
    f = failover.figures(samples, STOP, {s.tag for s in samples if s.ok})
    assert f.resumed_s is None and f.lost == [] and f.acked_after_stop == 0
    assert failover.first_ack_after(samples, STOP) is None
    assert failover.first_ack_after(drill_samples(), STOP) == pytest.approx(STOP + 3.7)


def result(**changes) -> failover.FailoverResult:
    r = failover.FailoverResult(
        "lab", "failover-x", 50, "redis-1", "172.28.50.31:6380", "redis-2", "172.28.50.32:6380"
    )
    r.failover_s, r.rejoined = 6.25, True
    samples = drill_samples()
    r.figures = failover.figures(samples, STOP, {s.tag for s in samples if s.ok})
    for key, value in changes.items():
        setattr(r, key, value)
    failover.judge(r)
    return r


def test_a_clean_drill_passes_and_its_line_has_every_figure() -> None:
    r = result()
    assert r.passed, r.problems
    assert r.line() == (
        "failover drill (lab, run failover-x): redis-1 -> redis-2; failover 6.2 s, writes "
        "acknowledged again after 3.7 s; requests 101 at 50/s: acknowledged 70, refused 30 "
        "(not_replicated 20, store_unavailable 10), transport failures 1 "
        "(ServerDisconnectedError 1); acknowledged 70 vs present 70, lost 0; old primary "
        "rejoined as a replica: yes"
    )


def test_loss_no_promotion_no_resumption_and_no_rejoin_fail_the_drill() -> None:
    samples = drill_samples()
    acked = {s.tag for s in samples if s.ok}
    lossy = result(figures=failover.figures(samples, STOP, acked - {"w000001", "w000090"}))
    assert lossy.problems == ["2 acknowledged writes missing from the ledger: w000001, w000090"]
    assert "lost 2" in lossy.line()
    stalled = [s for s in samples if s.sent < STOP + 3.6]
    never = result(figures=failover.figures(stalled, STOP, acked))
    assert never.problems == ["no write sent after the stop was acknowledged"]
    assert "writes acknowledged again after never" in never.line()
    unpromoted = result(failover_s=None, new_primary=None, rejoined=False)
    assert unpromoted.problems == ["no other primary named by the health within 120 s of the stop"]
    assert "redis-1 -> ?; failover none" in unpromoted.line()
    apart = result(rejoined=False)
    assert apart.problems == ["redis-1 is not an online replica of the primary within 120 s"]


def test_persist_from_the_health_the_service_answers() -> None:
    info = {
        "role": "master",
        "connected_slaves": 1,
        "master_repl_offset": 1200,
        "slave0": {"ip": "172.28.50.32", "port": 6380, "state": "online", "offset": 1100},
    }
    replication = summarize("172.28.50.31:6380", info, 1)
    health = {"tiers": {"l2": {"status": "up", "primary": "172.28.50.31:6380",
                               "replication": replication}}}  # fmt: skip
    persist = failover.Persist.parse(health)
    assert persist.primary == "172.28.50.31:6380" and persist.status == "ok"
    assert persist.has_online_replica("172.28.50.32")
    assert not persist.has_online_replica("172.28.50.31")
    # the primary down: the service reports the replication unknown and names no primary
    down = {"tiers": {"l2": {"status": "down", "replication": {"status": "unknown"}}}}
    assert failover.Persist.parse(down) == failover.Persist(None, "unknown", ())
    # a service without Sentinel or WAIT has no replication section at all
    plain = failover.Persist.parse({"tiers": {"l2": {"status": "up"}}})
    assert (plain.primary, plain.status) == (None, "missing")


def test_an_address_maps_to_its_inventory_host() -> None:
    t = failover.Target(
        "lab", "lb-1", "https://172.28.50.10", None,
        {"redis-1": "172.28.50.31", "redis-2": "172.28.50.32"},
    )  # fmt: skip
    assert t.host_of("172.28.50.32:6380") == "redis-2"
    assert t.host_of("172.28.50.31") == "redis-1"
    assert t.host_of("10.0.0.1:6380") is None


def test_the_drill_stops_only_the_primary_the_health_and_redis_agree_on() -> None:
    t = failover.Target(
        "lab", "lb-1", "https://172.28.50.10", None,
        {"redis-1": "172.28.50.31", "redis-2": "172.28.50.32"},
    )  # fmt: skip
    health = failover.Persist("172.28.50.32:6380", "ok", (("172.28.50.31:6380", "online"),))
    assert failover.primary_disagreement(t, health, {"redis-1": "slave", "redis-2": "master"}) == ""
    # just after a failover: the service still names redis-2, Redis says redis-1 took over
    stale = failover.primary_disagreement(t, health, {"redis-1": "master", "redis-2": "slave"})
    assert stale == (
        "the health names redis-2 (172.28.50.32:6380) the persist primary; "
        "Redis: redis-1 master, redis-2 slave"
    )
    # two masters (a split) or an unanswered host: not settled either
    assert failover.primary_disagreement(t, health, {"redis-1": "master", "redis-2": "master"})
    assert "redis-1 no answer" in failover.primary_disagreement(t, health, {"redis-2": "master"})
    assert "names no persist primary" in failover.primary_disagreement(t, None, {})
    elsewhere = failover.Persist("10.0.0.9:6380", "ok", ())
    assert "no host of group redis" in failover.primary_disagreement(t, elsewhere, {})


def write_inventory(tmp_path: Path, redis: list[str], lb: bool = True) -> Environment:
    groups = {"app": {"hosts": {"app-1": {"ansible_host": "192.0.2.21"}}}}
    groups["redis"] = {"hosts": {h: {"ansible_host": f"192.0.2.{31 + i}"} for i, h in
                                 enumerate(redis)}}  # fmt: skip
    if lb:
        groups["lb"] = {"hosts": {"lb-1": {"ansible_host": "192.0.2.10"}}}
    (tmp_path / "hosts.yml").write_text(json.dumps({"all": {"children": groups}}))
    return Environment("drilltest", tmp_path)


def test_bad_input_is_one_line_with_exit_2_before_any_host_is_contacted(tmp_path: Path) -> None:
    with pytest.raises(SlakitError) as one:
        failover.target(write_inventory(tmp_path, ["redis-1"]))
    assert one.value.exit_code == 2
    assert str(one.value) == (
        "env drilltest: the failover drill needs at least two hosts in group redis (a primary "
        "and a replica of redis@persist); it has 1: redis-1"
    )
    with pytest.raises(SlakitError) as no_lb:
        failover.target(write_inventory(tmp_path, ["redis-1", "redis-2"], lb=False))
    assert no_lb.value.exit_code == 2 and "group lb has no hosts" in str(no_lb.value)
    assert "\n" not in str(no_lb.value)
    with pytest.raises(SlakitError) as rate:
        failover.run(write_inventory(tmp_path, ["redis-1", "redis-2"]), rate=500)
    assert rate.value.exit_code == 2 and str(rate.value).startswith("--rate 500:")


def test_the_report_has_the_figures_and_every_request(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # reports/ is relative to the checkout
    r = result()
    r.samples, r.load_started = drill_samples(), STOP - 5
    path = failover.write_report(Environment("lab", Path("inventories/lab")), r)
    assert path.parent.parent == Path("reports/lab/drill-failover")
    data = json.loads(path.read_text())
    assert data["passed"] is True and data["line"] == r.line()
    assert data["figures"]["lost"] == [] and data["figures"]["acked"] == 70
    assert len(data["requests"]) == 101
    assert data["requests"][0] == [0.0, "w000000", 200, ""]
    assert data["requests"][-1][1:] == ["w000100", 200, ""]


def test_error_codes_come_from_the_body_else_the_status() -> None:
    assert load.error_code(200, b"{}") == ""
    assert load.error_code(503, b'{"error":"not_replicated","detail":"..."}') == "not_replicated"
    assert load.error_code(503, b"<html>No server is available</html>") == "HTTP 503"
    assert load.error_code(502, b'{"error": ""}') == "HTTP 502"


# --- the open-loop load against a real HTTP server on loopback ---------------------------------


def ledgerish(_method: str, _path: str, headers: Message, raw: bytes) -> tuple[int, Any]:
    """Acknowledges even ids, refuses odd ones the way the service does (503, JSON error)."""
    ok = int(json.loads(raw)["id"][1:]) % 2 == 0 and headers.get("Authorization") == "Bearer t"
    return (200, {"added": True}) if ok else (503, {"error": "not_replicated"})


@pytest.fixture
def server() -> Iterator[str]:
    with serving(ledgerish) as url:
        yield url


def writes(i: int) -> load.Request:
    return load.Request("POST", "/w", {"id": f"w{i}"}, {"Authorization": "Bearer t"}, f"w{i}")


def test_the_load_stops_at_its_count_and_records_each_outcome(server: str) -> None:
    started = time.monotonic()
    with load.OpenLoopLoad(server, True, writes, rate=200, max_seconds=10, max_requests=20) as d:
        deadline = time.monotonic() + 5
        while d.sending and time.monotonic() < deadline:
            time.sleep(0.01)
    assert d.sent == 20 and len(d.samples) == 20
    assert time.monotonic() - started < 5
    assert sorted(s.tag for s in d.samples if s.ok) == sorted(f"w{i}" for i in range(0, 20, 2))
    assert {s.error for s in d.samples if not s.ok} == {"not_replicated"}
    sends = sorted(s.sent for s in d.samples)
    assert sends[-1] - sends[0] >= 19 / 200 * 0.9  # on schedule, not all at once


def test_the_load_stops_at_its_time_bound_and_counts_refused_connections() -> None:
    with load.OpenLoopLoad(
        "http://127.0.0.1:9", True, writes, rate=20, max_seconds=0.3, max_requests=1000,
        timeout=2,
    ) as d:  # fmt: skip
        deadline = time.monotonic() + 5
        while d.sending and time.monotonic() < deadline:
            time.sleep(0.01)
    assert 1 <= d.sent <= 8
    assert len(d.samples) == d.sent and all(s.transport for s in d.samples)
    assert {s.error for s in d.samples} == {"ClientConnectorError"}
