#!/usr/bin/env bash
# Builds the real Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl) and KWOK from Go modules,
# once per machine and version, into a cache outside the repository. Prints
# the directory holding the binaries.
#   scripts/k8s-build.sh            build what is missing, print the bin dir
#   ATRIUM_K8S_CACHE=/path ...      cache root (default /var/cache/atrium-k8s, or ~/.cache/atrium-k8s without root)
# A cold build takes 10–25 minutes on 2 cores; later runs find the binaries and return at once.
set -euo pipefail

KUBERNETES_VERSION=${KUBERNETES_VERSION:-v1.34.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.13}
KWOK_VERSION=${KWOK_VERSION:-v0.7.0}

if [ -n "${ATRIUM_K8S_CACHE:-}" ]; then root=$ATRIUM_K8S_CACHE
elif [ "$(id -u)" = 0 ]; then root=/var/cache/atrium-k8s
else root=${XDG_CACHE_HOME:-$HOME/.cache}/atrium-k8s; fi
bin="$root/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION/bin"
want=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)

have_all() { for b in "${want[@]}"; do [ -x "$bin/$b" ] || return 1; done; }
if have_all; then echo "$bin"; exit 0; fi

command -v go >/dev/null || { echo "k8s-build: Go is needed to build the control plane (go not on PATH)" >&2; exit 1; }
mkdir -p "$bin" "$root/src"
# one build at a time per cache (a second caller waits instead of racing the first)
exec 9>"$root/.lock"
flock 9
if have_all; then echo "$bin"; exit 0; fi

export GOFLAGS=-mod=mod CGO_ENABLED=0
ldflags="-s -w"
log() { echo "k8s-build: $*" >&2; }

# etcd: its go.mod replaces its sibling modules with ../api etc., so `go install` refuses it;
# a tool module that requires the published versions builds it.
if [ ! -x "$bin/etcd" ]; then
  d="$root/src/etcd-$ETCD_VERSION"
  mkdir -p "$d"
  ( cd "$d"
    [ -f go.mod ] || go mod init atrium.dev/k8s-testenv/etcd >/dev/null 2>&1
    log "fetching etcd $ETCD_VERSION"
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
    log "building etcd"
    go build -trimpath -ldflags "$ldflags" -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3 >&2
    mv "$bin/etcd.tmp" "$bin/etcd" )
fi

# Kubernetes: k8s.io/kubernetes requires its staging modules at v0.0.0 with
# `replace => ./staging/...`, and only the main module's replaces count, so the
# tool module repeats each one with the published version (v1.34.3 -> v0.34.3).
missing_k8s=()
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do [ -x "$bin/$b" ] || missing_k8s+=("$b"); done
if [ ${#missing_k8s[@]} -gt 0 ]; then
  d="$root/src/kubernetes-$KUBERNETES_VERSION"
  mkdir -p "$d"
  staging_version="v0.${KUBERNETES_VERSION#v1.}"
  minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  ( cd "$d"
    if [ ! -f go.mod ]; then
      go mod init atrium.dev/k8s-testenv/kubernetes >/dev/null 2>&1
      log "reading k8s.io/kubernetes $KUBERNETES_VERSION's go.mod"
      gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
      mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => \./staging/src/.*#\1#p' "$gomod")
      [ ${#staging[@]} -gt 20 ] || { log "found only ${#staging[@]} staging modules in $gomod"; exit 1; }
      for m in "${staging[@]}"; do go mod edit -replace "$m=$m@$staging_version"; done
      go mod edit -require "k8s.io/kubernetes@$KUBERNETES_VERSION"
    fi
    log "fetching Kubernetes $KUBERNETES_VERSION modules"
    pkgs=()
    for b in "${missing_k8s[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
    go get "${pkgs[@]/%/@$KUBERNETES_VERSION}" >&2
    for b in "${missing_k8s[@]}"; do
      log "building $b (minutes on a small machine)"
      go build -trimpath -ldflags "$ldflags -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
        -o "$bin/$b.tmp" "k8s.io/kubernetes/cmd/$b" >&2
      mv "$bin/$b.tmp" "$bin/$b"
    done )
fi

if [ ! -x "$bin/kwok" ]; then
  log "building kwok $KWOK_VERSION"
  GOBIN="$root/src/kwok-$KWOK_VERSION" go install -trimpath -ldflags "$ldflags" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
  mv "$root/src/kwok-$KWOK_VERSION/kwok" "$bin/kwok"
fi

have_all || { log "not every binary was built"; exit 1; }
echo "$bin"
