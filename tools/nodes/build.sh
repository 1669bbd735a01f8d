#!/usr/bin/env bash
# Build everything the real-node test bed (tests/fixtures/nodebed.py) boots, into a
# cache folder outside the repository:
#
#   ${SPARKUBE_NODES_CACHE:-$HOME/.cache/sparkube/nodes}/
#     rootfs/root/   Debian node template (debootstrap): systemd, sshd, sudo, the
#                    `ubuntu` user, containerd, runc, a cloud-init stand-in unit
#     bin/           kubelet, kube-proxy (k8s.io/kubernetes, tools/kube's version and
#                    ldflags), coredns, flanneld, the flannel CNI plugin, pause, busybox,
#                    metrics-server, kubelet-csr-approver, aws-node-termination-handler
#     images/        docker-archive tars with the exact names kubeadm and sparkube's
#                    manifests use (importable with `ctr images import`), the Spark
#                    image (spark.tar) and the opex stand-in (opex.tar) hard-linked from
#                    spark/ and opex/
#     spark/         the Spark image sparkube deploys (SPARK_IMAGE of
#                    sparkube/spark/image.py), Debian 12 + Java 17 + python3 around
#                    tools/spark/build.sh's /opt/spark
#     opex/          the kube-opex-analytics image sparkube's manifest names: a stand-in
#                    (tools/nodes/opex/opex_standin.py) on Debian 12's python3
#     python/        the controller's Python image (python:3.11.x-slim-bookworm): the
#                    opex stand-in's rootfs without its program
#     repo/          what stands in for the internet on the test bridge: a Kubernetes
#                    apt repository (kubelet, kubeadm, kubectl, kubernetes-cni .debs
#                    built from the Go binaries, signed) at pkgs.k8s.io's paths, and an
#                    empty signed Debian suite at the mirror's path
#     release/       a containerd 2.x release tarball (official layout, built from the Go
#                    module) at GitHub's release download path, with its .sha256sum
#                    (served on the apt stand-in: containerd_release_url)
#     pki/           the test CA and server certificate of those stand-ins, the apt key
#     registry/      every image of images/*.tar in a registry's storage (Debian's
#                    docker-registry), under <upstream registry>/<path>, and the TLS
#                    certificate the bed serves it and the apt repository with
#     timings.tsv    seconds each piece took when it was last built
#
# Idempotent: each piece has a .stamp of its inputs and is rebuilt only when they
# change (a warm run takes seconds). Needs root (debootstrap, chroot), Go >= 1.26, the
# Go module proxy and the Debian mirror this machine's apt uses.
#
# Environment:
#   SPARKUBE_NODES_CACHE   cache root (default ~/.cache/sparkube/nodes)
#   SPARKUBE_NODES_FORCE=1 rebuild every piece
#   SPARKUBE_NODES_JOBS    go build -p value (default: CPUs)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=../kube/versions.env
source "$repo_root/tools/kube/versions.env"

die() { echo "tools/nodes/build.sh: error: $*" >&2; exit 1; }
(( EUID == 0 )) || die "run as root (debootstrap and chroot need it)"

cache="${SPARKUBE_NODES_CACHE:-$HOME/.cache/sparkube/nodes}"
kube_bin="${SPARKUBE_KUBE_CACHE:-$HOME/.cache/sparkube/kube}/$KUBE_VERSION/bin"
force="${SPARKUBE_NODES_FORCE:-0}"
jobs="${SPARKUBE_NODES_JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}"
# Bump when a change to this script changes what a piece contains.
RECIPE=1
mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9

kube_minor="${KUBE_VERSION#v}"; kube_minor="${kube_minor%.*}"     # 1.36
deb_version="${KUBE_VERSION#v}-1.1"                                # as pkgs.k8s.io names them
t_all=$SECONDS

stamp_of() { { echo "recipe $RECIPE"; printf '%s\n' "$@"; } | sha256sum | cut -c1-16; }
fresh() {  # fresh DIR STAMP: the piece in DIR was built from these inputs
  [[ $force != 1 && -f "$1/.stamp" && "$(cat "$1/.stamp")" == "$2" ]]
}
built() {  # built NAME DIR STAMP T0
  echo "$3" >"$2/.stamp"
  local secs=$((SECONDS - $4))
  printf '%s\t%s\t%s\n' "$1" "$secs" "$(date -u +%FT%TZ)" >>"$cache/timings.tsv"
  echo "  [$1] built in $secs s"
}

# --- host tools ------------------------------------------------------------------
t0=$SECONDS
need=()
for pair in systemd-nspawn:systemd-container debootstrap:debootstrap umoci:umoci skopeo:skopeo \
            gcc:gcc openssl:openssl gpg:gpg apt-ftparchive:apt-utils dpkg-deb:dpkg \
            nsenter:util-linux ip:iproute2 ssh-keygen:openssh-client docker-registry:docker-registry; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
