#!/bin/sh
# sparkube TTL check: powers the node off once the cluster's expiry time has passed.
#
# Installed by the EC2 user-data when the cluster has a TTL, and run by
# sparkube-ttl.timer one minute after every boot and every minute after that, so the
# deadline survives reboots and stop/start (a `shutdown -h +N` would not). The
# instance's shutdown behaviour is "terminate": powering off removes it.
#
# The expiry is an absolute UTC time, in seconds since the epoch, on one line of
# $ROOT/etc/sparkube/expires-at; rewriting that file moves the deadline (the next run
# reads it). A missing or malformed file never powers anything off: it is logged.
# Output goes to the journal (the service's stdout). POSIX sh: dash runs it on a node.
# SPARKUBE_NODE_ROOT is empty on real nodes; tests point it at a temporary folder.
set -u

ROOT="${SPARKUBE_NODE_ROOT:-}"
EXPIRES_FILE="$ROOT/etc/sparkube/expires-at"
# Within this many seconds of the expiry: warn logged-in users, wait, power off.
WARN_SECONDS=60

say() {
    echo "sparkube-ttl: $*"
}

# Sets $expires from the file, or logs why not and fails.
read_expiry() {
    if [ ! -e "$EXPIRES_FILE" ]; then
        say "no expiry file $EXPIRES_FILE: nothing to do"
        return 1
    fi
    if ! expires=$(tr -d ' \t\r\n' <"$EXPIRES_FILE"); then
        say "cannot read $EXPIRES_FILE: nothing to do"
        return 1
    fi
    case "$expires" in
        "" | *[!0-9]* | 0?* | ?????????????*)
            # empty, not only digits, a leading zero (octal to the shell), or 13 digits
            # and more (year 33658 on: not a TTL)
            say "malformed expiry '$expires' in $EXPIRES_FILE" \
                "(want seconds since the epoch, UTC): nothing to do"
            return 1
            ;;
    esac
}

# Sets $left, the seconds until the expiry (negative once past), or fails.
seconds_left() {
    if ! now=$(date +%s) || [ -z "$now" ]; then
        say "cannot read the clock: nothing to do"
        return 1
    fi
    left=$((expires - now))
}

read_expiry || exit 0
seconds_left || exit 0
if [ "$left" -gt "$WARN_SECONDS" ]; then
    exit 0
fi
if [ "$left" -gt 0 ]; then
    say "cluster TTL ends in ${left}s: warning logged-in users, then powering off"
    wall "sparkube: the cluster TTL ends in ${left}s; this node then powers off (and terminates)." \
        2>/dev/null || true
    sleep "$left"
    # the deadline may have been moved meanwhile
    read_expiry || exit 0
    seconds_left || exit 0
    if [ "$left" -gt 0 ]; then
        say "expiry moved to $expires: not powering off"
        exit 0
    fi
fi
say "cluster TTL reached (expiry $expires, clock $now): powering off"
systemctl poweroff || shutdown -h now "sparkube: cluster TTL reached"
