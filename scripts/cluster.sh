#!/usr/bin/env bash
# A local 3-node cluster on 127.0.0.1, for trying replication and failures.
#
#   scripts/cluster.sh start [N]     start all nodes (or node N); builds
#                                    build/dist_counter first if it is missing
#   scripts/cluster.sh stop [N]      SIGTERM (the node flushes) and wait
#   scripts/cluster.sh status        pid, state and /ping of every node
#   scripts/cluster.sh kill N        kill -9: a crash, no flush
#   scripts/cluster.sh pause N       SIGSTOP: the node hangs, its port stays open
#   scripts/cluster.sh resume N      SIGCONT
#   scripts/cluster.sh restart [N]   stop, then start
#   scripts/cluster.sh logs N        the node's log (followed on a terminal)
#
# Node N (1, 2, 3) listens on port 7777, 8888, 9999, has challenge id N, data
# in data/cluster/nodeN, its log in data/cluster/nodeN.log and its pid in
# data/cluster/nodeN.pid. Every node gets the same peer list of all three.
# Environment: MERGE_INTERVAL_MS, FLUSH_INTERVAL_MS and PEER_TIMEOUT_MS set
# the flags of the same name; NODE_FLAGS adds flags (split on spaces);
# DIST_COUNTER_BIN runs another binary; STOP_TIMEOUT (seconds, default 30).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
# shellcheck source=scripts/lib/common.sh
source "${ROOT}/scripts/lib/common.sh"

readonly PORTS=(unused 7777 8888 9999)
readonly ACTORS_JSON='["127.0.0.1:7777","127.0.0.1:8888","127.0.0.1:9999"]'
readonly DIR="data/cluster"
bin="${DIST_COUNTER_BIN:-build/dist_counter}"
stop_timeout="${STOP_TIMEOUT:-30}"

# Checks that $1 is a node number.
check_node() {
  [[ "${1:-}" =~ ^[123]$ ]] || die "expected a node number 1, 2 or 3, got '${1:-}'"
}

# Prints the pid of node $1 if it runs (paused counts), else nothing. A pid
# file whose process is gone or is something else is stale and removed.
node_pid() {
  local n="$1" pidfile="${DIR}/node$1.pid" pid cmdline
  [[ -f "${pidfile}" ]] || return 0
  pid="$(cat "${pidfile}")"
  cmdline="$(tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null || true)"
  if [[ "${cmdline}" == *dist_counter*"--port=${PORTS[n]}"* ]] \
     && alive "${pid}"; then
    echo "${pid}"
  else
    rm -f "${pidfile}"
  fi
}

# Prints the HTTP status of node $1's /ping: 200 healthy, 503 up but its
# storage is unavailable (writes refused), 000 when nothing answers.
ping_code() {
  curl -sS -m 1 -o /dev/null -w '%{http_code}' \
    "http://127.0.0.1:${PORTS[$1]}/ping" 2>/dev/null || true
}

# True if something answers HTTP on node $1's port, healthy or not.
ping_node() {
  local code
  code="$(ping_code "$1")"
  [[ -n "${code}" && "${code}" != "000" ]]
}

ensure_binary() {
  if [[ ! -x "${bin}" ]]; then
    echo "cluster.sh: ${bin} is missing; building it"
    "${ROOT}/scripts/build.sh" --target dist_counter
  fi
}

start_node() {
  local n="$1" pid port="${PORTS[$1]}" i code
  pid="$(node_pid "${n}")"
  if [[ -n "${pid}" ]]; then
    echo "node ${n}: already running (pid ${pid}, port ${port})"
    return 0
  fi
  if ping_node "${n}"; then
    die "node ${n}: port ${port} already answers /ping, but not from a node" \
        "this script started; stop that process first"
  fi
  mkdir -p "${DIR}/node${n}"
  local flags=(--challenge_id="${n}" --bind=127.0.0.1 --port="${port}"
               --data_dir="${DIR}/node${n}" --actors="${ACTORS_JSON}"
               --logtostderr=1)
  if [[ -n "${MERGE_INTERVAL_MS:-}" ]]; then
    flags+=(--merge_interval_ms="${MERGE_INTERVAL_MS}")
  fi
  if [[ -n "${FLUSH_INTERVAL_MS:-}" ]]; then
    flags+=(--flush_interval_ms="${FLUSH_INTERVAL_MS}")
  fi
  if [[ -n "${PEER_TIMEOUT_MS:-}" ]]; then
    flags+=(--peer_timeout_ms="${PEER_TIMEOUT_MS}")
  fi
  # shellcheck disable=SC2206  # NODE_FLAGS is meant to be split into words.
  flags+=(${NODE_FLAGS:-})

  echo "==== cluster.sh: start $(date '+%F %T') ${bin} ${flags[*]}" \
    >>"${DIR}/node${n}.log"
  # setsid: the node outlives this script and the terminal's Ctrl-C.
  env -u ACTORS -u CHALLENGE_ID setsid "${bin}" "${flags[@]}" \
    </dev/null >>"${DIR}/node${n}.log" 2>&1 &
  pid=$!
  echo "${pid}" >"${DIR}/node${n}.pid"

  for (( i = 0; i < 150; i++ )); do
    code="$(ping_code "${n}")"
    if [[ "${code}" == "200" ]]; then
      echo "node ${n}: running (pid ${pid}, http://127.0.0.1:${port})"
      return 0
    fi
    if [[ "${code}" == "503" ]]; then
      # Up, but refusing writes: say why instead of waiting for health.
      echo "node ${n}: running (pid ${pid}) but unhealthy:" \
           "$(curl -sS -m 1 "http://127.0.0.1:${port}/ping" 2>/dev/null)" >&2
      return 1
    fi
    if ! alive "${pid}"; then
      rm -f "${DIR}/node${n}.pid"
      echo "node ${n}: exited at startup; the end of ${DIR}/node${n}.log:" >&2
      tail -n 20 "${DIR}/node${n}.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "node ${n}: started (pid ${pid}) but /ping does not answer yet;" \
       "see ${DIR}/node${n}.log" >&2
  return 1
}

