#!/usr/bin/env bash
# The test command README.md gives a new user: installs what the tests need (Debian packages,
# the browser tests' npm packages from their committed lock), then runs the whole test suite.
# Tests that need a missing prerequisite say so loudly; under CI=true that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: Chromium (and an emoji font) for the web app's browser tests; iproute2, iptables, nftables and
# miniupnpd-iptables for the simulated internet of network namespaces.
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v nft >/dev/null 2>&1 || need+=(nftables)
# The simulated UPnP router needs miniupnpd's legacy iptables backend: plain `miniupnpd`
# brings the nftables one, whose rules the test router's firewall does not use.
if command -v dpkg-query >/dev/null 2>&1; then
  dpkg-query -W -f='${Status}' miniupnpd-iptables 2>/dev/null | grep -q "install ok installed" \
    || need+=(miniupnpd-iptables)
else
  command -v miniupnpd >/dev/null 2>&1 || [ -x /usr/sbin/miniupnpd ] || need+=(miniupnpd-iptables)
fi
# The web app shows emoji (reactions, moods); without a colour emoji font the browser tests'
# screenshots show empty boxes.
if command -v dpkg-query >/dev/null 2>&1; then
  dpkg-query -W -f='${Status}' fonts-noto-color-emoji 2>/dev/null | grep -q "install ok installed" \
    || need+=(fonts-noto-color-emoji)
fi
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Debian packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "!! missing Debian packages: ${need[*]} (install them as root; tests that need them will fail under CI=true)" >&2
  fi
fi

# npm packages of the browser tests, from their committed lock (no browser download).
browser=crates/hearth-cli/tests/browser
if [ -f "$browser/package-lock.json" ]; then
  echo "== npm ci in $browser"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$browser" --no-audit --no-fund >/dev/null
fi

echo "== cargo test --workspace"
cargo test --workspace --locked "$@"
