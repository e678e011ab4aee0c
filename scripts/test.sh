#!/usr/bin/env bash
# Installs what the tests need (PostgreSQL included), starts a throwaway
# PostgreSQL cluster on loopback, and runs the whole suite on SQLite and PostgreSQL.
#   scripts/test.sh [test files...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test
# the Kubernetes control plane the k8s-* tests run against: built from Go modules once per machine (10–25 minutes cold), then cached
echo "==> Kubernetes control-plane binaries: $(bash scripts/k8s-build.sh)"
# MinIO, the real STS a workspace exchanges its workload token at (a separate process, built from its Go module once per machine)
ATRIUM_MINIO=$(bash scripts/minio-build.sh)
export ATRIUM_MINIO
echo "==> MinIO: $ATRIUM_MINIO"

pgdir=$(mktemp -d /tmp/atrium-test-pg.XXXXXX)
port=$((20000 + RANDOM % 20000))
cleanup() { bash scripts/pg-cluster.sh stop "$pgdir"; rm -rf "$pgdir"; }
trap cleanup EXIT
ATRIUM_TEST_POSTGRES=$(bash scripts/pg-cluster.sh start "$pgdir" "$port")
export ATRIUM_TEST_POSTGRES

if [ $# -gt 0 ]; then files=("$@"); else
  # the whole suite: types (server, portal, tests, benchmarks) and lint first, so a red run names the cause at once
  echo "==> type-checking and linting"
  npm run --silent typecheck
  npm run --silent lint
  mapfile -t files < <(find src test -name '*.test.ts' | sort)
fi
echo "==> running ${#files[@]} test files (SQLite and PostgreSQL at $ATRIUM_TEST_POSTGRES)"
node --import tsx --test --test-reporter=spec --test-concurrency=2 "${files[@]}"
