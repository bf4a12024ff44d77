"""Smoke check run on an app host by the app's own Python: PING every Redis URL the app uses.

Reads the app's systemd EnvironmentFile (KEY="value" lines), so the credentials never leave
the host and never appear in argv. Prints one line per instance, without passwords; exits 1
when any instance does not answer an authenticated PING.
"""

import sys
from urllib.parse import urlsplit

import redis

URL_KEYS = {"REDIS_URL": "cache", "REDIS_PERSIST_URL": "persist"}


def read_env(path):
    values = {}
    with open(path, encoding="utf-8") as env_file:
        for line in env_file:
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                values[key] = value.strip('"').replace('\\"', '"').replace("\\\\", "\\")
    return values


def main(path):
    env = read_env(path)
    failed = 0
    for key, name in URL_KEYS.items():
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
