#!/usr/bin/env bash
# /opt/decom.sh of the test bed's Spark image (tools/nodes/build.sh), written for
# sparkube. The contract of the real image's script: Spark's executor pods run it as
# their preStop hook when decommissioning is on (spark.decommission.enabled); it asks the
# executor JVM to decommission (SIGPWR), then waits for it to exit, so the pod's
# termination grace period covers the block migration.
set -u
pid=""
for d in /proc/[0-9]*; do
  if tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -q 'KubernetesExecutorBackend'; then
    pid="${d#/proc/}"
  fi
done
if [[ -z $pid ]]; then
  echo "decom.sh: no executor JVM in this container" >&2
  exit 0
fi
echo "decom.sh: asking executor $pid to decommission (SIGPWR)"
kill -s PWR "$pid" || exit 0
for _ in $(seq 600); do
  [[ -d /proc/$pid ]] || { echo "decom.sh: executor $pid exited"; exit 0; }
  sleep 0.1
done
echo "decom.sh: executor $pid still running after 60 s" >&2
exit 0
