#!/usr/bin/env bash
# The compose cluster test: builds the image and runs docker-compose.yml's
# three nodes for real, then checks them through their published ports.
# Optional for developers (scripts/test.sh does not run it); CI runs it after
# scripts/test.sh. Needs root, or a user that can reach a running Docker
# engine.
#
#   scripts/docker_test.sh          everything below; PASS/FAIL summary
#   scripts/docker_test.sh --keep   leave the cluster (and a dockerd this run
#                                   started) running afterwards, to look at
#
# What it sets up, only where missing:
#   - the packages docker.io, docker-compose and debootstrap (apt-get, root);
#   - a Docker engine: it reuses one that answers ($DOCKER_HOST, its own
#     socket from an earlier --keep run, /var/run/docker.sock), else starts
#     dockerd with its own data root, socket and exec root (below) and stops
#     it at the end. That dockerd runs with --iptables=false --ip-masq=false
#     --ip-forward=false --bridge=none: it changes no firewall rule or
#     sysctl and leaves no docker0 behind; the compose network and
#     docker-proxy (which publishes the ports) are all the cluster needs;
#   - the base image debian:bookworm-slim, made with debootstrap from the apt
#     mirror this machine uses (no image registry is needed). It stays in the
#     engine, as does the deps layer of the Dockerfile, so a second run only
#     rebuilds what the sources changed.
# The image is built with BuildKit when the engine's docker CLI has it (the
# runtime target then skips the Dockerfile's test stage), else with the
# legacy builder; either way with --network host, so the deps stage reaches
# the apt mirror without relying on the bridge's NAT.
#
# The cluster runs as the compose project dist_counter_test with its ports
# bound to 127.0.0.1 (7777, 8888, 9999 must be free). Checks, in order:
# the image's user is not root; all three nodes turn healthy; increments on
# each node converge to the exact sum everywhere; ldb scans the running
# node's data; after `kill counter2`, consistent_value on counter1 is 503
# naming counter2:7777; after `start counter2` it catches up; `stop` exits 0
# for each node with the "stopped cleanly" log line; after `down`, each node
# started alone holds every counter (from its named volume, not from a
# peer), and so do all three after `up`. At the end the project's
# containers, network and volumes are removed.
#
# Environment: DOCKER_TEST_STATE (dockerd's data root and log, default
# /var/lib/dist_counter-docker), DEBIAN_MIRROR (default: the first bookworm
# mirror in /etc/apt), DOCKER_TEST_BUILDER (buildkit, legacy; default: auto),
# DOCKERD_FLAGS (extra dockerd flags, split on spaces), DOCKER_TEST_TIMEOUT
# (seconds each wait may take, default 90).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
# shellcheck source=scripts/lib/common.sh
source "${ROOT}/scripts/lib/common.sh"

keep=0
for arg in "$@"; do
  case "${arg}" in
    --keep) keep=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "${SCRIPT_NAME}: unknown argument '${arg}'" >&2; usage >&2; exit 2 ;;
  esac
done

readonly STATE_DIR="${DOCKER_TEST_STATE:-/var/lib/dist_counter-docker}"
# The socket and exec root live under /run: containerd's socket paths must
# stay short.
readonly OWN_SOCKET="/run/dist_counter-docker.sock"
readonly OWN_EXEC_ROOT="/run/dist_counter-docker"
readonly BASE_IMAGE="debian:bookworm-slim"
readonly IMAGE="dist_counter:local"
readonly PROJECT="dist_counter_test"
readonly WAIT="${DOCKER_TEST_TIMEOUT:-90}"
readonly NODES=(counter1 counter2 counter3)
declare -A PORT=([counter1]=7777 [counter2]=8888 [counter3]=9999)

script_start=${SECONDS}
work="$(mktemp -d "${TMPDIR:-/tmp}/docker_test.XXXXXX")"
started_dockerd_pid=""
project_up=0

log() { echo "${SCRIPT_NAME}: $*"; }

elapsed() {
  printf '%dm%02ds' $(( $1 / 60 )) $(( $1 % 60 ))
}

# The docker CLI: Debian's (docker.io, the engine's own version, with a
# built-in BuildKit client) when installed, else the first on PATH.
DOCKER_CLI="${DOCKER_CLI:-}"
docker() {
  if [[ -z "${DOCKER_CLI}" ]]; then
    if [[ -x /usr/bin/docker ]]; then
      DOCKER_CLI=/usr/bin/docker
    else
      DOCKER_CLI="$(type -P docker)" || die "no docker CLI"
    fi
  fi
  "${DOCKER_CLI}" "$@"
}

