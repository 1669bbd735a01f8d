#!/bin/bash
# sparkube node preparation: runs once per instance as root at boot (EC2 user-data),
# on every node in parallel. Rendered by sparkube.nodes.prepare from a template
# (placeholders between double at-signs). Idempotent: safe to run twice.
#
# Output goes to $LOG; the exit status is written to $MARKER when the script ends
# (cloud-init's own boot-finished file appears even when a script failed).
# SPARKUBE_NODE_ROOT is empty on real nodes; tests set it so that the "hosts" that
# share one filesystem each write under their own directory.
set -Eeuo pipefail

K8S_MINOR="@@K8S_MINOR@@"
ROOT="${SPARKUBE_NODE_ROOT:-}"
STATE_DIR="$ROOT/var/lib/sparkube"
LOG="$ROOT/var/log/sparkube-prepare.log"
MARKER="$STATE_DIR/prepare.done"
export DEBIAN_FRONTEND=noninteractive

mkdir -p "$STATE_DIR" "$(dirname "$LOG")"
rm -f "$MARKER"

finish() {
    local status=$?
    echo "sparkube-prepare: finished with exit status $status at $(date -u +%FT%TZ)"
    echo "$status" >"$MARKER.tmp"
    mv -f "$MARKER.tmp" "$MARKER"
}
trap finish EXIT
exec >>"$LOG" 2>&1
echo "sparkube-prepare: start at $(date -u +%FT%TZ), Kubernetes v$K8S_MINOR"

step() { echo "sparkube-prepare: == $* =="; }

apt_get() {
    # First boot: unattended-upgrades may hold the dpkg lock for minutes.
    apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold -y -q "$@"
}

step "swap off"
swapoff -a
if [ -f "$ROOT/etc/fstab" ]; then
    sed -i -E 's@^([^#][^[:space:]]*[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]].*)$@#\1@' \
        "$ROOT/etc/fstab"
fi

step "kernel modules"
mkdir -p "$ROOT/etc/modules-load.d"
printf 'overlay\nbr_netfilter\n' >"$ROOT/etc/modules-load.d/sparkube-k8s.conf"
modprobe overlay
modprobe br_netfilter

step "sysctls"
mkdir -p "$ROOT/etc/sysctl.d"
cat >"$ROOT/etc/sysctl.d/99-sparkube-k8s.conf" <<'SYSCTL'
net.ipv4.ip_forward = 1
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
SYSCTL
sysctl --system >/dev/null

step "packages"
apt_get update
apt_get install --no-install-recommends containerd apt-transport-https ca-certificates curl gpg

step "containerd"
CONF="$ROOT/etc/containerd/config.toml"
mkdir -p "$(dirname "$CONF")"
containerd config default >"$CONF.new"
# containerd 2.x (config version 3) and 1.x name the runc options table differently;
# some 2.0/2.1 releases leave SystemdCgroup out of the default output altogether.
if grep -q 'SystemdCgroup = false' "$CONF.new"; then
    sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' "$CONF.new"
elif ! grep -q 'SystemdCgroup = true' "$CONF.new"; then
    if grep -q "^[[:space:]]*\[plugins\.'io\.containerd\.cri\.v1\.runtime'\.containerd\.runtimes\.runc\.options\]" "$CONF.new"; then
        sed -i "/^[[:space:]]*\[plugins\.'io\.containerd\.cri\.v1\.runtime'\.containerd\.runtimes\.runc\.options\]/a\\            SystemdCgroup = true" "$CONF.new"
    elif grep -q '^[[:space:]]*\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.runc\.options\]' "$CONF.new"; then
        sed -i '/^[[:space:]]*\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.runc\.options\]/a\            SystemdCgroup = true' "$CONF.new"
    else
        printf "\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  SystemdCgroup = true\n" >>"$CONF.new"
    fi
fi
if ! grep -q 'SystemdCgroup = true' "$CONF.new"; then
    echo "sparkube-prepare: could not set SystemdCgroup = true in $CONF" >&2
    exit 1
fi
systemctl enable containerd
if cmp -s "$CONF.new" "$CONF"; then
    rm -f "$CONF.new" # unchanged on a re-run: leave containerd running
else
    mv -f "$CONF.new" "$CONF"
    systemctl restart containerd
fi

step "kubernetes v$K8S_MINOR packages"
install -d -m 0755 "$ROOT/etc/apt/keyrings"
curl -fsSL --retry 5 "https://pkgs.k8s.io/core:/stable:/v$K8S_MINOR/deb/Release.key" |
    gpg --dearmor --yes -o "$ROOT/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
mkdir -p "$ROOT/etc/apt/sources.list.d"
echo "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v$K8S_MINOR/deb/ /" \
    >"$ROOT/etc/apt/sources.list.d/kubernetes.list"
if [ "$(apt-mark showhold kubelet kubeadm kubectl | wc -l)" -eq 3 ]; then
    echo "sparkube-prepare: kubelet, kubeadm and kubectl already installed and held"
else
    apt_get update
    apt_get install kubelet kubeadm kubectl
    apt-mark hold kubelet kubeadm kubectl
fi
systemctl enable kubelet

step "versions"
containerd --version
kubeadm version -o short
