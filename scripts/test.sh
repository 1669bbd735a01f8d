#!/usr/bin/env bash
# The one test command (README "Run the tests"): installs the test dependencies, builds
# the cached Kubernetes test binaries when Go is present, then runs every gate:
# ruff (lint + format), mypy on the package, pytest (unit + integration).
#
# Prerequisites: Python 3.11+, Java 17+. Optional, else those tests skip with a reason:
# Go 1.26 (real Kubernetes control plane), root + openssh-server + iproute2 (SSH hosts in
# network namespaces), shellcheck (node scripts). As root on Debian/Ubuntu this script
# installs the apt packages itself.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing sparkube with its test dependencies"
python3 -m pip install --disable-pip-version-check -q -e '.[test]'
python3 -m pip check

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  need=()
  command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
  command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
  if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

if command -v go >/dev/null 2>&1 && [ -f tools/kube/build.sh ]; then
  echo "== Kubernetes test binaries (cached after the first build)"
  bash tools/kube/build.sh || echo "!! Kubernetes test binaries failed to build; those tests will skip"
else
  echo "!! Go not found: the real-control-plane tests will skip"
fi

echo "== ruff"
ruff check sparkube tests bench
ruff format --check sparkube tests bench
echo "== mypy"
mypy
echo "== pytest"
python3 -m pytest -rs -m "not e2e" "$@"
