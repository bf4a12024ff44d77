"""Load from several machines: each measures its share, the controller merges and judges.

A load host runs `python -m slakit.sla share --share I/N --start-at EPOCH ...`: it prepares
the stories as a single run would (tokens, requests), then for each story warms its own
connections, sleeps until the story's common start instant and sends every N-th slot of
each endpoint's schedule from slot I (the split `processes.py` makes between the processes
of one machine, one level up). Story k starts at EPOCH plus the planned length of the
stories before it (`story_starts`): every host computes the same instants from the same
spec. It writes what it measured, not a verdict: the raw `StoryMeasurement`s (counts,
exceedances of every threshold counted from the raw values, base64 HdrHistograms).

The controller (`merge_shares`, or `python -m slakit.sla merge`) checks that the shares
cover the slots exactly once (1/N .. N/N of one run), adds each endpoint's counts and
histograms (HdrHistograms merge exactly: the merged histogram is the histogram of all the
values) and judges the merged measurement with the code a single run uses
(`evaluate.story_result`, `engine.conclude`). The result says which host sent what.

Wall clocks: hosts agree on EPOCH through their CLOCK_REALTIME, so on real machines the
clocks must be NTP-synchronised; each share records what its kernel says of its clock
(`clock_state`: adjtimex's synchronised flag and estimated error).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import pwd
import socket
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slakit.errors import SlakitError
from slakit.sla import histogram as hist
from slakit.sla.control import fetch_cache_stats
from slakit.sla.engine import RunOptions, conclude, new_result
from slakit.sla.evaluate import story_result
from slakit.sla.http import client_ssl_context, parse_base_url
from slakit.sla.loop import run_loop
from slakit.sla.measure import StoryMeasurement
from slakit.sla.model import CacheReport, LoadHost, Result, StoryResult, read_json
from slakit.sla.prepare import PreparedStory, Tokens, prepare_story
from slakit.sla.processes import Share, measure_plans
from slakit.sla.spec import Spec

SHARE_FORMAT = "slakit-sla-share/1"
STORY_GAP_S = 3.0  # between one story's deadline and the next one's start: its warm-up


def parse_share(text: str) -> Share:
    """'I/N' (1-based, as on the command line) to a Share."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise SlakitError(f"--share {text!r}: expected I/N, e.g. 1/2") from None
    if count < 1 or not 1 <= index <= count:
        raise SlakitError(f"--share {text}: needs 1 <= I <= N")
    return Share(index - 1, count)


def story_span(run_s: float, timeout_s: float) -> float:
    """From a story's start instant to the next one's: its run, its last request's timeout, a
    second of slack and the next story's warm-up (STORY_GAP_S)."""
    return run_s + timeout_s + 1.0 + STORY_GAP_S


def story_starts(prepared: list[PreparedStory], start_at: float) -> list[float]:
    """Each story's common start instant (epoch seconds): the first at start_at, each next
    one after the previous one's longest run, its longest timeout and STORY_GAP_S."""
    starts, at = [], start_at
    for item in prepared:
        starts.append(at)
        if item.plans:
            at += story_span(
                max(p.run_time_s for p in item.plans), max(p.timeout_s for p in item.plans)
            )
    return starts


def planned_seconds(spec: Spec) -> float:
    """How long a share of the spec's stories runs from its start instant, at most."""
    total = 0.0
    for story in spec.stories:
        loads = [e.load for e in story.endpoints]
        if loads:
            run = max(
                (ld.requests / ld.rate if ld.requests is not None else float(ld.duration_s or 0))
                if ld.mode == "open"
                else float(ld.duration_s or 0)
                for ld in loads
            )
            total += story_span(run, max(ld.timeout_s for ld in loads))
    return total


class _Timex(ctypes.Structure):
    # struct timex's leading fields (Linux); the rest is reserved room for the kernel
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("rest", ctypes.c_char * 256),
    ]


_TIME_ERROR = 5  # adjtimex's answer when the clock is not synchronised
_STA_UNSYNC = 0x0040


def clock_state() -> str:
    """What the kernel says of this host's wall clock (adjtimex, read only)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return "unknown (no adjtimex)"
    if state < 0:
        return "unknown (adjtimex failed)"
    if state == _TIME_ERROR or tx.status & _STA_UNSYNC:
        return "not synchronised (no NTP discipline)"
    return f"synchronised, estimated error {tx.esterror / 1000:.2f} ms"


def spec_digest(spec: Spec) -> str:
    path = Path(spec.source)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


async def measure_share_async(
    spec: Spec, base_url: str, share: Share, start_at: float, options: RunOptions
) -> dict[str, Any]:
    """This host's share of every selected story, from epoch instant start_at; the
    share's JSON document (SHARE_FORMAT)."""
    target = parse_base_url(base_url, str(options.ca_file) if options.ca_file else None)
    if target.ca_file or target.scheme == "https":
        client_ssl_context(target.ca_file)
    env = os.environ if options.env is None else options.env
    tokens = Tokens(spec, target.url, env, target.ca_file)
    prepared = [
        await prepare_story(s, target, env, tokens, options.skip_missing_credentials)
        for s in spec.stories
    ]
    stories = []
    for item, at in zip(prepared, story_starts(prepared, start_at), strict=True):
        measurement = None
        if item.plans:
            start_mono = time.monotonic() + (at - time.time())
            measurement = await measure_plans(
                item.plans,
                target,
                options.processes,
                spec.validity.max_rate_per_process,
                share,
                start_mono,
            )
        stories.append(
            {
                "id": item.story.id,
                "start_at": at,
                "measured": [e.key for e in item.measured],
                "skipped": item.skipped,
                "planned": {p.key: p.slots if p.mode == "open" else 0 for p in item.plans},
                "measurement": measurement.to_wire() if measurement else None,
            }
        )
    cache = None
    if share.index == 0:
        cache = await fetch_cache_stats(target.url, spec.stats_path, target.ca_file)
    return {
        "format": SHARE_FORMAT,
        "host": socket.gethostname(),
        "user": pwd.getpwuid(os.geteuid()).pw_name,  # who ran the load (least privilege)
        "share": str(share),
        "base_url": target.url,
        "spec_sha256": spec_digest(spec),
        "target_ms": spec.target_ms,
        "start_at": start_at,
        "clock": clock_state(),
        "cache": None if cache is None else vars(cache),
        "stories": stories,
    }


