#!/usr/bin/env bash
# Put promtool (rule checks and rule unit tests: tests/unit/sla/test_rules.py) in build/tools/.
# Only the binary: installing Debian's `prometheus` package would start a Prometheus server on
# the controller, so its .deb is downloaded and promtool alone extracted. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

PROMTOOL=build/tools/promtool
if [ -x "$PROMTOOL" ] && "$PROMTOOL" --version >/dev/null 2>&1; then
  exit 0
fi
echo "setup: extracting promtool from Debian's prometheus package into $PROMTOOL"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"  # apt downloads as _apt where it can
(cd "$tmp" && { apt-get download -qq prometheus 2>/dev/null ||
  { apt-get update -qq && apt-get download -qq prometheus; }; })
dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root"
mkdir -p "$(dirname "$PROMTOOL")"
install -m 0755 "$tmp/root/usr/bin/promtool" "$PROMTOOL"
"$PROMTOOL" --version | head -n 1
