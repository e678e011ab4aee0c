#!/bin/bash
# The workspace image's entrypoint (/usr/local/bin/atrium-entrypoint), run by
# tini as the workspace user. It writes sshd's configuration under a private
# directory of its own, builds the app's command line for the workspace's
# environment and execs atrium-agent, which then listens for HTTP and SSH,
# runs the app with its output on this container's log, reaps orphans and
# stops everything on SIGTERM (see docs/workspace-image.md).
#
# Read from the environment (what Atrium sets on the pod):
#   ATRIUM_ENVIRONMENT  jupyter (default) | shell | custom
#   NB_PREFIX           the path the workspace is served under, /w/<team>/<workspace>/
#   ATRIUM_APP_PORT     the port the app listens on, on 127.0.0.1 (custom: the
#                       profile's, default 8080; jupyter: default 8889)
#   ATRIUM_SECRET_DIR   where the workspace's Secret is mounted (default /etc/atrium):
#                       ssh_host_ed25519_key, authorized_keys, jupyter_token
#   JUPYTER_TOKEN       the Jupyter token, when not in the Secret's jupyter_token
#   ATRIUM_HTTP_PORT    where the agent listens for HTTP, [ADDR:]PORT (default 8888)
#   ATRIUM_SSH_PORT     where the agent listens for SSH, [ADDR:]PORT (default 2222)
#   ATRIUM_SSH_AGENT_FORWARDING  yes to let SSH clients forward their agent (default no)
# The container's arguments are the app's command for `custom`, and extra
# options of the Jupyter server for `jupyter`.
set -euo pipefail

