"""scaling/trigger: bounded, repeat-safe, recorded in the persist tier; TTIN/TTOU if enabled."""

from __future__ import annotations

from svc_harness import ServiceProcess, children, wait_until

TRIGGER = "/api/v1/scaling/trigger"


def _trigger(service: ServiceProcess, action: str) -> dict:
    reply = service.post(TRIGGER, headers=service.bearer(), json={"action": action})
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_signals_change_gunicorn_workers_within_bounds(redis_pair, start_service) -> None:
    service = start_service(
        *redis_pair,
        workers=1,
        SLAKIT_SCALE_SIGNAL="1",
        SLAKIT_SCALE_MIN_WORKERS="1",
        SLAKIT_SCALE_MAX_WORKERS="2",
        SLAKIT_SCALE_COOLDOWN_SECONDS="0",
    )
    up = _trigger(service, "up")
    assert up["applied"] is True and up["signal"] == "SIGTTIN"
    wait_until(lambda: len(children(service.proc.pid)) == 2, "a second worker")
    wait_until(lambda: service.stats()["workers"] == 2, "stats to see two workers")
    capped = _trigger(service, "up")
    assert capped["applied"] is False and capped["desired_workers"] == 2
    down = _trigger(service, "down")
    assert down["applied"] is True and down["signal"] == "SIGTTOU"
    wait_until(lambda: len(children(service.proc.pid)) == 1, "back to one worker")
    status = service.get("/api/v1/scaling/status").json()
    assert status["server"] == "gunicorn"
    assert status["desired_workers"] == 1
    assert [e["action"] for e in status["recent_events"]] == ["down", "up"]


def test_repeated_triggers_are_bounded_by_cooldown(redis_pair, start_service) -> None:
    l1, l2 = redis_pair
    service = start_service(l1, l2, SLAKIT_SCALE_MAX_WORKERS="8")
    first = _trigger(service, "up")
    assert first["applied"] is True and first["signal"] is None
    assert first["persisted"] is True
    for _ in range(5):
        again = _trigger(service, "up")
        assert again["applied"] is False
        assert again["reason"] == "cooldown"
    status = service.get("/api/v1/scaling/status").json()
    assert status["desired_workers"] == first["desired_workers"]
    assert len(status["recent_events"]) == 1
    assert l2.client().get("slakit:scale:desired_workers") == str(first["desired_workers"]).encode()
    auto = service.post(TRIGGER, headers=service.bearer())  # empty body: automatic decision
    assert auto.status_code == 200
    assert auto.json()["action"] in ("up", "down", "hold")
