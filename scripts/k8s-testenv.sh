#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for tests: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and KWOK (which stands in for the
# kubelets of fake nodes), each a plain process whose files live in DIR.
#
#   scripts/k8s-testenv.sh start DIR [--name N] [--owner-pid PID]
#                                                 start, wait until usable, print DIR/kubeconfig;
#                                                 with --owner-pid, DIR is stopped once PID has exited
#   scripts/k8s-testenv.sh stop DIR               stop every process of DIR (idempotent); a later
#                                                 start in the same DIR makes a fresh cluster
#   scripts/k8s-testenv.sh kill DIR COMPONENT [--hard]
#                                                 stop one component (TERM, then KILL; --hard: KILL at once)
#   scripts/k8s-testenv.sh resume DIR COMPONENT   start it again, same flags and ports, and wait until it serves
#   scripts/k8s-testenv.sh restart DIR COMPONENT  kill, then resume
# COMPONENT is one of: etcd kube-apiserver kube-controller-manager kube-scheduler kwok.
#
# DIR holds kubeconfig (admin, client certificate), env (KUBECONFIG, APISERVER,
# ports, BIN), pki/, and per component COMPONENT.args, .log and .pid. Control
# planes in different DIRs are independent and may start in parallel.
# Binaries come from scripts/k8s-build.sh (built once per machine).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
# KWOK's objects that redirect a fake pod's port-forward, logs, exec and attach
# to real local things; they are watched as custom resources so tests create
# them per pod at run time.
KWOK_CRDS=(PortForward ClusterPortForward Logs ClusterLogs Exec ClusterExec Attach ClusterAttach)
KWOK_CRD_FILES=(portforwards clusterportforwards logs clusterlogs execs clusterexecs attaches clusterattaches)
# kwokctl's default Stages: nodes become Ready at once and keep a Lease, pods run at once.
KWOK_STAGES=(node/fast node/heartbeat-with-lease pod/fast)
# Loopback ports are taken below Linux's ephemeral range (32768+), so a port
# picked here is not handed meanwhile to some other process's outgoing
# connection or listen(0).
PORT_MIN=20000 PORT_MAX=32000
PORT_REGISTRY=${TMPDIR:-/tmp}/atrium-k8s-testenv-ports

log() { echo "k8s-testenv: $*" >&2; }
die() { log "$*"; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2; exit 2; }

is_component() { local c; for c in "${COMPONENTS[@]}"; do [ "$c" = "$1" ] && return 0; done; return 1; }

# --- processes ---------------------------------------------------------------

# pid of COMPONENT if it runs (checked against /proc so a reused pid is not mistaken for it)
running_pid() {
  local dir=$1 comp=$2 pid
  [ -f "$dir/$comp.pid" ] || return 1
  pid=$(<"$dir/$comp.pid")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" | grep -q -- "/$comp\$" || return 1
  echo "$pid"
}

launch() {
  local dir=$1 comp=$2 args
  running_pid "$dir" "$comp" >/dev/null && return 0
  mapfile -t args <"$dir/$comp.args"
  echo "--- $(date -u +%FT%TZ) start" >>"$dir/$comp.log"
  # its own session: a terminal's ^C to the test run does not reach it, and
  # stopping signals the whole group (KWOK's Exec objects run child processes)
  setsid "${args[@]}" </dev/null >>"$dir/$comp.log" 2>&1 &
  echo $! >"$dir/$comp.pid"
}

# TERM every named component, then KILL what still runs after a grace period
terminate() {
  local dir=$1 hard=$2; shift 2
  local comp pid pids=() i
  for comp in "$@"; do
    pid=$(running_pid "$dir" "$comp") || continue
    pids+=("$pid")
    kill "-$([ "$hard" = 1 ] && echo KILL || echo TERM)" -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for ((i = 0; i < 100; i++)); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; done
  for comp in "$@"; do rm -f "$dir/$comp.pid"; done
}

# wait_for WHAT SECONDS LOGFILE COMMAND...: polls COMMAND every 0.1 s
wait_for() {
  local what=$1 seconds=$2 logfile=$3; shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${seconds}s waiting for $what"
      [ -f "$logfile" ] && { log "last lines of $logfile:"; tail -n 25 "$logfile" >&2; }
      return 1
    fi
    sleep 0.1
  done
}

load_env() {
  local dir=$1
  [ -f "$dir/env" ] || die "$dir/env not found: no control plane was started in $dir"
  # shellcheck disable=SC1091
  . "$dir/env"
}

