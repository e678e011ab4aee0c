#!/usr/bin/env bash
# Builds MinIO (server, AGPL-3.0; a separate process the workload identity test
# runs as a real STS, never part of Atrium) from its Go module, once per machine
# and version, into a cache outside the repository. Prints the binary's path.
#   scripts/minio-build.sh          build when missing, print the path
#   ATRIUM_MINIO_CACHE=/path ...    cache root (default /var/cache/atrium-minio, or ~/.cache/atrium-minio without root)
# A cold build takes about 5 minutes on 2 cores; later runs return at once.
set -euo pipefail

# MinIO's release tags are not Go versions: this is the pseudo-version of the commit the module proxy serves as latest
MINIO_VERSION=${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}

if [ -n "${ATRIUM_MINIO_CACHE:-}" ]; then root=$ATRIUM_MINIO_CACHE
elif [ "$(id -u)" = 0 ]; then root=/var/cache/atrium-minio
else root=${XDG_CACHE_HOME:-$HOME/.cache}/atrium-minio; fi
bin="$root/$MINIO_VERSION/minio"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

command -v go >/dev/null || { echo "minio-build: Go is needed to build MinIO (go not on PATH)" >&2; exit 1; }
mkdir -p "$root/$MINIO_VERSION"
exec 9>"$root/.lock"
flock 9
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
echo "minio-build: building MinIO $MINIO_VERSION (about 5 minutes, once per machine)" >&2
tmp=$(mktemp -d "$root/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" "github.com/minio/minio@$MINIO_VERSION" >&2
mv "$tmp/minio" "$bin"
echo "$bin"
