#!/usr/bin/env bash
# Installs what Atrium needs on a fresh Debian 12 machine, as root, idempotently.
#   scripts/deps.sh run    Node packages and the build (what `atrium serve` needs)
#   scripts/deps.sh test   + PostgreSQL for the test suite
#   scripts/deps.sh bench  + PostgreSQL, JupyterHub, configurable-http-proxy and wrk for bench/
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-run}

# the local runtime: runc sandboxes with the agent as PID 1, sshd (and rsync, for rsync over SSH), Jupyter, pip, curl, a compiler and git inside, ext4 homes,
# nftables and iproute2 for public egress, skopeo and umoci for workspace images, acl for team volumes, the agent built with cc;
# the OpenSSH client for `atrium ssh` and `atrium config-ssh`
apt_packages=(ca-certificates runc openssh-server openssh-client rsync jupyter-notebook python3-ipykernel python3-pip curl e2fsprogs gcc libc6-dev git nftables iproute2 skopeo umoci acl)
case "$what" in
  run) ;;
  test) apt_packages+=(postgresql chromium openssl python3-jwt python3-cryptography) ;;
  bench) apt_packages+=(postgresql jupyterhub wrk) ;;
  *) echo "usage: scripts/deps.sh run|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "need root to install: ${missing[*]} (run with sudo)" >&2; exit 1; fi
  echo "==> installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts services of its own (a PostgreSQL cluster on 5432, sshd on 22); Atrium needs neither.
  if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v pg_ctlcluster >/dev/null; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name _; do pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true; done
  fi
  if [[ " ${missing[*]} " == *" openssh-server "* ]]; then
    service ssh stop >/dev/null 2>&1 || true
  fi
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then echo "Atrium needs Node.js 20.19 or newer (found $(node --version 2>/dev/null || echo none))" >&2; exit 1; fi

stamp=node_modules/.atrium-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "==> installing Node packages (npm ci; builds better-sqlite3, argon2 and ssh2's crypto binding from source)"
  # node-gyp builds against this Node's own headers, never downloaded ones
  node_prefix=$(dirname "$(dirname "$(command -v node)")")
  if [ -f "$node_prefix/include/node/node.h" ]; then export npm_config_nodedir="$node_prefix"; fi
  npm_config_build_from_source=true npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
echo "==> building"
npx tsc -p tsconfig.json
npx vite build --config web/vite.config.ts --logLevel warn
mkdir -p dist/agent
cc -O2 -Wall -Wextra -o dist/agent/atrium-agent agent/*.c
chmod +x dist/main.js
if [ "$what" = run ] && [ "$(id -u)" = 0 ] && [ -d /usr/local/bin ]; then
  ln -sfn "$PWD/dist/main.js" /usr/local/bin/atrium
fi