apiserver_get() { curl -sf --max-time 2 --cacert "$DIR/pki/ca.crt" --cert "$DIR/pki/admin.crt" --key "$DIR/pki/admin.key" "$APISERVER$1"; }
etcd_healthy() { curl -sf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
apiserver_ready() { [ "$(apiserver_get /readyz)" = ok ]; }
kcm_healthy() { [ "$(curl -sfk --max-time 2 "https://127.0.0.1:$KUBE_CONTROLLER_MANAGER_PORT/healthz")" = ok ]; }
scheduler_healthy() { [ "$(curl -sfk --max-time 2 "https://127.0.0.1:$KUBE_SCHEDULER_PORT/healthz")" = ok ]; }
kwok_healthy() { [ "$(curl -sf --max-time 2 "http://127.0.0.1:$KWOK_PORT/healthz")" = ok ]; }
kwok_crds_served() {
  local served f
  served=$(apiserver_get /apis/kwok.x-k8s.io/v1alpha1) || return 1
  for f in "${KWOK_CRD_FILES[@]}"; do grep -qE "\"name\": *\"$f\"" <<<"$served" || return 1; done
}
default_sa_exists() { apiserver_get /api/v1/namespaces/default/serviceaccounts/default >/dev/null; }

wait_component() {
  local comp=$1 check
  case $comp in
    etcd) check=etcd_healthy ;;
    kube-apiserver) check=apiserver_ready ;;
    kube-controller-manager) check=kcm_healthy ;;
    kube-scheduler) check=scheduler_healthy ;;
    kwok) check=kwok_healthy ;;
  esac
  wait_for "$comp in $DIR to serve" 60 "$DIR/$comp.log" "$check"
}

# --- ports -------------------------------------------------------------------

port_in_use() { ss -Htan "sport = :$1" | grep -q .; }

# pick_ports DIR N: prints N free loopback ports and records them as DIR's, so
# a parallel start cannot take them before DIR's processes listen
pick_ports() {
  local dir=$1 n=$2 got=() p owner tries=0
  mkdir -p "$PORT_REGISTRY"
  exec 8>"$PORT_REGISTRY/.lock"
  flock 8
  while [ ${#got[@]} -lt "$n" ]; do
    ((tries++ < 2000)) || die "no free loopback port found in $PORT_MIN-$PORT_MAX"
    p=$((PORT_MIN + RANDOM % (PORT_MAX - PORT_MIN)))
    if [ -e "$PORT_REGISTRY/$p" ]; then
      owner=$(<"$PORT_REGISTRY/$p")
      # a record outlives its control plane only if DIR was deleted without stop
      [ -d "$owner" ] && continue
    fi
    port_in_use "$p" && continue
    [[ " ${got[*]} " == *" $p "* ]] && continue
    echo "$dir" >"$PORT_REGISTRY/$p"
    got+=("$p")
  done
  flock -u 8
  exec 8>&-
  echo "${got[@]}"
}

release_ports() {
  local dir=$1 p
  [ -d "$PORT_REGISTRY" ] || return 0
  for p in "$PORT_REGISTRY"/[0-9]*; do
    [ -f "$p" ] && [ "$(<"$p")" = "$dir" ] && rm -f "$p"
  done
  return 0
}

# --- certificates ------------------------------------------------------------

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

new_ca() { # NAME CN
  local pki=$DIR/pki
  new_key "$pki/$1.key"
  openssl req -x509 -new -key "$pki/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -out "$pki/$1.crt" 2>/dev/null
}

new_cert() { # NAME CA SUBJECT EXTENDED-KEY-USAGE [SAN]
  local pki=$DIR/pki name=$1 ca=$2 subject=$3 eku=$4 san=${5:-}
  new_key "$pki/$name.key"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } >"$pki/$name.ext"
  openssl req -new -key "$pki/$name.key" -subj "$subject" 2>/dev/null |
    openssl x509 -req -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" -set_serial "0x$(openssl rand -hex 16)" \
      -days 3650 -sha256 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.ext"
}

make_pki() {
  mkdir -p "$DIR/pki"
  new_ca ca atrium-testenv-ca
  new_ca client-ca atrium-testenv-client-ca
  new_cert apiserver ca /CN=kube-apiserver serverAuth "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.96.0.1"
  # KWOK serves the kubelet API of every fake node at 127.0.0.1 (node-ip)
  new_cert kubelet ca /CN=kwok-kubelet serverAuth "IP:127.0.0.1,DNS:localhost"
  # the aggregation layer's front proxy (kubeadm's front-proxy-ca): the API
  # server's delegated authentication wants this CA even with no extension API server
  new_ca front-proxy-ca atrium-testenv-front-proxy-ca
  new_cert front-proxy-client front-proxy-ca /CN=front-proxy-client clientAuth
  new_cert admin client-ca "/O=system:masters/CN=atrium-testenv-admin" clientAuth
  new_cert apiserver-kubelet-client client-ca "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  new_key "$DIR/pki/sa.key"
  openssl pkey -in "$DIR/pki/sa.key" -pubout -out "$DIR/pki/sa.pub" 2>/dev/null
}

write_kubeconfig() { # FILE NAME SERVER
  local b64='base64 -w0'
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $2
  cluster:
    server: $3
    certificate-authority-data: $($b64 <"$DIR/pki/ca.crt")
users:
- name: $2-admin
  user:
    client-certificate-data: $($b64 <"$DIR/pki/admin.crt")
    client-key-data: $($b64 <"$DIR/pki/admin.key")
contexts:
- name: $2
  context:
    cluster: $2
    user: $2-admin
    namespace: default
current-context: $2
EOF
  chmod 600 "$1"
}

# --- KWOK's configuration, read from the KWOK module's own source -------------

kwok_module_dir() {
  local json
  json=$(cd / && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION") ||
    die "could not get the source of sigs.k8s.io/kwok@$KWOK_VERSION (needed for its default Stages and CRDs)"
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$json"
}

write_kwok_config() { # MODULE-DIR FILE
  local mod=$1 out=$2 stage file
  : >"$out"
  for stage in "${KWOK_STAGES[@]}"; do
    [ -f "$mod/kustomize/stage/$stage/kustomization.yaml" ] || die "no Stage $stage in $mod/kustomize/stage"
    for file in $(sed -n 's/^- \(.*\.yaml\)$/\1/p' "$mod/kustomize/stage/$stage/kustomization.yaml"); do
      { echo "---"; cat "$mod/kustomize/stage/$stage/$file"; } >>"$out"
    done
  done
}

# --- commands ----------------------------------------------------------------

cmd_start() {
  local name="" owner=""
  [ $# -ge 1 ] || usage
  DIR=$1; shift
  while [ $# -gt 0 ]; do
    case $1 in
      --name) name=${2:?--name needs a value}; shift 2 ;;
      --name=*) name=${1#--name=}; shift ;;
      --owner-pid) owner=${2:?--owner-pid needs a value}; shift 2 ;;
      --owner-pid=*) owner=${1#--owner-pid=}; shift ;;
      *) die "start: unknown option $1" ;;
    esac
  done
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  [ -n "$name" ] || name=$(basename "$DIR")
  if [ -f "$DIR/env" ]; then
    load_env "$DIR"
    local comp
    for comp in "${COMPONENTS[@]}"; do running_pid "$DIR" "$comp" >/dev/null && die "a control plane already runs in $DIR (stop it first)"; done
    # a stopped control plane's DIR: start a fresh cluster in it
    release_ports "$DIR"
    rm -rf "${DIR:?}/etcd" "$DIR/pki" "$DIR/env"
  fi

  local started=$SECONDS bin
  bin=$("$here/k8s-build.sh") || die "scripts/k8s-build.sh failed"
  [[ $bin =~ -kwok-(v[^/]+)/bin$ ]] || die "cannot tell KWOK's version from $bin"
  KWOK_VERSION=${BASH_REMATCH[1]}
  # from here on, a failure leaves nothing running
  trap 'rc=$?; if [ $rc != 0 ]; then log "start failed; logs are in $DIR"; cmd_stop_dir "$DIR"; fi' EXIT

  local kwok_mod
  kwok_mod=$(kwok_module_dir)
  make_pki

  local ports
  ports=$(pick_ports "$DIR" 6)
  read -r -a ports <<<"$ports"
  ETCD_PORT=${ports[0]} ETCD_PEER_PORT=${ports[1]} APISERVER_PORT=${ports[2]}
  KUBE_CONTROLLER_MANAGER_PORT=${ports[3]} KUBE_SCHEDULER_PORT=${ports[4]} KWOK_PORT=${ports[5]}
  APISERVER=https://127.0.0.1:$APISERVER_PORT
  KUBECONFIG_FILE=$DIR/kubeconfig
  write_kubeconfig "$KUBECONFIG_FILE" "$name" "$APISERVER"
  local var
  for var in NAME DIR BIN KUBECONFIG APISERVER APISERVER_PORT ETCD_PORT ETCD_PEER_PORT \
    KUBE_CONTROLLER_MANAGER_PORT KUBE_SCHEDULER_PORT KWOK_PORT KWOK_VERSION; do
    case $var in
      NAME) printf '%s=%q\n' "$var" "$name" ;;
      BIN) printf '%s=%q\n' "$var" "$bin" ;;
      KUBECONFIG) printf '%s=%q\n' "$var" "$KUBECONFIG_FILE" ;;
      *) printf '%s=%q\n' "$var" "${!var}" ;;
    esac
  done >"$DIR/env"

  local pki=$DIR/pki
  local etcd_peer=http://127.0.0.1:$ETCD_PEER_PORT etcd_client=http://127.0.0.1:$ETCD_PORT
  # --unsafe-no-fsync: the data is thrown away with DIR, and an fsync per write
  # is most of the API server's write latency on a slow disk
  printf '%s\n' "$bin/etcd" --name=node0 "--data-dir=$DIR/etcd" \
    "--listen-client-urls=$etcd_client" "--advertise-client-urls=$etcd_client" \
    "--listen-peer-urls=$etcd_peer" "--initial-advertise-peer-urls=$etcd_peer" "--initial-cluster=node0=$etcd_peer" \
    --unsafe-no-fsync=true --auto-compaction-retention=1 --log-level=warn >"$DIR/etcd.args"

  # --shutdown-send-retry-after: on TERM the API server drains ordinary
  # requests, then gives open watches 2 s; otherwise it waits for them until
  # its 60 s request timeout, and `kill` would end up sending KILL every time
  printf '%s\n' "$bin/kube-apiserver" "--etcd-servers=$etcd_client" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 "--secure-port=$APISERVER_PORT" "--cert-dir=$DIR/apiserver" \
    "--tls-cert-file=$pki/apiserver.crt" "--tls-private-key-file=$pki/apiserver.key" "--client-ca-file=$pki/client-ca.crt" \
    --authorization-mode=Node,RBAC \
    "--service-account-key-file=$pki/sa.pub" "--service-account-signing-key-file=$pki/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc --service-cluster-ip-range=10.96.0.0/16 \
    --endpoint-reconciler-type=none --allow-privileged=true \
    --kubelet-preferred-address-types=InternalIP,Hostname "--kubelet-certificate-authority=$pki/ca.crt" \
    "--kubelet-client-certificate=$pki/apiserver-kubelet-client.crt" "--kubelet-client-key=$pki/apiserver-kubelet-client.key" \
    "--requestheader-client-ca-file=$pki/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    "--proxy-client-cert-file=$pki/front-proxy-client.crt" "--proxy-client-key-file=$pki/front-proxy-client.key" \
    --shutdown-send-retry-after=true --profiling=false >"$DIR/kube-apiserver.args"

  # no leader election: one instance per control plane, and a restarted one
  # would otherwise wait out its predecessor's lease (15 s) before working.
  # Client rate limits as kwokctl sets them: at the default 20 requests/s the
  # controller manager takes 5 s to start its controllers (each makes its own
  # ServiceAccount and token), and `default` exists only after that.
  printf '%s\n' "$bin/kube-controller-manager" "--kubeconfig=$KUBECONFIG_FILE" \
    "--authentication-kubeconfig=$KUBECONFIG_FILE" "--authorization-kubeconfig=$KUBECONFIG_FILE" \
    --bind-address=127.0.0.1 "--secure-port=$KUBE_CONTROLLER_MANAGER_PORT" "--cert-dir=$DIR/kube-controller-manager" \
    --leader-elect=false --use-service-account-credentials=true --controllers='*' \
    "--root-ca-file=$pki/ca.crt" "--service-account-private-key-file=$pki/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 --profiling=false \
    --kube-api-qps=1000 --kube-api-burst=1000 >"$DIR/kube-controller-manager.args"

  printf '%s\n' "$bin/kube-scheduler" "--kubeconfig=$KUBECONFIG_FILE" \
    "--authentication-kubeconfig=$KUBECONFIG_FILE" "--authorization-kubeconfig=$KUBECONFIG_FILE" \
    --bind-address=127.0.0.1 "--secure-port=$KUBE_SCHEDULER_PORT" "--cert-dir=$DIR/kube-scheduler" \
    --leader-elect=false --profiling=false --kube-api-qps=1000 --kube-api-burst=1000 >"$DIR/kube-scheduler.args"

  write_kwok_config "$kwok_mod" "$DIR/kwok.yaml"
  mkdir -p "$DIR/kwok-home"
  # HOME points into DIR so that a developer's ~/.kwok/kwok.yaml is not merged in
  local crds
  crds=$(IFS=,; echo "${KWOK_CRDS[*]}")
  printf '%s\n' env "HOME=$DIR/kwok-home" "$bin/kwok" "--kubeconfig=$KUBECONFIG_FILE" "--config=$DIR/kwok.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-ip=127.0.0.1 --node-name=localhost "--node-port=$KWOK_PORT" "--server-address=127.0.0.1:$KWOK_PORT" \
    "--tls-cert-file=$pki/kubelet.crt" "--tls-private-key-file=$pki/kubelet.key" \
    --node-lease-duration-seconds=40 "--enable-crds=$crds" >"$DIR/kwok.args"

  # the API server retries etcd as it starts, so both start at once
  launch "$DIR" etcd
  launch "$DIR" kube-apiserver
  wait_component etcd
  wait_component kube-apiserver
  launch "$DIR" kube-controller-manager
  launch "$DIR" kube-scheduler

  # KWOK lists its custom resources as it starts, so they exist before it does
  local crd_args=() f
  for f in "${KWOK_CRD_FILES[@]}"; do crd_args+=(-f "$kwok_mod/kustomize/crd/bases/kwok.x-k8s.io_$f.yaml"); done
  "$bin/kubectl" --kubeconfig "$KUBECONFIG_FILE" apply --server-side "${crd_args[@]}" >"$DIR/crds.log" 2>&1 ||
    { cat "$DIR/crds.log" >&2; false; }
  wait_for "KWOK's custom resources to be served" 30 "$DIR/kube-apiserver.log" kwok_crds_served
  launch "$DIR" kwok

  wait_component kube-controller-manager
  wait_component kube-scheduler
  wait_component kwok
  # the ServiceAccount admission plugin refuses pods until the service account controller made `default`
  wait_for "the default ServiceAccount in $DIR" 60 "$DIR/kube-controller-manager.log" default_sa_exists
  trap - EXIT
  [ -z "$owner" ] || watch_owner "$owner"
  log "control plane $name ready at $APISERVER in $((SECONDS - started))s"
  echo "$KUBECONFIG_FILE"
}

