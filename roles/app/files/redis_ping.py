"""Smoke check run on an app host by the app's own Python: PING every Redis URL the app uses;
with REDIS_PERSIST_SENTINELS, the persist primary every Sentinel names (they must agree).

Reads the app's systemd EnvironmentFile (KEY="value" lines), so the credentials never leave
the host and never appear in argv. Prints one line per instance, without passwords; exits 1
when any instance does not answer an authenticated PING.
"""

import sys
from urllib.parse import urlsplit

import redis
from redis.sentinel import Sentinel

URL_KEYS = {"REDIS_URL": "cache", "REDIS_PERSIST_URL": "persist"}


def read_env(path):
    values = {}
    with open(path, encoding="utf-8") as env_file:
        for line in env_file:
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                values[key] = value.strip('"').replace('\\"', '"').replace("\\\\", "\\")
    return values


def ping_sentinel_primary(env):
    """(line, ok): the primary each Sentinel names for REDIS_PERSIST_MASTER, PINGed as the app."""
    master = env.get("REDIS_PERSIST_MASTER", "")
    auth = {"password": env.get("REDIS_PERSIST_SENTINEL_PASSWORD") or None}
    if env.get("REDIS_PERSIST_SENTINEL_USERNAME"):
        auth["username"] = env["REDIS_PERSIST_SENTINEL_USERNAME"]
    named = {}
    for entry in env["REDIS_PERSIST_SENTINELS"].split(","):
        host, _, port = entry.strip().rpartition(":")
        sentinel = Sentinel(
            [(host.strip("[]"), int(port))], sentinel_kwargs={**auth, "socket_timeout": 3}
        )
        try:
            named[entry] = sentinel.discover_master(master)
        except redis.RedisError as err:
            named[entry] = f"{type(err).__name__}"
    answers = set(named.values())
    if len(answers) != 1 or not isinstance(next(iter(answers)), tuple):
        return f"persist (master {master}): the Sentinels disagree or fail: {named}", False
    (address,) = answers
    where = f"persist ({address[0]}:{address[1]}, {master}; {len(named)} Sentinels agree)"
    client = redis.Redis(
        host=address[0],
        port=address[1],
        username=env.get("REDIS_PERSIST_USERNAME") or None,
        password=env.get("REDIS_PERSIST_PASSWORD") or None,
        socket_timeout=3,
        socket_connect_timeout=3,
    )
    try:
        client.ping()
        return f"{where}: PONG", True
    except redis.RedisError as err:
        return f"{where}: {type(err).__name__}: {str(err).split(chr(10))[0][:120]}", False


def main(path):
    env = read_env(path)
    failed = 0
    for key, name in URL_KEYS.items():
        if key == "REDIS_PERSIST_URL" and env.get("REDIS_PERSIST_SENTINELS"):
            line, ok = ping_sentinel_primary(env)
            print(line)
            failed += not ok
            continue
        url = env.get(key)
        if not url:
            print(f"{name}: {key} is not set in {path}")
            failed += 1
            continue
        where = f"{name} ({urlsplit(url).hostname}:{urlsplit(url).port}, {key})"
        try:
            redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3).ping()
            print(f"{where}: PONG")
        except redis.RedisError as err:
            print(f"{where}: {type(err).__name__}: {str(err).split(chr(10))[0][:120]}")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
