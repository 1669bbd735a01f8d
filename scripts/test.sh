#!/usr/bin/env bash
# The one test command (README "Run the tests"): makes ./.venv, installs sparkube with
# its test dependencies into it, builds the cached Kubernetes test binaries when Go is
# present, then runs every gate: ruff (lint + format), mypy on the package, pytest.
#
# Prerequisites: Python 3.11+ with venv, Java 17+. Optional, else those tests skip with a
# reason: Go 1.26 (real Kubernetes control plane), root + openssh-server + iproute2 (SSH
# hosts in network namespaces; with Go, the real-node test bed of
# tools/nodes/build.sh), a JDK + curl (the Spark image layer of
# tools/spark/build.sh), shellcheck (node scripts). As root on Debian/Ubuntu this
# script installs the apt packages itself. With CI=true nothing may be missing: a failed
# build or a skipped stand-in fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

ci="${CI:-false}"
venv="${SPARKUBE_VENV:-.venv}"
if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  echo "== creating $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
fi
py="$venv/bin/python"

echo "== installing sparkube with its test dependencies into $venv"
"$py" -m pip install --disable-pip-version-check -q -e '.[test]'
"$py" -m pip check

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  need=()
  [ -x /usr/sbin/sshd ] || need+=(openssh-server)
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
  command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
  if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

if command -v go >/dev/null 2>&1; then
  echo "== Kubernetes test binaries (cached after the first build)"
  if ! bash tools/kube/build.sh; then
    if [ "$ci" = true ]; then echo "!! Kubernetes test binaries failed to build" >&2; exit 1; fi
    echo "!! Kubernetes test binaries failed to build; those tests will skip"
  fi
elif [ "$ci" = true ]; then
  echo "!! CI needs Go to build the test control plane" >&2; exit 1
else
  echo "!! Go not found: the real-control-plane tests will skip"
fi

if [ "$(id -u)" = 0 ] && command -v go >/dev/null 2>&1; then
  echo "== real-node test bed: node template, kubelet, images (cached after the first build)"
  if ! SPARKUBE_PYTHON="$py" bash tools/nodes/build.sh; then
    if [ "$ci" = true ]; then echo "!! real-node test bed failed to build" >&2; exit 1; fi
    echo "!! real-node test bed failed to build; the real-node tests will skip"
  fi
elif [ "$ci" = true ]; then
  echo "!! CI needs root and Go for the real-node test bed" >&2; exit 1
fi

echo "== Spark image layer: the Spark home of the bed's Spark image, the S3 jars (cached after the first build)"
if ! SPARKUBE_PYTHON="$py" bash tools/spark/build.sh; then
  if [ "$ci" = true ]; then echo "!! Spark image layer failed to build" >&2; exit 1; fi
  echo "!! Spark image layer failed to build; the Spark-in-pods tests will skip"
fi

echo "== wheels for the job-package tests (cached after the first download)"
# The tests install a job's packages from this folder only (PIP_NO_INDEX): numpy for the
# pyspark.ml example, the version sparkube's own environment has, for this Python.
wheelhouse="${SPARKUBE_WHEELHOUSE:-$HOME/.cache/sparkube/wheelhouse}"
numpy_version="$("$py" -c 'import numpy; print(numpy.__version__)')"
if ! ls "$wheelhouse"/numpy-"$numpy_version"-*.whl >/dev/null 2>&1; then
  if ! "$py" -m pip download -q --disable-pip-version-check --only-binary=:all: --no-deps \
      -d "$wheelhouse" "numpy==$numpy_version"; then
    if [ "$ci" = true ]; then echo "!! numpy wheel download failed" >&2; exit 1; fi
    echo "!! numpy wheel download failed; the pyspark.ml example test will skip"
  fi
fi

echo "== wheels of the controller's environment (cached after the first download)"
# 'up' builds the in-cluster controller's Python packages with pip for the controller
# image's Python 3.11 on manylinux x86_64 (sparkube/controller/bundle.py); the tests give
# pip this folder only (PIP_NO_INDEX, tests/fixtures/moto_server.py).
if ! "$py" -c 'import sys; from tests.fixtures.wheels import controller_wheels_missing as m; sys.exit(1 if m() else 0)'; then
  read -r -a controller_wheels <<<"$("$py" -m sparkube.controller.bundle x86_64)"
  if ! "$py" -m pip download -q --disable-pip-version-check -d "$wheelhouse" "${controller_wheels[@]}"; then
    if [ "$ci" = true ]; then echo "!! controller wheels download failed" >&2; exit 1; fi
    echo "!! controller wheels download failed; the tests that run 'up' with a bucket will fail"
  fi
fi

echo "== ruff"
"$venv/bin/ruff" check sparkube tests bench
"$venv/bin/ruff" format --check sparkube tests bench
echo "== mypy"
"$venv/bin/mypy"
echo "== pytest"
if [ "$ci" = true ]; then export SPARKUBE_REQUIRE_STANDINS=1; fi
# A hung JVM or server must not hang CI: in CI each pytest gets 70 minutes (the real-node one took 48-53 here and 56 on CI, spot cluster included; CI allows 90 in all), then SIGINT
# (its summary), then SIGKILL a minute later.
limit=()
if [ "$ci" = true ]; then limit=(timeout --signal=INT --kill-after=60 4200); fi
common=(-rs --durations=25)
if [ $# -gt 0 ] || [ "${SPARKUBE_TEST_SERIAL:-}" = 1 ]; then
  # what was asked, in one pytest
  "${limit[@]}" "$py" -m pytest "${common[@]}" -m "not e2e" "$@"
  exit
fi
# Two pytest processes side by side: the real-node tests (one shared cluster, most of
# the run's time, mostly waiting for pods and JVMs) and everything else. Each writes its
# own log, shown when both have ended: a passing one first, a failing one last.
logs="$(mktemp -d)"
"${limit[@]}" "$py" -m pytest "${common[@]}" -p no:cacheprovider -m "realnodes and not e2e" \
  >"$logs/real-nodes.log" 2>&1 &
bed=$!
"${limit[@]}" "$py" -m pytest "${common[@]}" -m "not realnodes and not e2e" \
  >"$logs/other.log" 2>&1 &
other=$!
set +e
wait "$other"; other_rc=$?
echo "== pytest: every test but the real-node ones ended (exit $other_rc)"
wait "$bed"; bed_rc=$?
echo "== pytest: the real-node tests ended (exit $bed_rc)"
set -e
for part in other real-nodes; do
  rc=$other_rc; [ "$part" = real-nodes ] && rc=$bed_rc
  if [ "$rc" = 0 ]; then echo "== pytest log: $part tests"; cat "$logs/$part.log"; fi
done
for part in other real-nodes; do
  rc=$other_rc; [ "$part" = real-nodes ] && rc=$bed_rc
  if [ "$rc" != 0 ]; then echo "== pytest log: $part tests (FAILED, exit $rc)"; cat "$logs/$part.log"; fi
done
rm -rf "$logs"
echo "== pytest: real-node tests exit $bed_rc, other tests exit $other_rc"
# exit 5 (nothing collected: no real-node test selected) is not a failure
[ "$bed_rc" = 0 ] || [ "$bed_rc" = 5 ] || exit "$bed_rc"
exit "$other_rc"