# a test run that dies without stopping its control plane (killed, crashed)
# would leave five processes behind; this watcher stops them when it exits
watch_owner() {
  local owner=$1
  kill -0 "$owner" 2>/dev/null || die "--owner-pid $owner: no such process"
  setsid bash -c 'while kill -0 "$1" 2>/dev/null && [ -f "$2/env" ]; do sleep 1; done; exec bash "$3" stop "$2"' \
    k8s-testenv-watch "$owner" "$DIR" "$here/k8s-testenv.sh" </dev/null >>"$DIR/watch.log" 2>&1 &
  echo $! >"$DIR/watch.pid"
}

cmd_stop_dir() {
  local dir=$1 watcher
  if [ -f "$dir/watch.pid" ]; then
    watcher=$(<"$dir/watch.pid")
    # the watcher itself ends up here through exec, with its own pid
    [ "$watcher" = $$ ] || kill "$watcher" 2>/dev/null || true
    rm -f "$dir/watch.pid"
  fi
  # all at once: the data goes with DIR, so nothing needs etcd to outlive the others
  terminate "$dir" 0 "${COMPONENTS[@]}"
  release_ports "$dir"
}

cmd_stop() {
  [ $# -eq 1 ] || usage
  [ -d "$1" ] || return 0
  local dir
  dir=$(cd "$1" && pwd)
  cmd_stop_dir "$dir"
}

component_args() { # DIR COMPONENT: validates both and loads DIR's env
  [ $# -ge 2 ] || usage
  is_component "$2" || die "unknown component $2 (one of: ${COMPONENTS[*]})"
  [ -d "$1" ] || die "$1 does not exist"
  DIR=$(cd "$1" && pwd)
  load_env "$DIR"
}

cmd_kill() {
  component_args "$@"
  local hard=0
  [ "${3:-}" = --hard ] && hard=1
  terminate "$DIR" "$hard" "$2"
}

cmd_resume() {
  component_args "$@"
  launch "$DIR" "$2"
  wait_component "$2"
}

cmd_restart() {
  cmd_kill "$@"
  cmd_resume "$1" "$2"
}

[ $# -ge 1 ] || usage
command=$1; shift
case $command in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  kill) cmd_kill "$@" ;;
  resume) cmd_resume "$@" ;;
  restart) cmd_restart "$@" ;;
  -h | --help | help) usage ;;
  *) log "unknown command $command"; usage ;;
esac
