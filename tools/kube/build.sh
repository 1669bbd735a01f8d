#!/usr/bin/env bash
# Build the test Kubernetes control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok, etcd) and kubeadm (whose config
# checks the tests run on the files sparkube renders) from Go modules into a cache
# folder outside the repository, keyed by version:
#
#   ${SPARKUBE_KUBE_CACHE:-$HOME/.cache/sparkube/kube}/<KUBE_VERSION>/bin/
#
# Idempotent: returns at once when every binary is present and was built from the
# current go.mod/go.sum/versions.env. Needs Go >= 1.26 (and the Go module proxy).
#
# Environment:
#   SPARKUBE_KUBE_CACHE       cache root (default ~/.cache/sparkube/kube)
#   SPARKUBE_KUBE_BUILD_JOBS  go build -p value (default: CPUs, capped by memory)
#   SPARKUBE_KUBE_FORCE=1     rebuild even if the binaries are present
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

die() { echo "tools/kube/build.sh: error: $*" >&2; exit 1; }

cache_root="${SPARKUBE_KUBE_CACHE:-$HOME/.cache/sparkube/kube}"
dest="$cache_root/$KUBE_VERSION/bin"
binaries=(kube-apiserver kube-controller-manager kube-scheduler kubectl kwok etcd kubeadm)

# The stamp identifies the inputs; a change to any of them triggers a rebuild.
# Bump RECIPE when a change to this script changes the binaries (flags, ldflags).
RECIPE=2
inputs=("$here/versions.env"
        "$here/go.mod" "$here/go.sum" "$here/tools.go"
        "$here/kwok/go.mod" "$here/kwok/go.sum" "$here/kwok/tools.go"
        "$here/etcd/go.mod" "$here/etcd/go.sum" "$here/etcd/tools.go")
for f in "${inputs[@]}"; do [[ -f $f ]] || die "missing input file $f"; done
stamp="$({ echo "recipe $RECIPE"; cat "${inputs[@]}"; } | sha256sum | cut -c1-16)"

all_present() {
  local b
  for b in "${binaries[@]}"; do [[ -x "$dest/$b" ]] || return 1; done
  [[ -f "$dest/.stamp" && "$(cat "$dest/.stamp")" == "$stamp" ]]
}

if [[ "${SPARKUBE_KUBE_FORCE:-0}" != 1 ]] && all_present; then
  echo "Kubernetes test binaries $KUBE_VERSION present in $dest"
  exit 0
fi

# --- preconditions -----------------------------------------------------------
command -v go >/dev/null 2>&1 || die "'go' not found on PATH: install Go >= 1.26 to build the test control plane (or the integration tests that need it will skip)"
gover="$(go env GOVERSION)"            # e.g. go1.26.8
IFS=. read -r gmaj gmin _ <<<"${gover#go}"
if (( gmaj < 1 || (gmaj == 1 && gmin < 26) )); then
  echo "tools/kube/build.sh: note: $gover is older than the go 1.26.0 these modules need; Go will try to fetch a newer toolchain from the module proxy" >&2
fi

# The go.mod files must agree with versions.env (one place for the versions).
grep -qE "^require k8s.io/kubernetes $KUBE_VERSION\$" "$here/go.mod" \
  || die "tools/kube/go.mod does not require k8s.io/kubernetes $KUBE_VERSION (versions.env)"
if grep -E '^\s+k8s.io/[a-z-]+ => k8s.io/[a-z-]+ v' "$here/go.mod" | grep -vq " $KUBE_STAGING_VERSION\$"; then
  die "tools/kube/go.mod has staging replaces not pinned to $KUBE_STAGING_VERSION (versions.env)"
fi
grep -qE "^require sigs.k8s.io/kwok $KWOK_VERSION\$" "$here/kwok/go.mod" \
  || die "tools/kube/kwok/go.mod does not require sigs.k8s.io/kwok $KWOK_VERSION (versions.env)"
grep -qE "^require go.etcd.io/etcd/server/v3 $ETCD_VERSION\$" "$here/etcd/go.mod" \
  || die "tools/kube/etcd/go.mod does not require go.etcd.io/etcd/server/v3 $ETCD_VERSION (versions.env)"

mkdir -p "$cache_root/$KUBE_VERSION"

# One build at a time per cache folder (test runners may call us concurrently).
exec 9>"$cache_root/$KUBE_VERSION/.build.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
  if [[ "${SPARKUBE_KUBE_FORCE:-0}" != 1 ]] && all_present; then
    echo "Kubernetes test binaries $KUBE_VERSION present in $dest (built by another process)"
    exit 0
  fi
fi

# Parallelism: each compile/link of these large packages can take ~1-2 GB, so cap
# the job count by memory as well as by CPUs.
if [[ -z "${SPARKUBE_KUBE_BUILD_JOBS:-}" ]]; then
  cpus="$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)"
  mem_gib="$(awk '/MemAvailable/ {print int($2/1048576)}' /proc/meminfo 2>/dev/null || echo 4)"
  jobs=$(( mem_gib / 2 ))
  (( jobs < 1 )) && jobs=1
  (( jobs > cpus )) && jobs=$cpus
else
  jobs="$SPARKUBE_KUBE_BUILD_JOBS"
fi

export CGO_ENABLED=0
export GOFLAGS="-mod=readonly -buildvcs=false -trimpath"

stage="$(mktemp -d "$cache_root/$KUBE_VERSION/.build.XXXXXX")"
trap 'rm -rf "$stage"' EXIT

echo "Building Kubernetes test binaries $KUBE_VERSION (kwok $KWOK_VERSION, etcd $ETCD_VERSION) with $gover, -p $jobs"
echo "  into $dest  (cold: ~25 min on 2 cores incl. module download; warm Go caches: ~1 min)"
t_all=$SECONDS

step() {  # step NAME DIR LDFLAGS PACKAGES...
  local name=$1 dir=$2 ldflags=$3; shift 3
  local t0=$SECONDS
  echo "  [$name] go build $*"
  if ! (cd "$dir" && go build -p "$jobs" -ldflags "$ldflags" -o "$stage/" "$@"); then
    die "building $name failed (go build in $dir; see the Go errors above)"
  fi
  echo "  [$name] done in $((SECONDS - t0)) s"
}

build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
major="${KUBE_VERSION#v}"; major="${major%%.*}"
minor="${KUBE_VERSION#v*.}"; minor="${minor%%.*}"
kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  kube_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

step etcd "$here/etcd" "-s -w" go.etcd.io/etcd/server/v3
# go names the binary of .../server/v3 after "server"
for n in server v3; do [[ -x "$stage/$n" ]] && mv "$stage/$n" "$stage/etcd"; done
step kwok "$here/kwok" "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$KUBE_VERSION" sigs.k8s.io/kwok/cmd/kwok
step kubernetes "$here" "$kube_ldflags" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes/cmd/kubeadm

for b in "${binaries[@]}"; do [[ -x "$stage/$b" ]] || die "build produced no $b"; done
"$stage/kube-apiserver" --version | grep -q "$KUBE_VERSION" || die "kube-apiserver --version does not say $KUBE_VERSION"
"$stage/kubeadm" version -o short | grep -qx "$KUBE_VERSION" || die "kubeadm version -o short does not say $KUBE_VERSION"

mkdir -p "$dest"
for b in "${binaries[@]}"; do mv -f "$stage/$b" "$dest/$b"; done
echo "$stamp" > "$dest/.stamp"

total=$((SECONDS - t_all))
echo "Built in ${total} s ($((total / 60)) min $((total % 60)) s):"
(cd "$dest" && du -h "${binaries[@]}" | sed 's/^/  /')
