#!/usr/bin/env bash
# The API benchmark in one command on a bare Debian 12 machine: installs what
# it needs (Debian packages, Node packages; needs root the first time), then
# runs it. Options are passed on: bash bench/api/run.sh --help
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/deps.sh bench
exec npx tsx bench/api/run.ts "$@"