[[ -f /usr/include/stdio.h ]] || need+=(libc6-dev)
if ((${#need[@]})); then
  echo "  [host] apt-get install ${need[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  printf 'host-tools\t%s\t%s\n' "$((SECONDS - t0))" "$(date -u +%FT%TZ)" >>"$cache/timings.tsv"
  echo "  [host] installed in $((SECONDS - t0)) s"
fi
command -v go >/dev/null 2>&1 || die "'go' not found on PATH (Go >= 1.26 builds kubelet and the addons)"

# The Debian mirror this machine's apt uses for the suite's main component.
mirror="$(apt-cache policy 2>/dev/null | awk -v s="$DEBIAN_SUITE/main" '$3 == s && $2 ~ /^https?:/ {print $2; exit}')"
[[ -n $mirror ]] || die "no apt source for $DEBIAN_SUITE/main on this machine (apt-get update first?)"
mirror="${mirror%/}"
mirror_host="$(echo "$mirror" | sed -E 's#^https?://([^/:]+).*#\1#')"
mirror_path="$(echo "$mirror" | sed -E 's#^https?://[^/]+##')"

# The Kubernetes control-plane binaries (kubeadm, kubectl, the images' binaries).
bash "$repo_root/tools/kube/build.sh" >/dev/null || die "tools/kube/build.sh failed"

# --- pki: test CA + server certificate for the stand-ins, apt signing key --------
pki="$cache/pki"
st="$(stamp_of pki "$mirror_host")"
if ! fresh "$pki" "$st"; then
  t0=$SECONDS; rm -rf "$pki"; mkdir -p "$pki/gnupg"; chmod 700 "$pki/gnupg"
  openssl req -x509 -newkey ed25519 -nodes -days 3650 -subj "/CN=sparkube test bed CA" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  openssl req -newkey ed25519 -nodes -subj "/CN=sparkube test bed stand-ins" \
    -keyout "$pki/server.key" -out "$pki/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:pkgs.k8s.io,DNS:%s\nextendedKeyUsage=serverAuth\n' "$mirror_host" >"$pki/ext"
  openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile "$pki/ext" -out "$pki/server.crt" 2>/dev/null
  GNUPGHOME="$pki/gnupg" gpg -q --batch --passphrase '' --quick-gen-key \
    "sparkube test bed apt <testbed@sparkube.invalid>" ed25519 sign never 2>/dev/null
  GNUPGHOME="$pki/gnupg" gpg -q --armor --export >"$pki/Release.key"
  GNUPGHOME="$pki/gnupg" gpg -q --export >"$pki/apt-keyring.gpg"
  built pki "$pki" "$st" "$t0"
fi

# --- node rootfs template ----------------------------------------------------------
include=systemd,systemd-sysv,dbus,openssh-server,sudo,iproute2,iputils-ping,ca-certificates,curl
include+=,gpg,apt-transport-https,containerd,runc,iptables,conntrack,kmod,procps,ethtool,socat
include+=,ebtables,less,util-linux,mount
# python3: sparkube-join.py (a worker's self-join) runs on it, as on Ubuntu AMIs
include+=,python3
rootfs="$cache/rootfs"
st="$(stamp_of rootfs "$DEBIAN_SUITE" "$mirror" "$include" "$(cat "$pki/.stamp")" \
  "$(sha256sum "$here/cloud-init-standin.sh" | cut -c1-16)")"
if ! fresh "$rootfs" "$st"; then
  t0=$SECONDS; rm -rf "$rootfs"; mkdir -p "$rootfs"
  new="$rootfs/root.new"
  echo "  [rootfs] debootstrap $DEBIAN_SUITE from $mirror"
  nice -n 10 debootstrap --variant=minbase --include="$include" "$DEBIAN_SUITE" "$new" "$mirror" \
    >"$rootfs/debootstrap.log" 2>&1 || { tail -20 "$rootfs/debootstrap.log" >&2; die "debootstrap failed"; }
  inroot() { chroot "$new" "$@"; }
  # Units that make no sense in a container, and networking configured from outside.
  for u in systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service \
           systemd-networkd-wait-online.service systemd-networkd.service console-getty.service; do
    inroot systemctl mask "$u" >/dev/null 2>&1 || true
  done
  inroot systemctl enable ssh containerd >/dev/null 2>&1
  # As on the Ubuntu AMIs: `ubuntu` (uid 1000) with passwordless sudo; its key is added per node.
  inroot useradd -m -u 1000 -s /bin/bash ubuntu
  inroot usermod -p '*' ubuntu
  echo 'ubuntu ALL=(ALL) NOPASSWD:ALL' >"$new/etc/sudoers.d/90-cloud-init-users"
  chmod 0440 "$new/etc/sudoers.d/90-cloud-init-users"
  # Host keys are made per node by the test bed, never shared through the template.
  rm -f "$new"/etc/ssh/ssh_host_*
  # cloud-init stand-in: runs /var/lib/cloud/instance/user-data.txt once, as root, at boot.
  install -m 0755 "$here/cloud-init-standin.sh" "$new/usr/local/sbin/cloud-init-standin"
  cat >"$new/etc/systemd/system/cloud-init-standin.service" <<'UNIT'
[Unit]
Description=Test-bed stand-in for cloud-init: the instance's user data, once, as root
After=network-online.target ssh.service
Wants=network-online.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/cloud-init-standin
RemainAfterExit=yes
TimeoutStartSec=0

[Install]
WantedBy=multi-user.target
UNIT
  inroot systemctl enable cloud-init-standin.service >/dev/null 2>&1
  # The stand-ins for pkgs.k8s.io and the Debian mirror on the test bridge are signed
  # and served with the test bed's own CA and apt key.
  install -m 0644 "$pki/ca.crt" "$new/usr/local/share/ca-certificates/sparkube-testbed.crt"
  inroot update-ca-certificates >/dev/null 2>&1
  install -m 0644 "$pki/apt-keyring.gpg" "$new/etc/apt/trusted.gpg.d/sparkube-testbed.gpg"
  echo "deb $mirror $DEBIAN_SUITE main" >"$new/etc/apt/sources.list"
  inroot apt-get clean
  rm -rf "$new"/var/lib/apt/lists/* "$new"/var/cache/apt/*.bin
  mv "$new" "$rootfs/root"
  echo "$mirror" >"$rootfs/mirror"
  built rootfs "$rootfs" "$st" "$t0"
  echo "  [rootfs] $(du -sh "$rootfs/root" | cut -f1)"
fi

# --- Go binaries -----------------------------------------------------------------
bin="$cache/bin"; mkdir -p "$bin"
export CGO_ENABLED=0
gover="$(go env GOVERSION)"
modcache="$(go env GOMODCACHE)"

major="${KUBE_VERSION#v}"; major="${major%%.*}"
minor="${KUBE_VERSION#v*.}"; minor="${minor%%.*}"
kube_ldflags="-s -w"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  kube_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

d="$bin/kube"; mkdir -p "$d"
st="$(stamp_of kube "$gover" "$KUBE_VERSION" "$(cat "$here/kube/go.mod" "$here/kube/go.sum" "$here/kube/tools.go" | sha256sum)")"
if ! fresh "$d" "$st"; then
  t0=$SECONDS
  grep -qE "^require k8s.io/kubernetes $KUBE_VERSION\$" "$here/kube/go.mod" \
    || die "tools/nodes/kube/go.mod does not require k8s.io/kubernetes $KUBE_VERSION (tools/kube/versions.env)"
  echo "  [kube] go build kubelet kube-proxy $KUBE_VERSION"
  (cd "$here/kube" && GOFLAGS="-mod=readonly -buildvcs=false -trimpath" nice -n 10 \
    go build -p "$jobs" -ldflags "$kube_ldflags" -o "$d/" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
  "$d/kubelet" --version | grep -qx "Kubernetes $KUBE_VERSION" || die "kubelet --version does not say $KUBE_VERSION"
  built kube "$d" "$st" "$t0"
fi

d="$bin/coredns"; mkdir -p "$d"
st="$(stamp_of coredns "$gover" "$COREDNS_VERSION")"
if ! fresh "$d" "$st"; then
  t0=$SECONDS
  echo "  [coredns] go install github.com/coredns/coredns@$COREDNS_VERSION"
  GOBIN="$d" GOFLAGS="-buildvcs=false -trimpath" nice -n 10 go install -p "$jobs" -ldflags "-s -w" \
    "github.com/coredns/coredns@$COREDNS_VERSION"
  built coredns "$d" "$st" "$t0"
fi

d="$bin/metrics-server"; mkdir -p "$d"
st="$(stamp_of metrics-server "$gover" "$METRICS_SERVER_IMAGE_VERSION")"
if ! fresh "$d" "$st"; then
  t0=$SECONDS
  echo "  [metrics-server] go install sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_IMAGE_VERSION"
  ms_pkg=k8s.io/client-go/pkg/version
  GOBIN="$d" GOFLAGS="-buildvcs=false -trimpath" nice -n 10 go install -p "$jobs" \
    -ldflags "-s -w -X $ms_pkg.gitVersion=$METRICS_SERVER_IMAGE_VERSION -X $ms_pkg.gitTreeState=clean" \
    "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_IMAGE_VERSION"
  "$d/metrics-server" --version | grep -qx "$METRICS_SERVER_IMAGE_VERSION" \
    || die "metrics-server --version does not say $METRICS_SERVER_IMAGE_VERSION"
  built metrics-server "$d" "$st" "$t0"
fi

# postfinance's kubelet-csr-approver (the addon sparkube/kube/approver.py applies). The
# Go proxy refuses the module, so its source comes from a snapshot of the GitHub
# repository: SPARKUBE_CSR_APPROVER_SRC, a git directory holding the tag at the pinned
# commit (default: where this workplace's `fetch` puts it) or a tarball of the tag's
# tree; it is kept under ~/.cache/sparkube/src for later builds. Without any, the image
# is left out (with a warning) and the bed tests that need it fail saying so.
d="$bin/kubelet-csr-approver"
approver_tar="${SPARKUBE_SRC_CACHE:-$HOME/.cache/sparkube/src}/kubelet-csr-approver-$CSR_APPROVER_VERSION.tar"
approver_src="${SPARKUBE_CSR_APPROVER_SRC:-/work/.mirror/postfinance+kubelet-csr-approver/repo}"
st="$(stamp_of kubelet-csr-approver "$gover" "$CSR_APPROVER_VERSION" "$CSR_APPROVER_COMMIT")"
if ! fresh "$d" "$st"; then
  if [[ ! -s $approver_tar && -d $approver_src ]] && git -C "$approver_src" rev-parse -q --verify "$CSR_APPROVER_VERSION^{commit}" >/dev/null 2>&1; then
    got="$(git -C "$approver_src" rev-parse "$CSR_APPROVER_VERSION^{commit}")"
    [[ $got == "$CSR_APPROVER_COMMIT" ]] || die "kubelet-csr-approver $CSR_APPROVER_VERSION is commit $got in $approver_src, not $CSR_APPROVER_COMMIT"
    mkdir -p "$(dirname "$approver_tar")"
    git -C "$approver_src" archive --format=tar -o "$approver_tar.new" "$CSR_APPROVER_COMMIT" && mv "$approver_tar.new" "$approver_tar"
  elif [[ ! -s $approver_tar && -f $approver_src ]]; then
    mkdir -p "$(dirname "$approver_tar")"; cp "$approver_src" "$approver_tar"
  fi
  if [[ -s $approver_tar ]]; then
    t0=$SECONDS; rm -rf "$d"; mkdir -p "$d"; work="$(mktemp -d "$cache/.approver.XXXXXX")"
    echo "  [kubelet-csr-approver] go build $CSR_APPROVER_VERSION from its source"
    tar -xf "$approver_tar" -C "$work"
    approver_pkg=github.com/postfinance/kubelet-csr-approver/internal/cmd
    (cd "$work" && GOFLAGS="-mod=mod -buildvcs=false -trimpath" nice -n 10 go build -p "$jobs" \
      -ldflags "-s -w -X $approver_pkg.commit=$CSR_APPROVER_COMMIT -X $approver_pkg.ref=refs/tags/$CSR_APPROVER_VERSION" \
      -o "$d/kubelet-csr-approver" ./cmd/kubelet-csr-approver)
    rm -rf "$work"
    built kubelet-csr-approver "$d" "$st" "$t0"
  else
    echo "  [kubelet-csr-approver] WARNING: no source (set SPARKUBE_CSR_APPROVER_SRC to a snapshot of" \
      "github.com/postfinance/kubelet-csr-approver); its image is left out" >&2
  fi
fi

src_of() {  # src_of MODULE@VERSION DEST: a writable copy of a module's source
  local dir
  dir="$(GOFLAGS=-mod=mod go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -d $dir ]] || die "go mod download $1 gave no source folder"
  rm -rf "$2"; cp -r "$dir" "$2"; chmod -R u+w "$2"
}

d="$bin/flannel"; mkdir -p "$d"
st="$(stamp_of flannel "$gover" "$FLANNEL_VERSION" "$CNI_PLUGINS_FLANNEL_VERSION")"
if ! fresh "$d" "$st"; then
  t0=$SECONDS; work="$(mktemp -d "$cache/.flannel.XXXXXX")"
  echo "  [flannel] flanneld $FLANNEL_VERSION (vxlan; no TencentCloud or cgo-only UDP backend)"
  src_of "github.com/flannel-io/flannel@$FLANNEL_VERSION" "$work/flannel"
  sed -i -e '/pkg\/backend\/tencentvpc"/d' -e '/pkg\/backend\/udp"/d' "$work/flannel/main.go"
  (cd "$work/flannel" && GOFLAGS="-mod=mod -buildvcs=false -trimpath" nice -n 10 go build -p "$jobs" \
    -ldflags "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL_VERSION" -o "$d/flanneld" .)
  echo "  [flannel] CNI plugin from containernetworking/plugins $CNI_PLUGINS_FLANNEL_VERSION"
  src_of "github.com/containernetworking/plugins@$CNI_PLUGINS_FLANNEL_VERSION" "$work/plugins"
  (cd "$work/plugins" && GOFLAGS="-mod=mod -buildvcs=false -trimpath" nice -n 10 go build -p "$jobs" \
    -ldflags "-s -w" -o "$d/flannel-cni" ./plugins/meta/flannel)
  rm -rf "$work"
  built flannel "$d" "$st" "$t0"
fi

# aws-node-termination-handler (the spot-interruption addon sparkube/kube/termination.py
# applies), from its Go module's source at the pinned version, built as upstream's
# Makefile does (package ./cmd, -ldflags "-s -w", no cgo) into the name its image uses;
# its licence files go along into the image, as upstream's. The Go proxy refuses the
# module's version list but serves the version itself.
d="$bin/nth"; mkdir -p "$d"
st="$(stamp_of nth "$gover" "$NTH_VERSION")"
if ! fresh "$d" "$st"; then
  t0=$SECONDS; rm -rf "$d"; mkdir -p "$d"; work="$(mktemp -d "$cache/.nth.XXXXXX")"
  echo "  [nth] go build github.com/aws/aws-node-termination-handler $NTH_VERSION"
  src_of "github.com/aws/aws-node-termination-handler@$NTH_VERSION" "$work/src"
  (cd "$work/src" && GOFLAGS="-mod=readonly -buildvcs=false -trimpath" nice -n 10 go build -p "$jobs" \
    -ldflags "-s -w" -o "$d/node-termination-handler" ./cmd)
  cp "$work/src/LICENSE" "$work/src/THIRD_PARTY_LICENSES.md" "$d/"
  "$d/node-termination-handler" -help 2>&1 | grep -q -- -metadata-url \
    || die "node-termination-handler -help does not list -metadata-url"
  rm -rf "$work"
  built nth "$d" "$st" "$t0"
fi

d="$bin/pause"; mkdir -p "$d"
st="$(stamp_of pause "$KUBE_VERSION" "$PAUSE_VERSION")"
if ! fresh "$d" "$st"; then
  t0=$SECONDS
  src="$modcache/k8s.io/kubernetes@$KUBE_VERSION/build/pause/linux/pause.c"
  [[ -f $src ]] || (cd "$here/kube" && go mod download k8s.io/kubernetes)
  gcc -Os -static -Wall -DVERSION="$PAUSE_VERSION" -o "$d/pause" "$src"
  strip "$d/pause"
  built pause "$d" "$st" "$t0"
fi

d="$bin/debs"; mkdir -p "$d"
st="$(stamp_of debs "$mirror")"
if ! fresh "$d" "$st"; then
  t0=$SECONDS; rm -f "$d"/*.deb
  (cd "$d" && apt-get download -q busybox-static containernetworking-plugins >/dev/null 2>&1) \
    || die "apt-get download busybox-static containernetworking-plugins failed"
  rm -rf "$d/x"; for f in "$d"/*.deb; do dpkg-deb -x "$f" "$d/x"; done
  built debs "$d" "$st" "$t0"
fi

# --- containerd release tarball -----------------------------------------------------
# What prepare.sh downloads for `containerd: release`: containerd-X-linux-amd64.tar.gz in
# the official layout (bin/containerd, bin/containerd-shim-runc-v2, bin/containerd-stress,
# bin/ctr), built from the Go module, with its .sha256sum, at the release download path.
# Its SHA-256 is not the published one (a different build): the tests say so where they
# give sparkube the bed's checksum.
release="$cache/release"
cd_version="${CONTAINERD_RELEASE_VERSION#v}"
st="$(stamp_of containerd-release "$gover" "$CONTAINERD_RELEASE_VERSION")"
if ! fresh "$release" "$st"; then
  t0=$SECONDS; rm -rf "$release"; work="$(mktemp -d "$cache/.release.XXXXXX")"
  echo "  [containerd] go install github.com/containerd/containerd/v2 $CONTAINERD_RELEASE_VERSION"
  cd_pkg=github.com/containerd/containerd/v2
  mkdir -p "$work/bin"
  GOBIN="$work/bin" GOFLAGS="-buildvcs=false -trimpath" nice -n 10 go install -p "$jobs" -tags no_btrfs \
    -ldflags "-s -w -X $cd_pkg/version.Version=$CONTAINERD_RELEASE_VERSION -X $cd_pkg/version.Package=$cd_pkg" \
    "$cd_pkg/cmd/containerd@$CONTAINERD_RELEASE_VERSION" "$cd_pkg/cmd/containerd-shim-runc-v2@$CONTAINERD_RELEASE_VERSION" \
    "$cd_pkg/cmd/ctr@$CONTAINERD_RELEASE_VERSION" "$cd_pkg/cmd/containerd-stress@$CONTAINERD_RELEASE_VERSION"
  "$work/bin/containerd" --version | grep -q " $CONTAINERD_RELEASE_VERSION" \
    || die "containerd --version does not say $CONTAINERD_RELEASE_VERSION"
  d="$release/containerd/containerd/releases/download/$CONTAINERD_RELEASE_VERSION"; mkdir -p "$d"
  tgz="containerd-$cd_version-linux-amd64.tar.gz"
  tar -C "$work" --owner=0 --group=0 --numeric-owner -czf "$d/$tgz" bin
  (cd "$d" && sha256sum "$tgz" >"$tgz.sha256sum")
  rm -rf "$work"
  built containerd-release "$release" "$st" "$t0"
fi

# --- images ------------------------------------------------------------------------
images="$cache/images"
st="$(stamp_of images "$(cat "$bin"/*/.stamp "$kube_bin/.stamp" "$rootfs/.stamp")" \
  "$ETCD_IMAGE_TAG" "$PAUSE_VERSION" "$COREDNS_VERSION" "$FLANNEL_VERSION" "$FLANNEL_CNI_IMAGE_TAG" \
  "$METRICS_SERVER_IMAGE_VERSION" "$CSR_APPROVER_VERSION" "$NTH_VERSION")"
if ! fresh "$images" "$st"; then
  t0=$SECONDS; rm -rf "$images"; mkdir -p "$images"
  work="$(mktemp -d "$cache/.images.XXXXXX")"
  R="$rootfs/root"
  mkimage() {  # mkimage REF DIR OUT [ENTRYPOINT...]: one layer, no registry; USER $image_user if set
    local ref=$1 dir=$2 out=$3 l="$work/layout"; shift 3
    rm -rf "$l"; umoci init --layout "$l"; umoci new --image "$l:t"
    umoci insert --image "$l:t" "$dir" / >/dev/null
    local args=() a; for a in "$@"; do args+=(--config.entrypoint "$a"); done
    [[ -z ${image_user:-} ]] || args+=(--config.user "$image_user")
    umoci config --image "$l:t" --config.workingdir / \
      --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin ${args[@]+"${args[@]}"}
    skopeo copy -q "oci:$l:t" "docker-archive:$images/$out.tar:$ref"
    echo "$ref" >>"$images/refs"
  }
  base() { mkdir -p "$1/tmp" "$1/etc" "$1/usr/local/bin"; chmod 1777 "$1/tmp"
           echo 'root:x:0:0:root:/root:/bin/sh' >"$1/etc/passwd"; echo 'root:x:0:' >"$1/etc/group"; }
  busybox_into() {
    mkdir -p "$1/bin"; cp "$bin/debs/x/bin/busybox" "$1/bin/"
    local a; for a in "${@:2}"; do ln -sf busybox "$1/bin/$a"; done
  }
  iptables_into() {  # the node's iptables (nft backend) and its shared libraries
    local d=$1 f
    mkdir -p "$d/usr/sbin" "$d/usr/lib/x86_64-linux-gnu"
    cp -a "$R/usr/sbin/xtables-nft-multi" "$d/usr/sbin/"
    for f in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
      ln -sf xtables-nft-multi "$d/usr/sbin/$f"
    done
    cp -a "$R/usr/lib/x86_64-linux-gnu/xtables" "$d/usr/lib/x86_64-linux-gnu/"
    for f in $(chroot "$R" ldd /usr/sbin/xtables-nft-multi | awk '/=>/ {print $3} /ld-linux/ {print $1}') \
             $(chroot "$R" sh -c 'ldd /usr/lib/x86_64-linux-gnu/xtables/*.so' | awk '/=>/ {print $3}' | sort -u); do
      mkdir -p "$d$(dirname "$f")"; cp -L "$R$f" "$d$f"
    done
    cp "$R/etc/protocols" "$R/etc/services" "$d/etc/"
    [[ ! -e $R/etc/ethertypes ]] || cp "$R/etc/ethertypes" "$d/etc/"
  }
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    base "$work/$c"; cp "$kube_bin/$c" "$work/$c/usr/local/bin/"
    mkimage "registry.k8s.io/$c:$KUBE_VERSION" "$work/$c" "$c"
  done
  base "$work/etcd"; cp "$kube_bin/etcd" "$work/etcd/usr/local/bin/"
  mkimage "registry.k8s.io/etcd:$ETCD_IMAGE_TAG" "$work/etcd" etcd
  mkdir -p "$work/pause"; cp "$bin/pause/pause" "$work/pause/"
  mkimage "registry.k8s.io/pause:$PAUSE_VERSION" "$work/pause" pause /pause
  base "$work/coredns"; cp "$bin/coredns/coredns" "$work/coredns/coredns"
  mkimage "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" "$work/coredns" coredns /coredns
  base "$work/kube-proxy"; cp "$bin/kube/kube-proxy" "$work/kube-proxy/usr/local/bin/"
  iptables_into "$work/kube-proxy"
  mkimage "registry.k8s.io/kube-proxy:$KUBE_VERSION" "$work/kube-proxy" kube-proxy
  base "$work/flannel"; mkdir -p "$work/flannel/opt/bin"; cp "$bin/flannel/flanneld" "$work/flannel/opt/bin/"
  iptables_into "$work/flannel"; busybox_into "$work/flannel" sh cp ls cat mkdir
  mkimage "ghcr.io/flannel-io/flannel:$FLANNEL_VERSION" "$work/flannel" flannel
  base "$work/flannel-cni"; cp "$bin/flannel/flannel-cni" "$work/flannel-cni/flannel"
  busybox_into "$work/flannel-cni" sh cp ls cat mkdir
  mkimage "ghcr.io/flannel-io/flannel-cni-plugin:$FLANNEL_CNI_IMAGE_TAG" "$work/flannel-cni" flannel-cni-plugin
  base "$work/metrics-server"; cp "$bin/metrics-server/metrics-server" "$work/metrics-server/metrics-server"
  mkimage "registry.k8s.io/metrics-server/metrics-server:$METRICS_SERVER_IMAGE_VERSION" \
    "$work/metrics-server" metrics-server /metrics-server
  if [[ -f $bin/kubelet-csr-approver/.stamp ]]; then  # laid out as upstream's ko image
    base "$work/approver"; mkdir -p "$work/approver/ko-app"
    cp "$bin/kubelet-csr-approver/kubelet-csr-approver" "$work/approver/ko-app/"
    mkimage "ghcr.io/postfinance/kubelet-csr-approver:$CSR_APPROVER_VERSION" "$work/approver" \
      kubelet-csr-approver /ko-app/kubelet-csr-approver
  fi
  # As upstream's image: FROM scratch, the binary at /, a CA bundle, the licences, USER 1000.
  mkdir -p "$work/nth/etc/ssl/certs"
  cp "$bin/nth/node-termination-handler" "$bin/nth/THIRD_PARTY_LICENSES.md" "$work/nth/"
  cp "$R/etc/ssl/certs/ca-certificates.crt" "$work/nth/etc/ssl/certs/ca-bundle.crt"
  image_user=1000 mkimage "public.ecr.aws/aws-ec2/aws-node-termination-handler:$NTH_VERSION" \
    "$work/nth" nth /node-termination-handler
  # A shell image for tests (busybox: sh, nslookup, wget, nc, httpd).
  base "$work/shell"
  busybox_into "$work/shell" sh ls cat echo sleep wget nslookup ip hostname ping httpd nc mkdir
  mkimage "sparkube.test/shell:1" "$work/shell" shell /bin/sh
  rm -rf "$work"
  built images "$images" "$st" "$t0"
  echo "  [images] $(du -sh "$images" | cut -f1) in $(wc -l <"$images/refs") images"
fi

# --- the Spark image ------------------------------------------------------------------
# SPARK_IMAGE of sparkube/spark/image.py (apache/spark:4.1.2-scala2.13-java17-python3-ubuntu)
# under its exact name, in its own folder (spark/) and hard-linked into images/ (which the
# images piece rebuilds from scratch). Its Spark home is the layer tools/spark/build.sh
# builds; around it a Debian 12 minbase rootfs with Java 17 and
# python3 and the image's contract: /opt/entrypoint.sh (the layer's), /opt/decom.sh (ours,
# tools/nodes/spark/decom.sh), user spark uid/gid 185 with home /nonexistent, WORKDIR
# /opt/spark/work-dir, SPARK_HOME=/opt/spark, JAVA_HOME=/opt/java/openjdk (the
# eclipse-temurin base's path; here a link to Debian's JVM) first on PATH, tini and
# libnss-wrapper for the entrypoint, procps.
# How the test image differs from the real one: Debian 12 instead of Ubuntu 22.04
# (jammy), so python3 is 3.11 instead of 3.10; Debian's OpenJDK 17 instead of Temurin 17;
# LANG C.UTF-8 instead of en_US.UTF-8 (no locales package); no gosu, krb5-user, wget,
# gnupg2, net-tools, python3-pip, libjemalloc2; Spark's files come from PyPI pyspark of
# the same version (no R, no kubernetes/tests) and examples/jars/spark-examples.jar is
# tools/spark/build.sh's SparkPi stand-in (the real examples jar is not on Maven Central).
SPARKUBE_PYTHON="${SPARKUBE_PYTHON:-python3}" bash "$repo_root/tools/spark/build.sh" >/dev/null \
  || die "tools/spark/build.sh failed (the Spark image's /opt/spark)"
spark_ref="$(sed -n 's/^ *ref="\(apache\/spark:[^"]*\)",$/\1/p' "$repo_root/sparkube/spark/image.py" | head -1)"
[[ -n $spark_ref ]] || die "no SPARK_IMAGE ref in sparkube/spark/image.py"
spark_key="$(echo "$spark_ref" | tr '/:' '--')"
spark_layer="${SPARKUBE_IMAGE_CACHE:-$HOME/.cache/sparkube/images}/$spark_key"
spark_include=openjdk-17-jre-headless,python3,tini,procps,libnss-wrapper
spark="$cache/spark"
st="$(stamp_of spark "$spark_ref" "$DEBIAN_SUITE" "$mirror" "$spark_include" \
  "$(cat "$spark_layer/.stamp")" "$(sha256sum "$here/spark/decom.sh" | cut -c1-16)")"
if ! fresh "$spark" "$st"; then
  t0=$SECONDS; rm -rf "$spark"; mkdir -p "$spark"
  work="$(mktemp -d "$cache/.spark.XXXXXX")"; r="$work/root"
  echo "  [spark] debootstrap $DEBIAN_SUITE + $spark_include, /opt/spark of $spark_layer"
  nice -n 10 debootstrap --variant=minbase --include="$spark_include" "$DEBIAN_SUITE" "$r" "$mirror" \
    >"$spark/debootstrap.log" 2>&1 || { tail -20 "$spark/debootstrap.log" >&2; die "debootstrap (spark) failed"; }
  chroot "$r" groupadd --system --gid=185 spark
  chroot "$r" useradd --system --uid=185 --gid=spark -d /nonexistent spark
  jvm="$(cd "$r/usr/lib/jvm" && ls -d java-17-openjdk-* | head -1)"
  [[ -x "$r/usr/lib/jvm/$jvm/bin/java" ]] || die "no Java 17 in the Spark image's rootfs"
  mkdir -p "$r/opt/java"; ln -s "/usr/lib/jvm/$jvm" "$r/opt/java/openjdk"
  cp -a "$spark_layer/layer/opt/spark" "$r/opt/spark"
  install -m 0755 "$spark_layer/layer/opt/entrypoint.sh" "$r/opt/entrypoint.sh"
  install -m 0755 "$here/spark/decom.sh" "$r/opt/decom.sh"
  chown -R 185:185 "$r/opt/spark"; chmod g+w "$r/opt/spark/work-dir"
  chroot "$r" apt-get clean
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/usr/share/doc/* "$r"/usr/share/man/* \
    "$r"/usr/share/locale/* "$r"/var/log/*.log "$r"/var/cache/debconf/*-old
  l="$work/layout"; umoci init --layout "$l"; umoci new --image "$l:t"
  umoci insert --image "$l:t" "$r" / >/dev/null
  jh=/opt/java/openjdk
  umoci config --image "$l:t" --config.workingdir /opt/spark/work-dir --config.user spark \
    --config.entrypoint /opt/entrypoint.sh --config.env "PATH=$jh/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --config.env "JAVA_HOME=$jh" --config.env SPARK_HOME=/opt/spark --config.env LANG=C.UTF-8
  skopeo copy -q "oci:$l:t" "docker-archive:$spark/spark.tar:$spark_ref"
  echo "$spark_ref" >"$spark/ref"
  rm -rf "$work"
  built spark "$spark" "$st" "$t0"
  echo "  [spark] $spark_ref: $(du -sh "$spark/spark.tar" | cut -f1)"
fi
ln -f "$spark/spark.tar" "$images/spark.tar"
grep -qxF "$spark_ref" "$images/refs" || echo "$spark_ref" >>"$images/refs"

# --- the kube-opex-analytics stand-in image ---------------------------------------------
# The image sparkube's monitoring manifest names (rchakode/kube-opex-analytics:OPEX_VERSION
# of sparkube/monitoring/addons.py), in its own folder (opex/) hard-linked into images/.
# The real image is not reachable from here; this one runs tools/nodes/opex/opex_standin.py
# (what it keeps of the real image's contract: its docstring) with Debian 12's python3,
# laid out as the real image is: the app in /koa (WORKDIR), started by
# `sh ./entrypoint.sh`, a user koa uid 4583 owning /koa and /data but no USER line (the
# manifest's runAsUser picks it), VOLUME /data, port 5483.
opex_version="$(sed -n 's/^OPEX_VERSION = "\(.*\)"$/\1/p' "$repo_root/sparkube/monitoring/addons.py")"
[[ -n $opex_version ]] || die "no OPEX_VERSION in sparkube/monitoring/addons.py"
opex_ref="rchakode/kube-opex-analytics:$opex_version"
opex_include=python3
opex="$cache/opex"
st="$(stamp_of opex "$opex_ref" "$DEBIAN_SUITE" "$mirror" "$opex_include" \
  "$(cat "$here/opex/opex_standin.py" "$here/opex/entrypoint.sh" | sha256sum | cut -c1-16)")"
if ! fresh "$opex" "$st"; then
  t0=$SECONDS; rm -rf "$opex"; mkdir -p "$opex"
  work="$(mktemp -d "$cache/.opex.XXXXXX")"; r="$work/root"
  echo "  [opex] debootstrap $DEBIAN_SUITE + $opex_include, $opex_ref running tools/nodes/opex/opex_standin.py"
  nice -n 10 debootstrap --variant=minbase --include="$opex_include" "$DEBIAN_SUITE" "$r" "$mirror" \
    >"$opex/debootstrap.log" 2>&1 || { tail -20 "$opex/debootstrap.log" >&2; die "debootstrap (opex) failed"; }
  chroot "$r" groupadd --gid=4583 koa
  chroot "$r" useradd --uid=4583 --gid=koa -d /koa -M koa
  mkdir -p "$r/koa" "$r/data"
  install -m 0644 "$here/opex/opex_standin.py" "$r/koa/opex_standin.py"
  install -m 0755 "$here/opex/entrypoint.sh" "$r/koa/entrypoint.sh"
  chown -R 4583:4583 "$r/koa" "$r/data"
  chroot "$r" apt-get clean
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/usr/share/doc/* "$r"/usr/share/man/* \
    "$r"/usr/share/locale/* "$r"/usr/share/info/* "$r"/var/log/*.log "$r"/var/cache/debconf/*-old
  l="$work/layout"; umoci init --layout "$l"; umoci new --image "$l:t"
  umoci insert --image "$l:t" "$r" / >/dev/null
  umoci config --image "$l:t" --config.workingdir /koa --config.entrypoint sh \
    --config.entrypoint ./entrypoint.sh --config.volume /data --config.exposedports 5483/tcp \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  skopeo copy -q "oci:$l:t" "docker-archive:$opex/opex.tar:$opex_ref"
  echo "$opex_ref" >"$opex/ref"
  rm -rf "$work"
  built opex "$opex" "$st" "$t0"
  echo "  [opex] $opex_ref: $(du -sh "$opex/opex.tar" | cut -f1)"
fi
ln -f "$opex/opex.tar" "$images/opex.tar"
grep -qxF "$opex_ref" "$images/refs" || echo "$opex_ref" >>"$images/refs"

# --- the controller's Python image (a stand-in) -----------------------------------------
# The image sparkube's controller manifest names (IMAGE of sparkube/controller/bundle.py,
# python:3.11.x-slim-bookworm, Docker Hub's official image, out of reach here). The
# controller needs only a python3 of the same minor version (its code comes from the
# cluster's bucket): the opex stand-in's Debian 12 rootfs has exactly that (python3 3.11),
# so this image is that rootfs without the opex program and its user, laid out as the
# official image: python3 and python in /usr/local/bin, no USER (root by default; the
# manifest runs it as a fixed non-root uid), LANG=C.UTF-8, CMD python3. Deriving it costs
# a repack instead of a second debootstrap.
python_ref="$(sed -n 's/^IMAGE = "\(python:.*\)"$/\1/p' "$repo_root/sparkube/controller/bundle.py")"
[[ -n $python_ref ]] || die "no IMAGE in sparkube/controller/bundle.py"
pyimg="$cache/python"
st="$(stamp_of python "$python_ref" "$(cat "$opex/.stamp")")"
if ! fresh "$pyimg" "$st"; then
  t0=$SECONDS; rm -rf "$pyimg"; mkdir -p "$pyimg"
  work="$(mktemp -d "$cache/.python.XXXXXX")"
  echo "  [python] $python_ref from the opex stand-in's Debian 12 rootfs"
  skopeo copy -q "docker-archive:$opex/opex.tar" "oci:$work/from:t"
  umoci unpack --image "$work/from:t" "$work/bundle" >/dev/null
  r="$work/bundle/rootfs"
  rm -rf "$r/koa" "$r/data"
  chroot "$r" userdel koa
  ln -s /usr/bin/python3 "$r/usr/local/bin/python3"
  ln -s python3 "$r/usr/local/bin/python"
  pyver="$(chroot "$r" python3 -c 'import platform; print(platform.python_version())')"
  [[ ${python_ref#python:} == "${pyver%.*}".* ]] || die "$python_ref stand-in: Debian's python3 is $pyver"
  l="$work/layout"; umoci init --layout "$l"; umoci new --image "$l:t"
  umoci insert --image "$l:t" "$r" / >/dev/null
  umoci config --image "$l:t" --config.cmd python3 --config.env LANG=C.UTF-8 \
    --config.env PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.env "PYTHON_VERSION=$pyver"
  skopeo copy -q "oci:$l:t" "docker-archive:$pyimg/python.tar:$python_ref"
  echo "$python_ref" >"$pyimg/ref"
  rm -rf "$work"
  built python "$pyimg" "$st" "$t0"
  echo "  [python] $python_ref (Debian's Python $pyver): $(du -sh "$pyimg/python.tar" | cut -f1)"
fi
ln -f "$pyimg/python.tar" "$images/python.tar"
grep -qxF "$python_ref" "$images/refs" || echo "$python_ref" >>"$images/refs"

# --- stand-in repositories ----------------------------------------------------------
repo="$cache/repo"
st="$(stamp_of repo "$(cat "$bin/kube/.stamp" "$kube_bin/.stamp" "$bin/debs/.stamp" "$pki/.stamp")" \
  "$mirror" "$deb_version")"
if ! fresh "$repo" "$st"; then
  t0=$SECONDS; rm -rf "$repo"
  k8s="$repo/core:/stable:/v$kube_minor/deb"; mkdir -p "$k8s"
  work="$(mktemp -d "$cache/.repo.XXXXXX")"
  mkdeb() {  # mkdeb NAME DEPENDS DESCRIPTION (files already under $work/NAME)
    local name=$1 p="$work/$1"; mkdir -p "$p/DEBIAN"
    cat >"$p/DEBIAN/control" <<CONTROL
Package: $name
Version: $2
Architecture: amd64
Maintainer: sparkube test bed <testbed@sparkube.invalid>
${3:+Depends: $3
}Section: admin
Priority: optional
Description: $4
CONTROL
    dpkg-deb -Zgzip --root-owner-group --build "$p" "$k8s/${name}_$2_amd64.deb" >/dev/null
  }
  # kubelet, with the unit the real package ships.
  mkdir -p "$work/kubelet/usr/bin" "$work/kubelet/lib/systemd/system"
  install -m 0755 "$bin/kube/kubelet" "$work/kubelet/usr/bin/kubelet"
  cat >"$work/kubelet/lib/systemd/system/kubelet.service" <<'UNIT'
[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
UNIT
  mkdeb kubelet "$deb_version" "iptables (>= 1.4.21), kubernetes-cni (>= 1.1.1), iproute2, mount, ethtool, ebtables, conntrack, socat, util-linux" \
    "Node agent for Kubernetes clusters (test-bed build from the Go module)"
  # kubeadm, with the kubelet drop-in the real package ships.
  mkdir -p "$work/kubeadm/usr/bin" "$work/kubeadm/lib/systemd/system/kubelet.service.d"
  install -m 0755 "$kube_bin/kubeadm" "$work/kubeadm/usr/bin/kubeadm"
  cat >"$work/kubeadm/lib/systemd/system/kubelet.service.d/10-kubeadm.conf" <<'UNIT'
# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
UNIT
  # (the real kubeadm also depends on cri-tools; no crictl is built here, kubeadm does not need it)
  mkdeb kubeadm "$deb_version" "kubelet (>= 1.19.0), kubectl (>= 1.13.0), kubernetes-cni (>= 1.1.1)" \
    "Command-line utility for administering a Kubernetes cluster (test-bed build)"
  mkdir -p "$work/kubectl/usr/bin"; install -m 0755 "$kube_bin/kubectl" "$work/kubectl/usr/bin/kubectl"
  mkdeb kubectl "$deb_version" "" "Command-line utility for interacting with a Kubernetes cluster (test-bed build)"
  mkdir -p "$work/kubernetes-cni/opt/cni/bin"
  cp -a "$bin/debs/x/usr/lib/cni/." "$work/kubernetes-cni/opt/cni/bin/"
  mkdeb kubernetes-cni "1.1.1-1.1" "" "Binaries required to provision container networking (Debian's plugins)"
  sign() {  # sign DIR: Release, InRelease and Release.gpg of a repository folder
    GNUPGHOME="$pki/gnupg" gpg -q --batch --yes --clearsign -o "$1/InRelease" "$1/Release"
    GNUPGHOME="$pki/gnupg" gpg -q --batch --yes -abs -o "$1/Release.gpg" "$1/Release"
  }
  (cd "$k8s" && apt-ftparchive packages . >Packages && gzip -kf Packages \
    && apt-ftparchive -o APT::FTPArchive::Release::Origin=sparkube-testbed release . >Release)
  sign "$k8s"; cp "$pki/Release.key" "$k8s/Release.key"
  # The Debian mirror stand-in: the suite, signed, with no packages (the template has
  # every Debian package prepare.sh installs, so `apt-get install` finds them installed).
  deb="$repo${mirror_path}/dists/$DEBIAN_SUITE"; mkdir -p "$deb/main/binary-amd64"
  : >"$deb/main/binary-amd64/Packages"; gzip -kf "$deb/main/binary-amd64/Packages"
  (cd "$deb" && apt-ftparchive -o APT::FTPArchive::Release::Suite="$DEBIAN_SUITE" \
    -o APT::FTPArchive::Release::Codename="$DEBIAN_SUITE" -o APT::FTPArchive::Release::Components=main \
    -o APT::FTPArchive::Release::Architectures=amd64 release . >Release.new && mv Release.new Release)
  sign "$deb"
  rm -rf "$work"
  built repo "$repo" "$st" "$t0"
fi

# --- registry: every image tar in images/ pushed into a registry's storage -------------
# The bed serves this storage read-only with docker-registry on the bridge (nodes pull
# through sparkube's registry_mirrors setting). Each image is stored under its upstream
# registry's name as the first path component (registry.k8s.io/pause,
# docker.io/apache/spark, ...): one mirror URL per registry, with a path prefix.
# Generic: whatever tars other pieces put in images/ are pushed (the stamp covers them).
reg="$cache/registry"
tars_sig="$(cd "$images" && stat -c '%n %s %Y' ./*.tar)"
st="$(stamp_of registry "$(docker-registry --version)" "$(cat "$pki/.stamp")" "$tars_sig" "$PAUSE_ALIASES")"
if ! fresh "$reg" "$st"; then
  t0=$SECONDS; rm -rf "$reg"; mkdir -p "$reg/storage"
  work="$(mktemp -d "$cache/.registry.XXXXXX")"
  # The stand-ins' certificate: the Kubernetes apt repository and the registry by the
  # names sparkube's settings give them in the tests, and the names /etc/hosts maps.
  openssl req -newkey ed25519 -nodes -subj "/CN=sparkube test bed registry and apt" \
    -keyout "$reg/tls.key" -out "$work/tls.csr" 2>/dev/null
  printf 'subjectAltName=DNS:registry.sparkube.test,DNS:apt.sparkube.test,DNS:pkgs.k8s.io,DNS:%s\nextendedKeyUsage=serverAuth\n' \
    "$mirror_host" >"$work/ext"
  openssl x509 -req -in "$work/tls.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile "$work/ext" -out "$reg/tls.crt" 2>/dev/null
  port=$((20000 + RANDOM % 20000))
  cat >"$work/config.yml" <<CONFIG
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $reg/storage}}
http: {addr: "127.0.0.1:$port"}
CONFIG
  docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
  registry_pid=$!
  trap 'kill "$registry_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.2; done
  curl -fs "http://127.0.0.1:$port/v2/" >/dev/null || { kill "$registry_pid"; cat "$work/registry.log" >&2; die "docker-registry did not start"; }
  push() {  # push SOURCE REF: REF as registry/path:tag in the bed registry
    skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "$1" "docker://127.0.0.1:$port/$2" >/dev/null \
      || { kill "$registry_pid"; die "skopeo copy $1 failed"; }
    echo "$2" >>"$reg/refs"
  }
  for tar in "$images"/*.tar; do
    # each docker-archive's manifest names its images; Docker Hub's shorthand made explicit
    refs="$(tar -xOf "$tar" manifest.json | python3 -c '
import json, sys
for entry in json.load(sys.stdin):
    for ref in entry.get("RepoTags") or ():
        first, _, rest = ref.partition("/")
        if not rest or not ("." in first or ":" in first or first == "localhost"):
            ref = "docker.io/" + (ref if rest else "library/" + ref)
        print(ref)')"
    for ref in $refs; do push "docker-archive:$tar:$ref" "$ref"; done
  done
  pause="registry.k8s.io/pause:$PAUSE_VERSION"
  grep -qx "$pause" "$reg/refs" || { kill "$registry_pid"; die "no $pause among the images"; }
  for tag in $PAUSE_ALIASES; do
    [[ $tag == "$PAUSE_VERSION" ]] || push "docker://127.0.0.1:$port/$pause" "registry.k8s.io/pause:$tag"
  done
  kill "$registry_pid"; wait "$registry_pid" 2>/dev/null || true; trap - EXIT
  rm -rf "$work"
  built registry "$reg" "$st" "$t0"
  echo "  [registry] $(wc -l <"$reg/refs") references, $(du -sh "$reg/storage" | cut -f1)"
fi

echo "Real-node test bed ready in $cache ($((SECONDS - t_all)) s)"