# ---------------------------------------------------------------- results

results=()
failures=0
# Records a check: pass|fail, then its description.
record() {
  local verdict="$1"
  shift
  if [[ "${verdict}" == pass ]]; then
    results+=("  PASS  $*")
    log "PASS: $*"
  else
    results+=("  FAIL  $*")
    failures=$(( failures + 1 ))
    log "FAIL: $*" >&2
  fi
}

print_summary() {
  echo
  echo "==================== docker_test.sh summary ===================="
  if (( ${#results[@]} )); then
    printf '%s\n' "${results[@]}"
  fi
  echo "  setup $(elapsed "${setup_seconds:-0}"), total $(elapsed $(( SECONDS - script_start )))"
  if (( failures )); then
    echo "  RESULT: FAIL (${failures} failed)"
  else
    echo "  RESULT: PASS"
  fi
}

# ---------------------------------------------------------------- cleanup

compose() {
  DIST_COUNTER_HOST_IP=127.0.0.1 docker-compose -p "${PROJECT}" \
    -f "${ROOT}/docker-compose.yml" "$@"
}

cleanup() {
  local rc=$?
  set +e
  if (( project_up )); then
    if (( keep )); then
      log "--keep: the cluster is still up (docker-compose -p ${PROJECT} ...)"
    else
      # Only this project's containers, its network and its volumes.
      compose down -v --remove-orphans >"${work}/down.log" 2>&1 \
        || { log "docker-compose down -v failed:"; cat "${work}/down.log"; }
    fi
  fi
  if [[ -n "${started_dockerd_pid}" ]]; then
    if (( keep )); then
      log "--keep: dockerd (pid ${started_dockerd_pid}) still runs; DOCKER_HOST=unix://${OWN_SOCKET}"
    else
      log "stopping the dockerd this run started (pid ${started_dockerd_pid})"
      kill -TERM "${started_dockerd_pid}" 2>/dev/null
      # dockerd stops its containers and its containerd first.
      if ! wait_gone "${started_dockerd_pid}" 600; then
        log "dockerd ignored SIGTERM for 60 s; killing it" >&2
        kill -KILL "${started_dockerd_pid}" 2>/dev/null
      fi
    fi
  fi
  rm -rf "${work}"
  exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- setup

# Installs those of docker.io, docker-compose and debootstrap that are
# missing (only those this run needs), as root.
install_packages() {
  local want=() missing=() pkg
  type -P docker >/dev/null 2>&1 || want+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || want+=(docker-compose)
  command -v dockerd >/dev/null 2>&1 || want+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || want+=(debootstrap)
  for pkg in "${want[@]}"; do
    [[ " ${missing[*]} " == *" ${pkg} "* ]] || missing+=("${pkg}")
  done
  (( ${#missing[@]} )) || return 0
  if [[ "$(id -u)" -ne 0 ]]; then
    die "missing ${missing[*]}; run as root, or: apt-get install -y ${missing[*]}"
  fi
  log "installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

engine_answers() {
  timeout 20 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# Points DOCKER_HOST at an engine that answers, starting our own dockerd if
# none does.
ensure_engine() {
  if [[ -n "${DOCKER_HOST:-}" ]] && engine_answers; then
    log "using the engine at DOCKER_HOST=${DOCKER_HOST}"
    return 0
  fi
  local candidate
  for candidate in "unix://${OWN_SOCKET}" unix:///var/run/docker.sock; do
    export DOCKER_HOST="${candidate}"
    if [[ -S "${candidate#unix://}" ]] && engine_answers; then
      log "using the running engine at ${DOCKER_HOST}"
      return 0
    fi
  done
  [[ "$(id -u)" -eq 0 ]] || die "no Docker engine answers and starting dockerd needs root"
  export DOCKER_HOST="unix://${OWN_SOCKET}"
  start_dockerd || die "dockerd did not start; its log: ${STATE_DIR}/dockerd.log"
}

# Starts dockerd with our data root, socket and exec root (plus
# $DOCKERD_FLAGS) and waits until it answers. Returns 1 if it exits or does
# not answer within 60 s. It touches no firewall rule, no sysctl and makes
# no docker0: builds use the host's network, and the cluster needs only its
# compose network and docker-proxy publishing its ports on 127.0.0.1.
start_dockerd() {
  mkdir -p "${STATE_DIR}/docker" "${OWN_EXEC_ROOT}"
  rm -f "${OWN_SOCKET}"
  local extra=()
  # shellcheck disable=SC2206  # split on spaces on purpose
  [[ -z "${DOCKERD_FLAGS:-}" ]] || extra=(${DOCKERD_FLAGS})
  log "starting dockerd (data root ${STATE_DIR}/docker, socket ${OWN_SOCKET}) ${extra[*]}"
  dockerd --data-root "${STATE_DIR}/docker" --exec-root "${OWN_EXEC_ROOT}" \
    --host "unix://${OWN_SOCKET}" --pidfile "${OWN_EXEC_ROOT}/dockerd.pid" \
    --iptables=false --ip-masq=false --ip-forward=false --bridge=none \
    "${extra[@]}" >>"${STATE_DIR}/dockerd.log" 2>&1 &
  started_dockerd_pid=$!
  local i
  for (( i = 0; i < 600; i++ )); do
    if ! alive "${started_dockerd_pid}"; then
      wait "${started_dockerd_pid}" 2>/dev/null || true
      started_dockerd_pid=""
      tail -n 5 "${STATE_DIR}/dockerd.log" >&2
      return 1
    fi
    [[ -S "${OWN_SOCKET}" ]] && engine_answers && return 0
    sleep 0.1
  done
  kill -TERM "${started_dockerd_pid}" 2>/dev/null || true
  wait_gone "${started_dockerd_pid}" 300 || kill -KILL "${started_dockerd_pid}" 2>/dev/null
  started_dockerd_pid=""
  return 1
}

# Prints the bookworm mirror this machine's apt uses: $DEBIAN_MIRROR, else
# the URI of the first deb822 stanza or sources.list line for suite bookworm.
# Prints nothing when apt names no bookworm mirror: the project names no
# package host of its own, so the caller fails with a message instead.
debian_mirror() {
  if [[ -n "${DEBIAN_MIRROR:-}" ]]; then
    echo "${DEBIAN_MIRROR}"
    return
  fi
  local url=""
  shopt -s nullglob
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    url="$(awk '
      function flush() {
        if (uri != "" && types ~ /(^| )deb( |$)/ && suites ~ /(^| )bookworm( |$)/ && !found) {
          print uri; found = 1
        }
        uri = ""; types = ""; suites = ""
      }
      /^[ \t]*$/ { flush(); next }
      /^URIs:/ { uri = $2 }
      /^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
      /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
      END { flush() }' "${f}")"
    [[ -z "${url}" ]] || break
  done
  shopt -u nullglob
  if [[ -z "${url}" && -r /etc/apt/sources.list ]]; then
    url="$(awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                              if ($(i + 1) == "bookworm") { print $i; exit } }' \
           /etc/apt/sources.list)"
  fi
  echo "${url}"
}

# Makes debian:bookworm-slim with debootstrap unless the engine has it.
ensure_base_image() {
  if docker image inspect "${BASE_IMAGE}" >/dev/null 2>&1; then
    log "base image ${BASE_IMAGE} present"
    return 0
  fi
  [[ "$(id -u)" -eq 0 ]] || die "${BASE_IMAGE} is missing and debootstrap needs root"
  local mirror rootfs="${work}/rootfs"
  mirror="$(debian_mirror)"
  [[ -n "${mirror}" ]] || die "no bookworm mirror in /etc/apt/sources.list{,.d/*.sources}:" \
    "set DEBIAN_MIRROR=<url of a Debian bookworm mirror> or add one to apt's sources"
  log "making ${BASE_IMAGE} with debootstrap from ${mirror}"
  if ! debootstrap --variant=minbase bookworm "${rootfs}" "${mirror}" \
      >"${work}/debootstrap.log" 2>&1; then
    tail -n 20 "${work}/debootstrap.log" >&2
    die "debootstrap failed"
  fi
  # What the slim image leaves out: downloaded packages and index files.
  rm -rf "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/lib/apt/lists/*
  tar -C "${rootfs}" -c . \
    | docker import --change 'CMD ["bash"]' - "${BASE_IMAGE}" >/dev/null
  rm -rf "${rootfs}"
}

# Builds dist_counter:local (the Dockerfile's runtime target).
build_image() {
  local builder="${DOCKER_TEST_BUILDER:-auto}"
  if [[ "${builder}" == auto ]]; then
    builder=legacy
    DOCKER_BUILDKIT=1 docker build --help 2>/dev/null | grep -q -- '--progress' \
      && builder=buildkit
  fi
  log "building ${IMAGE} (${builder} builder)"
  local previous
  previous="$(docker image inspect --format '{{.Id}}' "${IMAGE}" 2>/dev/null || true)"
  local buildkit=0 flags=()
  if [[ "${builder}" == buildkit ]]; then
    buildkit=1
  else
    # The legacy builder otherwise keeps the container of a failed step.
    flags=(--force-rm)
  fi
  if ! DOCKER_BUILDKIT=${buildkit} docker build --network host "${flags[@]}" \
      --target runtime -t "${IMAGE}" "${ROOT}" >"${work}/build.log" 2>&1; then
    tail -n 40 "${work}/build.log" >&2
    return 1
  fi
  # The image the tag moved away from (its layers below stay cached); kept
  # if a container still uses it.
  if [[ -n "${previous}" && "${previous}" != "$(docker image inspect --format '{{.Id}}' "${IMAGE}")" ]]; then
    docker rmi "${previous}" >/dev/null 2>&1 || true
  fi
}

# ---------------------------------------------------------------- checks

# GET/POST through a published port. Sets http_code and http_body.
http() {
  local method="$1" port="$2" path="$3" data="${4:-}"
  local args=(-sS -m 5 --noproxy '*' -o "${work}/body" -w '%{http_code}' -X "${method}")
  [[ -z "${data}" ]] || args+=(-d "${data}")
  http_code="$(curl "${args[@]}" "http://127.0.0.1:${port}${path}" 2>/dev/null)" \
    || http_code="${http_code:-000}"
  http_body="$(cat "${work}/body" 2>/dev/null || true)"
}

# Runs "$@" every half second until it succeeds or $WAIT seconds pass.
eventually() {
  local deadline=$(( SECONDS + WAIT ))
  while ! "$@"; do
    (( SECONDS < deadline )) || return 1
    sleep 0.5
  done
}

container_of() { compose ps -q "$1"; }

health_of() {
  docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' \
    "$(container_of "$1")" 2>/dev/null
}

all_healthy() {
  local node
  for node in "$@"; do
    [[ "$(health_of "${node}")" == healthy ]] || return 1
  done
}

# True if GET <path> on every node in "$@" answers 200 with body $expected.
values_are() {
  local path="$1"
  shift
  local node
  for node in "$@"; do
    http GET "${PORT[${node}]}" "${path}"
    [[ "${http_code}" == 200 && "${http_body}" == "${expected}" ]] || return 1
  done
}

# Prints every node's value of counter $1, for failure messages.
show_values() {
  local node out=()
  for node in "${NODES[@]}"; do
    http GET "${PORT[${node}]}" "/counter/$1/value"
    out+=("${node}=${http_code}:${http_body}")
  done
  echo "${out[*]}"
}

# Increments counter $1 by $3 on node $2 and adds it to expected_sum[$1].
declare -A expected_sum=()
bad=()
increment() {
  http POST "${PORT[$2]}" "/counter/$1" "$3"
  if [[ "${http_code}" != 204 ]]; then
    log "POST /counter/$1 $3 on $2: ${http_code} ${http_body}" >&2
    return 1
  fi
  expected_sum[$1]=$(( ${expected_sum[$1]:-0} + $3 ))
}

converged() {
  local counter="$1"
  shift
  local expected="${expected_sum[${counter}]}"
  values_are "/counter/${counter}/value" "$@"
}

# Checks that the cluster just came up healthy. $1 describes the occasion.
check_healthy() {
  if eventually all_healthy "${NODES[@]}"; then
    record pass "$1: all three nodes healthy"
    return 0
  fi
  local node states=()
  for node in "${NODES[@]}"; do states+=("${node}=$(health_of "${node}")"); done
  record fail "$1: not all healthy within ${WAIT} s (${states[*]})"
  return 1
}

check_ports_on_loopback() {
  local node binding bad=()
  for node in "${NODES[@]}"; do
    binding="$(docker port "$(container_of "${node}")" 7777/tcp 2>/dev/null | tr '\n' ' ')"
    [[ "${binding}" == "127.0.0.1:${PORT[${node}]} " ]] || bad+=("${node}: '${binding}'")
  done
  if (( ${#bad[@]} )); then
    record fail "ports published on 127.0.0.1 only (${bad[*]})"
  else
    record pass "ports published on 127.0.0.1:7777, :8888, :9999 only"
  fi
}

check_non_root() {
  local user uid
  user="$(docker image inspect --format '{{.Config.User}}' "${IMAGE}")"
  # The node's process itself (PID 1 of the container).
  # shellcheck disable=SC2016  # awk's $2
  uid="$(compose exec -T counter1 awk '/^Uid:/ { print $2 }' /proc/1/status 2>/dev/null | tr -d '\r')"
  if [[ -n "${user}" && "${user}" != root && "${user}" != 0 && "${uid}" =~ ^[0-9]+$ && "${uid}" != 0 ]]; then
    record pass "image user '${user}'; the node runs as uid ${uid}"
  else
    record fail "non-root: image user '${user}', node uid '${uid}'"
  fi
}

check_convergence() {
  local ok=1 counter
  increment x counter1 1 || ok=0
  increment x counter2 20 || ok=0
  increment x counter3 300 || ok=0
  increment x counter1 -4 || ok=0
  increment y counter2 7 || ok=0
  increment z counter3 -5 || ok=0
  local i
  for (( i = 0; i < 10; i++ )); do
    increment x "${NODES[i % 3]}" 1000 || ok=0
  done
  (( ok )) || { record fail "increments accepted on every node"; return 1; }
  for counter in x y z; do
    if ! eventually converged "${counter}" "${NODES[@]}"; then
      record fail "counter ${counter} converges to ${expected_sum[${counter}]} on every node ($(show_values "${counter}"))"
      return 1
    fi
  done
  expected="${expected_sum[x]}"
  if ! values_are /counter/x/consistent_value "${NODES[@]}"; then
    record fail "consistent_value of x is ${expected} on every node (last: ${http_code} ${http_body})"
    return 1
  fi
  record pass "increments on each node converge to the exact sums (x=${expected_sum[x]} y=${expected_sum[y]} z=${expected_sum[z]}), consistent_value agrees"
}

# ldb reads the running node's data directory (read-only, no lock needed).
ldb_shows_x() {
  compose exec -T counter1 ldb --db=/data scan >"${work}/ldb.out" 2>&1 \
    && grep -q '^counter/x : {' "${work}/ldb.out" \
    && grep -q '^meta/node_id : ' "${work}/ldb.out"
}

check_ldb() {
  # Flushes run every --flush_interval_ms (5 s): x shows up after one.
  if eventually ldb_shows_x; then
    record pass "docker-compose exec counter1 ldb --db=/data scan (node running): $(grep -c . "${work}/ldb.out") keys"
  else
    record fail "ldb scan inside counter1: $(head -c 400 "${work}/ldb.out" 2>/dev/null)"
  fi
}

consistent_503_names_counter2() {
  http GET 7777 /counter/x/consistent_value
  [[ "${http_code}" == 503 && "${http_body}" == *'"counter2:7777"'* ]]
}

check_kill_and_catch_up() {
  if ! compose kill counter2 >"${work}/kill.log" 2>&1; then
    record fail "docker-compose kill counter2: $(cat "${work}/kill.log")"
    return 1
  fi
  if eventually consistent_503_names_counter2; then
    record pass "after kill counter2: counter1 consistent_value 503 ${http_body}"
  else
    record fail "after kill counter2: counter1 consistent_value ${http_code} ${http_body} (want 503 naming counter2:7777)"
  fi
  # Writes while counter2 is down, which it must fetch once back.
  if ! { increment x counter1 50000 && increment x counter3 600000 \
         && increment w counter3 9; }; then
    record fail "increments while counter2 is down"
  fi
  if ! compose start counter2 >"${work}/start.log" 2>&1; then
    record fail "docker-compose start counter2: $(cat "${work}/start.log")"
    return 1
  fi
  if ! eventually all_healthy counter2; then
    record fail "counter2 healthy again after start ($(health_of counter2))"
    return 1
  fi
  increment x counter2 7000000 || { record fail "increment on counter2 after its restart"; return 1; }
  local counter
  for counter in x w; do
    if ! eventually converged "${counter}" "${NODES[@]}"; then
      record fail "after start counter2: ${counter} = ${expected_sum[${counter}]} everywhere ($(show_values "${counter}"))"
      return 1
    fi
  done
  expected="${expected_sum[x]}"
  if ! eventually values_are /counter/x/consistent_value counter1; then
    record fail "after start counter2: counter1 consistent_value ${http_code} ${http_body}"
    return 1
  fi
  record pass "start counter2: healthy, caught up (x=${expected_sum[x]}, w=${expected_sum[w]} on every node, consistent_value 200)"
}

check_clean_stop() {
  local ids=() node
  for node in "${NODES[@]}"; do ids+=("$(container_of "${node}")"); done
  if ! compose stop >"${work}/stop.log" 2>&1; then
    record fail "docker-compose stop: $(cat "${work}/stop.log")"
    return 1
  fi
  local i ok=1 details=()
  for i in 0 1 2; do
    local code running
    code="$(docker inspect --format '{{.State.ExitCode}}' "${ids[i]}")"
    running="$(docker inspect --format '{{.State.Running}}' "${ids[i]}")"
    if [[ "${code}" == 0 && "${running}" == false ]] \
        && docker logs --tail 20 "${ids[i]}" 2>&1 | grep -q 'stopped cleanly'; then
      details+=("${NODES[i]}=0")
    else
      ok=0
      details+=("${NODES[i]}=exit:${code},running:${running},log:$(docker logs --tail 3 "${ids[i]}" 2>&1 | tr '\n' '|')")
    fi
  done
  if (( ok )); then
    record pass "docker-compose stop: every node exited 0 with 'stopped cleanly' (${details[*]})"
  else
    record fail "docker-compose stop: ${details[*]}"
  fi
}

# True if GET /ping on node $1 answers 200.
pings() {
  http GET "${PORT[$1]}" /ping
  [[ "${http_code}" == 200 ]]
}

# True if every counter of expected_sum has its sum on node $1; else sets
# `bad` to what differs.
holds_every_counter() {
  local counter
  bad=()
  for counter in "${!expected_sum[@]}"; do
    expected="${expected_sum[${counter}]}"
    values_are "/counter/${counter}/value" "$1" \
      || bad+=("${counter}=${http_code}:${http_body} (want ${expected})")
  done
  (( ${#bad[@]} == 0 ))
}

check_down_up_keeps_counters() {
  if ! compose down >"${work}/down1.log" 2>&1; then
    record fail "docker-compose down: $(cat "${work}/down1.log")"
    return 1
  fi
  # Each node first on its own, so that what it holds can only come from
  # its volume, not from a peer.
  local node ok=1
  bad=()
  for node in "${NODES[@]}"; do
    if ! compose up -d --no-deps "${node}" >"${work}/up1.log" 2>&1 \
        || ! eventually pings "${node}"; then
      record fail "after down: ${node} alone up ($(cat "${work}/up1.log"))"
      return 1
    fi
    if ! holds_every_counter "${node}"; then
      ok=0
      record fail "after down: ${node} alone lost counters: ${bad[*]}"
    fi
    compose stop "${node}" >/dev/null 2>&1 || true
  done
  (( ok )) && record pass "after down: each node alone holds every counter (its named volume)"
  if ! compose up -d >"${work}/up2.log" 2>&1; then
    record fail "docker-compose up -d after down: $(cat "${work}/up2.log")"
    return 1
  fi
  check_healthy "after down + up" || return 1
  local failed_nodes=()
  for node in "${NODES[@]}"; do
    holds_every_counter "${node}" || failed_nodes+=("${node}: ${bad[*]}")
  done
  if (( ${#failed_nodes[@]} )); then
    record fail "after down + up: counters (${failed_nodes[*]})"
  else
    record pass "after down + up: every counter on every node"
  fi
}

# ---------------------------------------------------------------- main

install_packages
ensure_engine
ensure_base_image
build_start=${SECONDS}
if ! build_image; then
  record fail "docker build (log above)"
  setup_seconds=$(( SECONDS - script_start ))
  print_summary
  exit 1
fi
log "image built in $(elapsed $(( SECONDS - build_start )))"
setup_seconds=$(( SECONDS - script_start ))

# A previous run (with --keep, or interrupted) may have left the project.
compose down -v --remove-orphans >/dev/null 2>&1 || true
for node in "${NODES[@]}"; do
  if curl -s -m 2 --noproxy '*' -o /dev/null "http://127.0.0.1:${PORT[${node}]}/ping"; then
    die "something already answers on 127.0.0.1:${PORT[${node}]}; stop it first"
  fi
done
project_up=1
if ! compose up -d >"${work}/up.log" 2>&1; then
  cat "${work}/up.log" >&2
  record fail "docker-compose up -d"
elif check_healthy "after up"; then
  check_ports_on_loopback
  check_non_root
  if check_convergence; then
    check_ldb
    check_kill_and_catch_up || true
    check_clean_stop || true
    check_down_up_keeps_counters || true
  fi
fi

print_summary
(( failures == 0 ))
