"""Load from several machines without a lab: the merge is exact, the shares cover every slot
once, and two load processes started as two hosts would be (`python -m slakit.sla share`,
one common start instant) give the verdict of a single run at the same total rate."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from slakit.errors import SlakitError
from slakit.sla import RunOptions, run_checks
from slakit.sla import histogram as hist
from slakit.sla.distributed import load_share, merge_shares, parse_share
from slakit.sla.measure import EndpointMeasurement
from slakit.sla.processes import Share
from slakit.sla.schedule import arrival_times
from slakit.sla.spec import load_spec
from slakit.status import Status

SMALL_SPEC = Path(__file__).parent / "data" / "small_spec.yml"
PERCENTILES = (0.0, 1.0, 25.0, 50.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0)


def _values(seed: int, n: int) -> list[int]:
    """Latencies in µs with a long tail: 1 µs .. about 40 s."""
    rng = random.Random(seed)
    return [max(1, round(rng.lognormvariate(8.0, 1.6))) for _ in range(n)]


def _measurement(key: str, values: list[int], threshold: int) -> EndpointMeasurement:
    m = EndpointMeasurement(key=key, sent=len(values), ok=len(values))
    for v in values:
        m.latency.record_value(v)
    m.exceed = {threshold: sum(1 for v in values if v > threshold)}
    return m


@pytest.mark.parametrize("hosts", [2, 3, 7])
def test_merged_histograms_are_the_histogram_of_all_values(hosts):
    values = _values(hosts, 20_011)
    threshold = 15_000
    whole = _measurement("GET /x", values, threshold)
    # each host takes every n-th slot, and its share travels as JSON (base64 HdrHistogram)
    shares = [
        EndpointMeasurement.from_wire(
            json.loads(json.dumps(_measurement("GET /x", values[i::hosts], threshold).to_wire()))
        )
        for i in range(hosts)
    ]
    merged = shares[0]
    counts = [s.sent for s in shares]
    exceeds = [s.exceed[threshold] for s in shares]
    for other in shares[1:]:
        merged.merge(other)
    assert merged.sent == sum(counts) == len(values)
    assert merged.exceed[threshold] == sum(exceeds) == whole.exceed[threshold]
    assert merged.latency.get_total_count() == whole.latency.get_total_count() == len(values)
    for p in PERCENTILES:
        assert merged.latency.get_value_at_percentile(p) == whole.latency.get_value_at_percentile(
            p
        ), p
    assert merged.latency.get_mean_value() == whole.latency.get_mean_value()
    assert hist.count_above(merged.latency, threshold) == hist.count_above(whole.latency, threshold)


def test_hosts_and_their_processes_take_every_slot_once():
    slots, hosts, processes = 1000, 3, 2
    taken = []
    for h in range(hosts):
        for p in range(processes):  # as processes.measure_in_processes splits a host's share
            index, stride = h + hosts * p, hosts * processes
            taken += [round(t * 1000) for t in arrival_times(0.0, 1000.0, slots, 0, index, stride)]
    assert sorted(taken) == list(range(slots))


def test_share_arguments():
    assert parse_share("2/3") == Share(1, 3)
    assert str(Share(1, 3)) == "2/3"
    for bad in ("0/2", "3/2", "1", "a/b", "1/0"):
        with pytest.raises(SlakitError):
            parse_share(bad)


def _spec_file(directory: Path) -> Path:
    """The small spec with a 1 s target and the client's limits relaxed: this test compares
    verdicts on a shared 2-core machine, whose stalls must not decide one of the runs."""
    data = yaml.safe_load(SMALL_SPEC.read_text())
    data["defaults"]["target_ms"] = 1000
    data["validity"] = {"max_schedule_lag_p99_ms": 1000, "max_client_cpu": 1.0}
    path = directory / "spec.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def _share(spec: Path, url: str, index: int, start_at: float, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "slakit.sla",
            "share",
            "--base-url",
            url,
            "--spec",
            str(spec),
            "--story",
            "1.1",
            "--share",
            f"{index}/2",
            "--start-at",
            str(start_at),
            "--out",
            str(out),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def two_shares(delay_server, tmp_path_factory):
    """Two share processes against a loopback server, one start instant; their files."""
    url = delay_server(1.0, 2.0)
    out = tmp_path_factory.mktemp("shares")
    spec = _spec_file(out)
    start_at = time.time() + 4.0  # both import, prepare and warm up before it
    procs = [_share(spec, url, i, start_at, out / f"h{i}.json") for i in (1, 2)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    shares = {}
    for i in (1, 2):
        data = load_share(out / f"h{i}.json")
        data["host"] = f"h{i}"  # one machine here: name the shares as two hosts
        shares[f"h{i}"] = data
    return spec, url, shares


def test_merged_counts_are_the_sum_and_the_verdict_is_a_single_runs(two_shares):
    spec_file, url, shares = two_shares
    spec = load_spec(spec_file)
    merged = merge_shares(spec, shares)
    story = merged.stories[0]
    planned = {e.key: e.planned for e in story.endpoints}
    for endpoint in story.endpoints:
        per_host = [
            e["sent"]
            for s in shares.values()
            for e in s["stories"][0]["measurement"]["endpoints"]
            if e["key"] == endpoint.key
        ]
        assert len(per_host) == 2 and min(per_host) > 0
        assert endpoint.sent == sum(per_host) == planned[endpoint.key]  # every slot once
        assert hist.decode(endpoint.histogram).get_total_count() == endpoint.ok
    assert [h.host for h in merged.load_hosts] == ["h1", "h2"]
    assert sum(h.sent for h in merged.load_hosts) == story.samples
    assert story.validity.processes == 2
    single = run_checks(spec, url, ["1.1"], options=RunOptions(progress=False))
    assert single.stories[0].samples == story.samples
    assert (
        (merged.status, merged.exit_code)
        == (single.status, single.exit_code)
        == (
            Status.PASS,
            0,
        )
    )


def test_shares_that_do_not_cover_the_load_once_are_refused(two_shares):
    spec_file, _, shares = two_shares
    spec = load_spec(spec_file)
    with pytest.raises(SlakitError, match="do not cover the load once"):
        merge_shares(spec, {"h1": shares["h1"]})
    twice = {"h1": shares["h1"], "h3": {**shares["h1"], "host": "h3"}}
    with pytest.raises(SlakitError, match="do not cover the load once"):
        merge_shares(spec, twice)
    other = {**shares, "h2": {**shares["h2"], "target_ms": 20}}
    with pytest.raises(SlakitError, match="another target_ms"):
        merge_shares(spec, other)