stop_node() {
  local n="$1" pid
  pid="$(node_pid "${n}")"
  if [[ -z "${pid}" ]]; then
    echo "node ${n}: not running"
    return 0
  fi
  kill -TERM "${pid}"
  # A paused node only sees the SIGTERM once it runs again.
  kill -CONT "${pid}" 2>/dev/null || true
  if wait_gone "${pid}" $(( stop_timeout * 10 )); then
    rm -f "${DIR}/node${n}.pid"
    echo "node ${n}: stopped"
    return 0
  fi
  echo "node ${n}: still running ${stop_timeout}s after SIGTERM (pid ${pid});" \
       "'scripts/cluster.sh kill ${n}' ends it" >&2
  return 1
}

kill_node() {
  local n="$1" pid
  pid="$(node_pid "${n}")"
  [[ -n "${pid}" ]] || { echo "node ${n}: not running"; return 0; }
  kill -KILL "${pid}"
  wait_gone "${pid}" 100 || die "node ${n}: pid ${pid} survived SIGKILL"
  rm -f "${DIR}/node${n}.pid"
  echo "node ${n}: killed (SIGKILL, no flush)"
}

signal_node() {
  local n="$1" signal="$2" what="$3" pid
  pid="$(node_pid "${n}")"
  [[ -n "${pid}" ]] || die "node ${n}: not running"
  kill "-${signal}" "${pid}"
  echo "node ${n}: ${what} (pid ${pid})"
}

status() {
  local n pid state ping
  printf '%-5s %-6s %-8s %-8s %-5s %s\n' node port pid state ping log
  for n in 1 2 3; do
    pid="$(node_pid "${n}")"
    ping="-"
    if [[ -z "${pid}" ]]; then
      state="stopped"
      pid="-"
    elif [[ "$(proc_state "${pid}")" == "T" ]]; then
      state="paused"
    else
      state="running"
      case "$(ping_code "${n}")" in
        200) ping="OK" ;;
        503) ping="503" ;;  # up; storage unavailable, writes refused
        000|"") ping="FAIL" ;;
        *) ping="$(ping_code "${n}")" ;;
      esac
    fi
    printf '%-5s %-6s %-8s %-8s %-5s %s\n' "${n}" "${PORTS[n]}" "${pid}" \
      "${state}" "${ping}" "${DIR}/node${n}.log"
  done
}

show_logs() {
  local log="${DIR}/node$1.log"
  [[ -f "${log}" ]] || die "no log yet: ${log}"
  if [[ -t 1 ]]; then
    exec tail -n "${LOG_LINES:-50}" -F "${log}"
  fi
  tail -n "${LOG_LINES:-100}" "${log}"
}

# Runs "$1 N" for node $2, or for every node if $2 is empty; fails if any did.
for_nodes() {
  local fn="$1" n rc=0
  if [[ -n "${2:-}" ]]; then
    check_node "$2"
    "${fn}" "$2"
    return
  fi
  for n in 1 2 3; do
    "${fn}" "${n}" || rc=1
  done
  return "${rc}"
}

command="${1:-}"
node="${2:-}"
case "${command}" in
  start)
    ensure_binary
    mkdir -p "${DIR}"
    for_nodes start_node "${node}"
    ;;
  stop) for_nodes stop_node "${node}" ;;
  restart)
    ensure_binary
    for_nodes stop_node "${node}"
    for_nodes start_node "${node}"
    ;;
  status) status ;;
  kill) check_node "${node}"; kill_node "${node}" ;;
  pause) check_node "${node}"; signal_node "${node}" STOP "paused (SIGSTOP)" ;;
  resume) check_node "${node}"; signal_node "${node}" CONT "resumed (SIGCONT)" ;;
  logs) check_node "${node}"; show_logs "${node}" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
