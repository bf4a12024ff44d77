#!/usr/bin/env bash
# Set up this machine for slakit: Debian packages, the controller venv, a running Docker engine.
# Idempotent; safe to re-run. Debian 12 as root (the lab needs a Docker engine).
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(docker.io debootstrap redis-server redis-tools haproxy wrk git)
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The packaged redis-server and haproxy units are not wanted on the controller: tests start
# their own servers.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl disable --now redis-server haproxy >/dev/null 2>&1 || true
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
echo "setup: installing controller requirements into .venv"
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
.venv/bin/python -c "import ansible, invoke, docker, slakit_service" >/dev/null
# promtool for the alert rules' unit tests (tests/unit/sla/test_rules.py), no Prometheus server
bash scripts/promtool.sh

.venv/bin/invoke lab.engine
echo "setup: done (activate with: source .venv/bin/activate)"
