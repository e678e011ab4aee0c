#!/usr/bin/env bash
# The SSH benchmark in one command on a bare Debian 12 machine, as root:
# installs what Atrium needs to run workspaces (runc, openssh-server, a C
# compiler; Node packages) and builds dist/ and the agent (scripts/deps.sh
# run, which also links /usr/local/bin/atrium), then runs it. Options are
# passed on: bash bench/ssh/run.sh --help
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/deps.sh run
exec npx tsx bench/ssh/run.ts "$@"
