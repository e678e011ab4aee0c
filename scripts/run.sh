#!/usr/bin/env bash
# Fresh machine → running Atrium: installs what is missing, builds, and starts
# `atrium serve` with its embedded defaults (http://127.0.0.1:8080, SQLite
# under /var/lib/atrium when root). Extra arguments go to `atrium serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh run
exec node dist/main.js serve "$@"
