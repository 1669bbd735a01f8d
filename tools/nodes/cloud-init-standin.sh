#!/bin/sh
# Test-bed stand-in for cloud-init on a node of tools/nodes (not used on EC2): runs the
# instance's user data once, as root, at boot, like cloud-init's scripts-user module.
# The test bed writes the user data (plain or gzipped, as EC2 accepts it) to
# /var/lib/cloud/instance/user-data.txt before the node boots.
set -u
dir=/var/lib/cloud/instance
data=$dir/user-data.txt
done=$dir/boot-finished
[ -f "$data" ] || { echo "cloud-init-standin: no user data"; exit 0; }
[ -f "$done" ] && { echo "cloud-init-standin: user data already ran"; exit 0; }
script=$dir/scripts/part-001
mkdir -p "$dir/scripts"
if gzip -t "$data" 2>/dev/null; then gzip -dc "$data" >"$script"; else cp "$data" "$script"; fi
chmod 0700 "$script"
"$script" >>/var/log/cloud-init-output.log 2>&1
status=$?
echo "cloud-init-standin: user data exited $status at $(date -u +%FT%TZ)" >>/var/log/cloud-init-output.log
date -u +%FT%TZ >"$done"
exit 0
