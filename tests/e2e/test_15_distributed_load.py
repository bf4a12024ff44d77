"""Load from two machines of the lab (`invoke check.sla --from loadgen`: mon-1 and lb-1).

Story 1.1 (four endpoints at 25 req/s each, 12 s) is sent half by each load host from one
common start instant; the controller merges their HdrHistograms and judges. Required: each
host measured its half as the unprivileged user, the merged counts equal the sum of the
hosts' counts (sent, ok, histogram totals) and the planned slots, and the verdict equals a
single-controller run at the same total rate: PASS both. Printed: the figures.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from slakit.sla import histogram as hist
from tests.e2e.support import ROOT, invoke

HOSTS = ("mon-1", "lb-1")  # the lab inventory's loadgen group, in its order
STORY = "1.1"


def _check_sla(*args: str) -> tuple[dict, Path]:
    run = invoke("check.sla", "--env", "lab", "--story", STORY, *args, timeout=600)
    print(f"\n$ invoke check.sla --story {STORY} {' '.join(args)}\n{run.stdout[-2500:]}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    match = re.search(r"^reports: (\S+)/$", run.stdout, re.M)
    assert match, run.stdout
    out = ROOT / match.group(1)
    return json.loads((out / "report.json").read_text()), out


def test_two_load_hosts_give_the_verdict_of_one(deployed, on_host):
    began = time.monotonic()
    merged, out = _check_sla("--from", "loadgen")
    distributed_s = time.monotonic() - began
    shares = {h: json.loads((out / "hosts" / f"{h}.json").read_text()) for h in HOSTS}

    assert [(h["host"], h["share"]) for h in merged["load_hosts"]] == [
        ("mon-1", "1/2"),
        ("lb-1", "2/2"),
    ]
    for host, share in shares.items():
        assert share["user"] == "slakit-load", (host, share["user"])  # not root, not the deployer
        assert re.match(r"https?://172\.28\.50\.10\b", share["base_url"]), share["base_url"]
    story = next(s for s in merged["stories"] if s["id"] == STORY)
    figures = []
    for endpoint in story["endpoints"]:
        parts = [
            next(
                e
                for e in s["stories"][0]["measurement"]["endpoints"]
                if e["key"] == endpoint["key"]
            )
            for s in shares.values()
        ]
        sent = [p["sent"] for p in parts]
        ok = [p["ok"] for p in parts]
        counts = [hist.decode(p["latency"]).get_total_count() for p in parts]
        assert min(sent) > 0, (endpoint["key"], sent)
        assert endpoint["sent"] == sum(sent) == endpoint["planned"], (endpoint["key"], sent)
        assert endpoint["ok"] == sum(ok)
        assert hist.decode(endpoint["histogram"]).get_total_count() == sum(counts) == endpoint["ok"]
        figures.append(f"{endpoint['key']}: {' + '.join(map(str, sent))} = {endpoint['sent']}")
    assert sum(h["sent"] for h in merged["load_hosts"]) == story["samples"]
    # the run's directories are gone and nothing of the checker listens on the load hosts
    for host in HOSTS:
        assert on_host(host, "ls /opt/slakit-loadgen/runs") == ""  # the run id is gone
        assert "slakit-load" not in on_host(
            host, "ss -Hltnup | cat; ps -o user= -u slakit-load | cat"
        )

    began = time.monotonic()
    single, _ = _check_sla()
    single_s = time.monotonic() - began
    single_story = next(s for s in single["stories"] if s["id"] == STORY)
    print(
        f"per host and endpoint (mon-1 + lb-1 = merged): {'; '.join(figures)}\n"
        f"verdicts: distributed {merged['status']} (story {story['status']}, compliance "
        f"{story['compliance']:.2%}, p99 {story['p99_ms']:.2f} ms, {distributed_s:.0f} s), "
        f"single {single['status']} (story {single_story['status']}, compliance "
        f"{single_story['compliance']:.2%}, p99 {single_story['p99_ms']:.2f} ms, {single_s:.0f} s)"
    )
    assert single_story["samples"] == story["samples"]
    assert (merged["status"], story["status"]) == (single["status"], single_story["status"])
    assert merged["status"] == "pass"