def measure_share(
    spec: Spec, base_url: str, share: Share, start_at: float, options: RunOptions
) -> dict[str, Any]:
    """Blocking form of `measure_share_async`."""
    return run_loop(measure_share_async(spec, base_url, share, start_at, options))


def load_share(path: str | Path) -> dict[str, Any]:
    """A share file written by `python -m slakit.sla share`; one line on a bad one."""
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != SHARE_FORMAT:
        raise SlakitError(f"{path}: not a load share (expected format {SHARE_FORMAT})")
    return data


def _check_shares(spec: Spec, shares: Mapping[str, dict[str, Any]]) -> list[str]:
    """The story ids the shares measured; SlakitError unless they are 1/N..N/N of one run
    of this spec."""
    if not shares:
        raise SlakitError("no load shares to merge")
    parsed = {host: parse_share(str(data["share"])) for host, data in shares.items()}
    count = next(iter(parsed.values())).count
    indices = sorted(s.index for s in parsed.values())
    if any(s.count != count for s in parsed.values()) or indices != list(range(count)):
        got = ", ".join(f"{h}: {s}" for h, s in sorted(parsed.items()))
        raise SlakitError(
            f"the shares do not cover the load once (1/{count}..{count}/{count}): {got}"
        )
    first = next(iter(shares.values()))
    digest = spec_digest(spec)
    for host, data in shares.items():
        for key in ("base_url", "target_ms", "start_at"):
            if data[key] != first[key]:
                raise SlakitError(f"{host}: its share has another {key} ({data[key]!r})")
        if digest and data["spec_sha256"] and data["spec_sha256"] != digest:
            raise SlakitError(
                f"{host}: its share was measured with another spec than {spec.source}"
            )
        if [s["id"] for s in data["stories"]] != [s["id"] for s in first["stories"]]:
            raise SlakitError(f"{host}: its share has other stories")
    if first["target_ms"] != spec.target_ms:
        raise SlakitError(
            f"the shares used target {first['target_ms']:g} ms, the spec {spec.target_ms:g} ms"
        )
    return [s["id"] for s in first["stories"]]


def merge_story(
    spec: Spec, story_id: str, records: list[dict[str, Any]]
) -> tuple[StoryResult, StoryMeasurement | None]:
    """One story's records from every share, merged and judged as a single run's."""
    story = next(s for s in spec.stories if s.id == story_id)
    measured_keys = records[0]["measured"]
    if any(
        r["measured"] != measured_keys or r["planned"] != records[0]["planned"] for r in records
    ):
        raise SlakitError(f"story {story_id}: the shares measured different endpoints")
    parts = [StoryMeasurement.from_wire(r["measurement"]) for r in records if r["measurement"]]
    merged = None
    if parts:
        processes = sum(p.processes for p in parts)
        merged = StoryMeasurement.combine(parts)
        merged.processes = processes
    measured = [e for e in story.endpoints if e.key in measured_keys]
    result = story_result(
        spec, story, merged, measured, dict(records[0]["skipped"]), dict(records[0]["planned"])
    )
    return result, merged


def merge_shares(
    spec: Spec,
    shares: Mapping[str, dict[str, Any]],
    options: RunOptions | None = None,
    offsets_ms: Mapping[str, list[float]] | None = None,
) -> Result:
    """One result and one verdict from every host's share ({host: share document})."""
    options = options or RunOptions()
    ids = _check_shares(spec, shares)
    spec = spec.select(ids)
    hosts = sorted(shares, key=lambda h: parse_share(str(shares[h]["share"])).index)
    stories = [
        merge_story(spec, story_id, [shares[h]["stories"][k] for h in hosts])[0]
        for k, story_id in enumerate(ids)
    ]
    first = shares[hosts[0]]
    cache = CacheReport(**first["cache"]) if first.get("cache") else CacheReport(False, "not read")
    generated = datetime.fromtimestamp(first["start_at"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = new_result(spec, first["base_url"], generated, options, stories, cache)
    result.load_hosts = [_load_host(h, shares[h], (offsets_ms or {}).get(h)) for h in hosts]
    result.options["load_hosts"] = hosts
    conclude(result, spec, options)
    return result


def _load_host(host: str, data: dict[str, Any], offset_ms: list[float] | None) -> LoadHost:
    out = LoadHost(host=host, share=str(data["share"]), clock=str(data.get("clock", "")))
    lags, cpus, processes = [], [], 1
    for record in data["stories"]:
        if not record["measurement"]:
            continue
        m = StoryMeasurement.from_wire(record["measurement"])
        sent = sum(e.sent for e in m.endpoints)
        out.stories[record["id"]] = sent
        out.sent += sent
        out.ok += sum(e.ok for e in m.endpoints)
        lag = hist.percentile_ms(m.lag, 99.0)
        if lag is not None:
            lags.append(lag)
        cpus.append(m.client_cpu)
        processes = max(processes, m.processes)
    out.processes = processes
    out.lag_p99_ms = max(lags) if lags else None
    out.client_cpu = max(cpus) if cpus else None
    out.offset_ms = list(offset_ms or [])
    return out
