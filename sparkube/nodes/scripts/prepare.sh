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
# Where kubelet, kubeadm and kubectl come from (sparkube setting kubernetes_apt_repo).
K8S_APT="@@K8S_APT@@"
# Registry mirrors (sparkube setting registry_mirrors): REGISTRY/HOST-URL pairs joined by +.
REGISTRY_MIRRORS="@@REGISTRY_MIRRORS@@"
# The Spark image a worker pulls in the background while the control plane initialises.
PREPULL_IMAGE="@@PREPULL_IMAGE@@"
# containerd: the distribution's package (distro) or containerd's release (release), at a
# pinned version and SHA-256 per architecture (sparkube.nodes.containerd).
CONTAINERD_SOURCE="@@CONTAINERD_SOURCE@@"
CONTAINERD_MIN_MAJOR="@@CONTAINERD_MIN_MAJOR@@"
CONTAINERD_VERSION="@@CONTAINERD_VERSION@@"
CONTAINERD_URL="@@CONTAINERD_URL@@"
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
runtime=containerd # the release brings containerd itself; runc comes from the distribution
[ "$CONTAINERD_SOURCE" = distro ] || runtime=runc
apt_get install --no-install-recommends "$runtime" apt-transport-https ca-certificates curl gpg

if [ "$CONTAINERD_SOURCE" = release ]; then
    step "containerd $CONTAINERD_VERSION release"
    export PATH="$ROOT/usr/local/bin:$PATH"
    arch="$(dpkg --print-architecture)"
    case "$arch" in
    amd64) sum="@@CONTAINERD_SHA256_AMD64@@" ;;
    arm64) sum="@@CONTAINERD_SHA256_ARM64@@" ;;
    *) echo "sparkube-prepare: no pinned containerd release for $arch" >&2 && exit 1 ;;
    esac
    changed=""
    if [ "$("$ROOT/usr/local/bin/containerd" --version 2>/dev/null | awk '{print $3}')" != "v$CONTAINERD_VERSION" ]; then
        tgz="containerd-$CONTAINERD_VERSION-linux-$arch.tar.gz"
        dl="$(mktemp -d)"
        curl -fsSL --retry 5 -o "$dl/$tgz" "$CONTAINERD_URL/v$CONTAINERD_VERSION/$tgz"
        if ! echo "$sum  $dl/$tgz" | sha256sum -c --quiet -; then
            echo "sparkube-prepare: $CONTAINERD_URL/v$CONTAINERD_VERSION/$tgz is not the published" \
                "release (SHA-256 $(sha256sum <"$dl/$tgz" | cut -c1-64), expected $sum)" >&2
            rm -rf "$dl"
            exit 1
        fi
        mkdir -p "$ROOT/usr/local"
        tar -C "$ROOT/usr/local" -xzf "$dl/$tgz" bin
        rm -rf "$dl"
        changed=1
    fi
    UNIT="$ROOT/usr/local/lib/systemd/system/containerd.service"
    mkdir -p "$(dirname "$UNIT")"
    cat >"$UNIT.new" <<'UNIT'
[Unit]
Description=containerd container runtime (release installed by sparkube)
Documentation=https://containerd.io
After=network.target local-fs.target dbus.service

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
UNIT
    if cmp -s "$UNIT.new" "$UNIT"; then
        rm -f "$UNIT.new"
    else
        mv -f "$UNIT.new" "$UNIT"
        changed=1
    fi
    if [ -n "$changed" ]; then
        systemctl daemon-reload
        systemctl try-restart containerd # a distribution's containerd gives way to the release
    fi
fi
have="$(containerd --version | awk '{print $3}')"
have="${have#v}"
if [ "${have%%.*}" -lt "$CONTAINERD_MIN_MAJOR" ]; then
    echo "sparkube-prepare: containerd $have is too old for Kubernetes $K8S_MINOR (it needs" \
        "$CONTAINERD_MIN_MAJOR.0 or later); set 'containerd: release' in the cluster spec" >&2
    exit 1