# A line of the platform's own, marked as the agent marks its (output.c): the
# reasons a workspace did not start read the same as the agent's.
say() { printf '\036[atrium %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
fail() { say "$*"; exit 2; }

environment=${ATRIUM_ENVIRONMENT:-jupyter}
secret_dir=${ATRIUM_SECRET_DIR:-/etc/atrium}
http_listen=${ATRIUM_HTTP_PORT:-8888}
ssh_listen=${ATRIUM_SSH_PORT:-2222}
home=${HOME:-/home/jovyan}

case $secret_dir in
  /*) ;;
  *) fail "ATRIUM_SECRET_DIR must be an absolute path (got $secret_dir)" ;;
esac
# sshd reads these paths from its configuration, where quotes, % and line breaks mean something
case $secret_dir$home${TMPDIR:-} in
  *[\"%$'\n']*) fail "ATRIUM_SECRET_DIR, HOME and TMPDIR may not hold \", % or a line break" ;;
esac
user=$(id -un 2>/dev/null) || fail "uid $(id -u) has no entry in /etc/passwd: sshd can sign nobody in (the image's user is jovyan, uid 1000)"

# ---------------------------------------------------------------------------
# The app, per environment.
app=()
app_port=
case $environment in
  jupyter)
    app_port=${ATRIUM_APP_PORT:-8889}
    base_url=${NB_PREFIX:-/}
    base_url=${base_url%/}/
    token=${JUPYTER_TOKEN:-}
    if [ -z "$token" ] && [ -r "$secret_dir/jupyter_token" ]; then token=$(tr -d '\r\n' <"$secret_dir/jupyter_token"); fi
    if [ -n "$token" ]; then
      # through the environment, not the command line: ps shows command lines to everyone
      export JUPYTER_TOKEN=$token
    else
      say "no Jupyter token in $secret_dir/jupyter_token nor in JUPYTER_TOKEN: Jupyter makes up its own (see its log)"
    fi
    # the server listens on loopback only: the agent relays to it, and it never faces the network itself
    app=(jupyter-notebook --no-browser --ip=127.0.0.1 "--port=$app_port" --port-retries=0
      "--NotebookApp.base_url=$base_url" --NotebookApp.allow_remote_access=True
      "--NotebookApp.notebook_dir=$home" --NotebookApp.quit_button=False "$@")
    ;;
  custom)
    [ $# -gt 0 ] || fail "the custom environment needs its command as the container's arguments"
    app_port=${ATRIUM_APP_PORT:-8080}
    app=("$@")
    ;;
  shell)
    [ $# -eq 0 ] || say "the shell environment runs no app: arguments ignored ($*)"
    ;;
  *)
    fail "ATRIUM_ENVIRONMENT must be jupyter, shell or custom (got $environment)"
    ;;
esac
case $app_port in
  '' | [1-9] | [1-9][0-9] | [1-9][0-9][0-9] | [1-9][0-9][0-9][0-9] | [1-9][0-9][0-9][0-9][0-9]) ;;
  *) fail "ATRIUM_APP_PORT must be a port number (got $app_port)" ;;
esac
relay_http=
if [ -n "$app_port" ]; then
  relay_http=yes
  if [ "$app_port" = "${http_listen##*:}" ]; then
    # the agent cannot take the app's own port: the app then faces the pod's network itself
    say "the app listens on the HTTP port $app_port itself: it must listen on every address, not 127.0.0.1"
    relay_http=
  fi
fi

# ---------------------------------------------------------------------------
# sshd, run per connection by the agent (`sshd -i`) as this user: a private
# directory for its configuration and host key (copied: sshd refuses a key
# file of its own user that others may read, and the Secret's mode is the
# cluster's to choose).
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/atrium-sshd.XXXXXX")
if [ -r "$secret_dir/ssh_host_ed25519_key" ]; then
  install -m 0600 "$secret_dir/ssh_host_ed25519_key" "$run_dir/ssh_host_ed25519_key"
else
  say "no SSH host key in $secret_dir/ssh_host_ed25519_key: using one made for this run, which clients will not know"
  ssh-keygen -q -t ed25519 -N '' -C "$user@workspace" -f "$run_dir/ssh_host_ed25519_key"
fi
[ -r "$secret_dir/authorized_keys" ] || say "no $secret_dir/authorized_keys: nobody can sign in over SSH"

# sshd starts sessions with a clean environment: SetEnv gives them the
# container's (the app's), less the Jupyter token and what sshd sets itself.
# sshd takes the first SetEnv line only, so every pair goes on one line, quoted.
set_env=
while IFS= read -r -d '' pair; do
  name=${pair%%=*}
  [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
  case $name in
    JUPYTER_TOKEN | HOME | USER | LOGNAME | SHELL | MAIL | TERM | PWD | OLDPWD | SHLVL | _) continue ;;
  esac
  value=${pair#*=}
  value=${value//[\"\\$'\n']/}
  set_env+=" \"$name=$value\""
done < <(env -0)

forwarding=no
[ "${ATRIUM_SSH_AGENT_FORWARDING:-no}" = yes ] && forwarding=yes

# As the local runtime's sshd (src/runtime/local/etc.ts): keys only, the
# platform's authorized_keys, forwarding of local ports only, agent
# forwarding only when the profile allows it. authorized_keys is read where
# the Secret is mounted, so keys people add reach the next connection without
# a restart; StrictModes would refuse it there (Kubernetes mounts a Secret
# through a world-writable directory with the sticky bit), and it guards
# nothing here: the mount is read-only, and this user is the only one.
# The directory is this user's alone (mktemp -d).
cat >"$run_dir/sshd_config" <<EOF
${set_env:+SetEnv$set_env}
HostKey "$run_dir/ssh_host_ed25519_key"
AuthorizedKeysFile "$secret_dir/authorized_keys"
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin no
AllowUsers $user
StrictModes no
AllowTcpForwarding local
AllowAgentForwarding $forwarding
AllowStreamLocalForwarding no
X11Forwarding no
PermitTunnel no
PermitUserEnvironment no
PrintMotd no
PidFile none
LogLevel ERROR
Subsystem sftp /usr/lib/openssh/sftp-server
EOF

# ---------------------------------------------------------------------------
args=(--sshd-config "$run_dir/sshd_config" --ssh-listen "$ssh_listen")
[ -n "$relay_http" ] && args+=(--http-listen "$http_listen" --port "$app_port")
[ ${#app[@]} -gt 0 ] && args+=(-- "${app[@]}")
cd "$home"
exec atrium-agent "${args[@]}"
