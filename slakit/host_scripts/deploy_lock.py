"""The deploy lock of an environment, on one of its hosts: take it, or release it.

    python3 deploy_lock.py take PATH --holder JSON --stale-after S [--break]
    python3 deploy_lock.py release PATH --token T

The lock is one file, created whole or not at all: the holder (JSON: token, owner, started,
command) is written to a private temporary file that is then hard-linked to PATH, which fails
with EEXIST when PATH exists (atomic on the host's filesystem). Prints one JSON object:
take: {"held": bool, "holder": {...} | null, "age_s": float, "stale": bool, "stale_after_s": float,
"broken": {...} | null}
("held" true: this caller holds it now; else "holder" holds it, for "age_s" seconds by the
host's clock, "stale" when that is over --stale-after); --break removes a stale lock first
(never a younger one). release: {"released": bool, "holder": {...} | null} (only the holder's
token releases it). Runs on managed hosts (slakit/lock.py): stdlib only, Python 3.9+.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time


def read(path: str) -> tuple[dict | None, float]:
    """(the holder, the lock's age in seconds); (None, 0) when there is no lock."""
    try:
        with open(path, encoding="utf-8") as f:
            age = time.time() - os.fstat(f.fileno()).st_mtime
            text = f.read()
    except FileNotFoundError:
        return None, 0.0
    try:
        holder = json.loads(text)
    except ValueError:
        holder = None
    if not isinstance(holder, dict):  # unreadable: still a lock, held by someone unknown
        holder = {"owner": "unknown (unreadable lock file)", "started": "", "command": ""}
    return holder, max(age, 0.0)


def link_new(path: str, holder: dict) -> bool:
    """Create PATH holding `holder`, atomically; False when PATH exists."""
    tmp = f"{path}.{holder['token']}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(holder, f, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def break_stale(path: str, seen: dict, token: str) -> bool:
    """Move the stale lock away, only if it is still the one `seen` (another breaker may have
    replaced it meanwhile: that one is put back)."""
    aside = f"{path}.broken-{token}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return True  # released meanwhile
    moved, _ = read(aside)
    if moved != seen:
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)  # someone's fresh lock: back where it was
        os.unlink(aside)
        return False
    os.unlink(aside)
    return True


def take(path: str, holder: dict, stale_after: float, force: bool) -> dict:
    os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
    broken = None
    for _ in range(2):  # at most: a stale lock broken, then one more try
        if link_new(path, holder):
            return {"held": True, "holder": holder, "age_s": 0.0, "stale": False, "broken": broken}
        current, age = read(path)
        if current is None:
            continue  # released between our link and our read
        stale = age > stale_after
        if not (force and stale) or broken is not None:
            return {"held": False, "holder": current, "age_s": age, "stale": stale, "broken": None}
        if break_stale(path, current, holder["token"]):
            broken = {**current, "age_s": age}
    current, age = read(path)
    return {"held": False, "holder": current, "age_s": age, "stale": False, "broken": broken}


def release(path: str, token: str) -> dict:
    current, _ = read(path)
    if current is None or current.get("token") != token:
        return {"released": False, "holder": current}
    os.unlink(path)
    return {"released": True, "holder": current}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["take", "release"])
    parser.add_argument("path")
    parser.add_argument("--holder", default="{}")
    parser.add_argument("--token", default="")
    parser.add_argument("--stale-after", type=float, default=3600.0)
    parser.add_argument("--break", dest="force", action="store_true")
    args = parser.parse_args(argv)
    if args.action == "take":
        holder = json.loads(args.holder)
        if not isinstance(holder, dict) or not str(holder.get("token", "")).isalnum():
            parser.error("--holder must be a JSON object with an alphanumeric token")
        result = take(args.path, holder, args.stale_after, args.force)
        result["stale_after_s"] = args.stale_after
    else:
        result = release(args.path, args.token)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
