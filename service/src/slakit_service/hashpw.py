"""`python -m slakit_service.hashpw`: read a password on stdin, print its scrypt hash."""

from __future__ import annotations

import sys

from .auth import hash_password


def main() -> int:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("error: no password on stdin", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