fi

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
# --- registry mirrors: one hosts.toml per mirrored registry, and the CRI's config_path ---
# (containerd docs/hosts.md; 2.x config v3 and 1.x config v2 name the table differently)
if [ -n "$REGISTRY_MIRRORS" ]; then
    CERTS_D="$ROOT/etc/containerd/certs.d"
    IFS=+ read -ra mirror_pairs <<<"$REGISTRY_MIRRORS"
    for pair in "${mirror_pairs[@]}"; do
        registry="${pair%%/*}" host="${pair#*/}"
        mkdir -p "$CERTS_D/$registry"
        {
            case "$registry" in
            _default) ;;
            docker.io) echo 'server = "https://registry-1.docker.io"' ;;
            *) echo "server = \"https://$registry\"" ;;
            esac
            echo "[host.\"$host\"]"
            echo '  capabilities = ["pull", "resolve"]'
            case "${host#https://}" in */*) echo '  override_path = true' ;; esac
        } >"$CERTS_D/$registry/hosts.toml"
    done
    # whatever the default holds (2.2 names two folders, which broke mirroring: #12636)
    V3="^[[:space:]]*\\[plugins\\.'io\\.containerd\\.cri\\.v1\\.images'\\.registry\\]"
    V2='^[[:space:]]*\[plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\]'
    sed -i -e "/$V3/,/^[[:space:]]*\[/ s|^\([[:space:]]*\)config_path = .*|\1config_path = '/etc/containerd/certs.d'|" \
        -e "/$V2/,/^[[:space:]]*\[/ s|^\([[:space:]]*\)config_path = .*|\1config_path = \"/etc/containerd/certs.d\"|" "$CONF.new"
    if ! grep -q "config_path = ./etc/containerd/certs.d.$" "$CONF.new"; then
        sed -i -e "/$V3/a\\      config_path = '/etc/containerd/certs.d'" \
            -e "/$V2/a\\      config_path = \"/etc/containerd/certs.d\"" "$CONF.new"
    fi
    if ! grep -Eq "config_path = [\"']/etc/containerd/certs.d[\"']" "$CONF.new"; then
        echo "sparkube-prepare: could not set the registry config_path in $CONF" >&2
        exit 1
    fi
fi
# --- end of registry mirrors ---
systemctl enable containerd
if cmp -s "$CONF.new" "$CONF"; then
    rm -f "$CONF.new" # unchanged on a re-run: leave containerd running
else
    mv -f "$CONF.new" "$CONF"
    systemctl restart containerd
fi

step "kubernetes v$K8S_MINOR packages"
install -d -m 0755 "$ROOT/etc/apt/keyrings"
curl -fsSL --retry 5 "${K8S_APT}Release.key" |
    gpg --dearmor --yes -o "$ROOT/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
mkdir -p "$ROOT/etc/apt/sources.list.d"
echo "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] $K8S_APT /" \
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

# --- pre-pull: a worker pulls the Spark image in the background (never fails this script) ---
if [ "${SPARKUBE_NODE_ROLE:-}" = worker ] && [ -n "$PREPULL_IMAGE" ]; then
    step "pre-pull $PREPULL_IMAGE (background, log /var/log/sparkube-prepull.log)"
    cat >"$STATE_DIR/prepull.sh" <<'PREPULL'
#!/bin/sh
# sparkube: pull the Spark image into the CRI's namespace before the first job needs it.
exec >>/var/log/sparkube-prepull.log 2>&1
start=$(date +%s)
hosts=""
[ -d /etc/containerd/certs.d ] && hosts="--hosts-dir=/etc/containerd/certs.d"
for attempt in 1 2 3 4 5 6 7 8; do
    # shellcheck disable=SC2086
    if ctr -n k8s.io images pull $hosts "$1" >/dev/null; then
        echo "sparkube-prepull: pulled $1 in $(($(date +%s) - start)) s"
        exit 0
    fi
    echo "sparkube-prepull: attempt $attempt failed at $(date -u +%FT%TZ)"
    sleep $((attempt * 10))
done
echo "sparkube-prepull: gave up on $1; the kubelet pulls it when a pod needs it"
PREPULL
    chmod 0755 "$STATE_DIR/prepull.sh"
    systemd-run --unit=sparkube-prepull --collect --no-block -p Nice=10 \
        "$STATE_DIR/prepull.sh" "$PREPULL_IMAGE" || echo "sparkube-prepare: pre-pull not started"
fi
