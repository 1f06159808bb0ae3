#!/usr/bin/env bash
# Measures dist_counter over loopback and, in the same run, two references
# on the same machine: Redis INCR (redis-benchmark) and nginx `return 200`
# (wrk with the same script). Prints every rate in requests per second and
# our ratio to its reference:
#
#   increments, POST /counter/:name     / redis INCR, / nginx
#   reads, GET /counter/:name/value     / redis INCR, / nginx
#   pipelined increments (--pipeline N per write)  / redis INCR -P N
#   --durable increments                / default-mode increments
#   system calls per increment (strace -c -f on the node, if installed)
#
#   scripts/bench.sh
#   scripts/bench.sh --duration 30 --connections 50 --threads 2 --counters 300
#   scripts/bench.sh --pipeline 16     requests per write when pipelining
#   scripts/bench.sh --no-build        use build/dist_counter as it is
#   scripts/bench.sh --keep            keep the temp dir (node data and logs)
#   DIST_COUNTER_BIN=build-x/dist_counter scripts/bench.sh   another binary
#
# Everything runs on 127.0.0.1 on free ports, with throwaway data dirs, and
# is stopped when the script exits. Installs the benchmark packages with
# scripts/install_deps.sh --bench. Exits 1 if a node failed, answered
# non-2xx, did not stop cleanly, or its counters sum to less than the
# increments it acknowledged.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
# shellcheck source=scripts/lib/common.sh
source "${ROOT}/scripts/lib/common.sh"
# shellcheck source=scripts/lib/bench.sh
source "${ROOT}/scripts/lib/bench.sh"

duration="${DURATION:-10}"
connections="${CONNECTIONS:-50}"
threads="${THREADS:-2}"
counters="${COUNTERS:-300}"
pipeline="${PIPELINE:-16}"
redis_requests="${REDIS_REQUESTS:-200000}"
syscall_seconds="${SYSCALL_SECONDS:-3}"
build=1
keep=0
while (( $# > 0 )); do
  case "$1" in
    --no-build) build=0 ;;
    --keep) keep=1 ;;
    --duration) shift; duration="${1:?}" ;;
    --connections) shift; connections="${1:?}" ;;
    --threads) shift; threads="${1:?}" ;;
    --counters) shift; counters="${1:?}" ;;
    --pipeline) shift; pipeline="${1:?}" ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
check_positive_ints "${duration}" "${connections}" "${threads}" \
  "${counters}" "${pipeline}" "${redis_requests}" "${syscall_seconds}"
prepare_node_binary "${build}"

node_pid=""
redis_pid=""
nginx_pid=""
child_pid=""
node_port=""
redis_port=""
nginx_port=""

# Stops whatever still runs (end_run calls it on exit).
stop_all() {
  stop_process "${child_pid}" "a benchmark client"
  stop_process "${node_pid}" node
  stop_process "${redis_pid}" redis-server
  stop_process "${nginx_pid}" nginx
}
start_run dist_counter_bench

# Runs "$@" in the background with its output in file $1, waits for it, then
# shows the output. Bash runs no trap while a foreground command runs, and
# wrk exits normally on Ctrl-C, so a foreground run would swallow the
# interrupt; `wait` is interrupted by it instead, and cleanup stops the child.
run_client() {
  local out="$1" rc=0
  shift
  "$@" >"${out}" 2>&1 &
  child_pid=$!
  wait "${child_pid}" || rc=$?
  child_pid=""
  cat "${out}"
  return "${rc}"
}

lua="${ROOT}/scripts/bench.lua"
wrk_base=(-t "${threads}" -c "${connections}" -d "${duration}s" --latency
          -s "${lua}")
problems=()
node_url=""
acked=0  # increments the running node acknowledged

# Starts a node with the flags "$@" on a free port, in a fresh data dir;
# sets node_pid and node_url, and resets acked.
start_node() {
  pick_port node_port
  rm -rf "${tmp}/node"
  echo "bench.sh: starting dist_counter $* on 127.0.0.1:${node_port}"
  env -u ACTORS -u CHALLENGE_ID "${bin}" --challenge_id=bench \
    --bind=127.0.0.1 --port="${node_port}" --data_dir="${tmp}/node" \
    --logtostderr=1 "$@" >>"${tmp}/node.log" 2>&1 &
  node_pid=$!
  node_url="http://127.0.0.1:${node_port}"
  acked=0
  if ! wait_until "${node_pid}" curl -fsS -m 1 "${node_url}/ping"; then
    echo "bench.sh: the node did not answer /ping; its log:" >&2
    tail -n 30 "${tmp}/node.log" >&2
    exit 1
  fi
}

# Runs wrk on the node: $1 names the run, $2 is the kind (incr or value),
# $3 the pipeline depth; further arguments replace the -t/-c/-d options.
# Sets rate; adds acknowledged increments to acked.
run_node_wrk() {
  local name="$1" kind="$2" depth="$3" out="${tmp}/wrk_$1.txt"
  shift 3
  local args=("${wrk_base[@]}")
  if (( $# > 0 )); then args=("$@" --latency -s "${lua}"); fi
  echo "bench.sh: wrk ${args[*]} ${node_url} -- ${counters} ${kind} ${depth}"
  run_client "${out}" wrk "${args[@]}" "${node_url}" -- "${counters}" \
    "${kind}" "${depth}"
  if ! alive "${node_pid}"; then
    echo "bench.sh: the node died during the run; its log:" >&2
    tail -n 30 "${tmp}/node.log" >&2
    exit 1
  fi
  rate="$(wrk_rate "${out}")"
  local done non2xx sockerr
  done="$(wrk_field "${out}" requests)"
  non2xx="$(wrk_field "${out}" non2xx)"
  sockerr="$(wrk_field "${out}" socket_errors)"
  if (( ${non2xx:-0} > 0 )); then
    problems+=("${name}: the node answered ${non2xx} requests with a non-2xx status")
  fi
  if (( ${sockerr:-0} > 0 )); then
    problems+=("${name}: ${sockerr} socket errors")
  fi
  if [[ "${kind}" == incr ]]; then
    acked=$(( acked + ${done:-0} - ${non2xx:-0} ))
  fi
}

# Every acknowledged increment must be counted (a few more may have landed
# while wrk stopped). One curl process reads all the values over keep-alive.
check_counted() {
  local urls=() i counted
  for (( i = 1; i <= counters; i++ )); do
    urls+=("${node_url}/counter/c${i}/value")
  done
  if counted="$(curl -fsS -m 30 -w '\n' "${urls[@]}" 2>"${tmp}/curl.err" \
                 | awk 'NF { s += $1 } END { printf "%d", s }')"; then
    echo "bench.sh: acknowledged increments ${acked}, sum of counters ${counted}"
    if (( counted < acked )); then
      problems+=("$1: counters sum to ${counted} < ${acked} acknowledged increments")
    fi
  else
    problems+=("$1: could not read the counters back: $(head -n 1 "${tmp}/curl.err")")
  fi
}

# Stops the node with SIGTERM and checks it exited 0.
stop_node() {
  stop_process "${node_pid}" node
  node_pid=""
  if (( stopped_status != 0 )); then
    problems+=("$1: the node exited with status ${stopped_status} after SIGTERM")
  fi
}

# Counts the node's system calls while wrk sends increments for
# syscall_seconds on 10 connections; sets syscalls_per_request (n/a without
# strace) and writes the busiest calls per request into syscalls_top.
count_syscalls() {
  syscalls_per_request="n/a"
  syscalls_top=""
  if ! command -v strace >/dev/null 2>&1; then
    echo "bench.sh: strace is not installed: no system call count"
    return 0
  fi
  # -f with -p attaches every thread of the node.
  strace -f -c -p "${node_pid}" -o "${tmp}/strace.txt" 2>/dev/null &
  local strace_pid=$!
  sleep 1  # attached
  run_node_wrk syscalls incr 1 -t 1 -c 10 -d "${syscall_seconds}s"
  kill -INT "${strace_pid}" 2>/dev/null || true
  wait "${strace_pid}" 2>/dev/null || true
  local requests calls
  requests="$(wrk_field "${tmp}/wrk_syscalls.txt" requests)"
  calls="$(awk '$NF == "total" { print $4 }' "${tmp}/strace.txt" 2>/dev/null)"
  if [[ -z "${calls}" || -z "${requests}" || "${requests}" == 0 ]]; then
    echo "bench.sh: could not count system calls (strace -p refused?)"
    return 0
  fi
  syscalls_per_request="$(ratio "${calls}" "${requests}")"
  syscalls_top="$(awk -v n="${requests}" '
      $1 ~ /^[0-9.]+$/ && $NF != "total" && NF >= 5 {
        printf "%s %.2f\n", $NF, $4 / n }' "${tmp}/strace.txt" \
    | sort -k2 -rn | head -n 6 | awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')"
}

# ---- 1. dist_counter, default mode -----------------------------------------
start_node
run_node_wrk incr incr 1
incr_rate="${rate}"
run_node_wrk value value 1
value_rate="${rate}"
run_node_wrk pipelined incr "${pipeline}"
pipelined_rate="${rate}"
count_syscalls
check_counted "default mode"
stop_node "default mode"

# ---- 1b. dist_counter --durable --------------------------------------------
start_node --durable
run_node_wrk durable incr 1
durable_rate="${rate}"
check_counted "--durable"
stop_node "--durable"
if grep -qE '^[FE][0-9]{4} ' "${tmp}/node.log"; then
  echo "bench.sh: errors in the node log:" >&2
  grep -E '^[FE][0-9]{4} ' "${tmp}/node.log" | head -n 10 >&2
fi

# ---- 2. Redis INCR -----------------------------------------------------------
pick_port redis_port
mkdir -p "${tmp}/redis"
echo "bench.sh: starting redis-server on 127.0.0.1:${redis_port}"
redis-server --port "${redis_port}" --bind 127.0.0.1 --save '' \
  --appendonly no --daemonize no --dir "${tmp}/redis" \
  --logfile "${tmp}/redis/redis.log" &
redis_pid=$!
if ! wait_until "${redis_pid}" redis-cli -h 127.0.0.1 -p "${redis_port}" ping
then
  echo "bench.sh: redis-server did not start" >&2
  exit 1
fi
echo "bench.sh: redis-benchmark -t incr -c ${connections} -n ${redis_requests} -q"
run_client "${tmp}/redis_bench.raw" redis-benchmark -h 127.0.0.1 \
  -p "${redis_port}" -t incr -c "${connections}" -n "${redis_requests}" -q \
  >/dev/null
tr '\r' '\n' <"${tmp}/redis_bench.raw" | grep -E '^INCR' | tail -n 1 \
  | tee "${tmp}/redis_bench.txt"
redis_rate="$(awk '{ print $2 }' "${tmp}/redis_bench.txt")"
echo "bench.sh: redis-benchmark -t incr -c ${connections} -P ${pipeline}" \
     "-n $(( redis_requests * 10 )) -q"
run_client "${tmp}/redis_pipe.raw" redis-benchmark -h 127.0.0.1 \
  -p "${redis_port}" -t incr -c "${connections}" -P "${pipeline}" \
  -n $(( redis_requests * 10 )) -q >/dev/null
tr '\r' '\n' <"${tmp}/redis_pipe.raw" | grep -E '^INCR' | tail -n 1 \
  | tee "${tmp}/redis_pipe.txt"
redis_pipe_rate="$(awk '{ print $2 }' "${tmp}/redis_pipe.txt")"
stop_process "${redis_pid}" redis-server
redis_pid=""

# ---- 3. nginx return 200 ----------------------------------------------------
pick_port nginx_port
mkdir -p "${tmp}/nginx"
# Temp paths of every HTTP module this nginx has, so that nginx never needs
# /var/lib/nginx (and runs as a normal user too).
temp_paths="client_body_temp_path ${tmp}/nginx/client_body;"
nginx_build="$(nginx -V 2>&1)"
for module in proxy fastcgi uwsgi scgi; do
  if [[ "${nginx_build}" != *"--without-http_${module}_module"* ]]; then
    temp_paths+=" ${module}_temp_path ${tmp}/nginx/${module};"
  fi
done
cat >"${tmp}/nginx/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid ${tmp}/nginx/nginx.pid;
error_log ${tmp}/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  ${temp_paths}
  server {
    listen 127.0.0.1:${nginx_port};
    location / { return 200 "ok"; }
  }
}
EOF
echo "bench.sh: starting nginx on 127.0.0.1:${nginx_port}"
nginx -p "${tmp}/nginx/" -c "${tmp}/nginx/nginx.conf" \
  -e "${tmp}/nginx/error.log" &
nginx_pid=$!
nginx_url="http://127.0.0.1:${nginx_port}"
if ! wait_until "${nginx_pid}" curl -fsS -m 1 "${nginx_url}/"; then
  echo "bench.sh: nginx did not start:" >&2
  cat "${tmp}/nginx/error.log" >&2 || true
  exit 1
fi
echo "bench.sh: wrk ${wrk_base[*]} ${nginx_url} -- ${counters}"
run_client "${tmp}/wrk_nginx.txt" wrk "${wrk_base[@]}" "${nginx_url}" -- \
  "${counters}"
nginx_rate="$(wrk_rate "${tmp}/wrk_nginx.txt")"
stop_process "${nginx_pid}" nginx
nginx_pid=""

# ---- results ----------------------------------------------------------------
echo
echo "==================== bench.sh results ===================="
echo "  wrk -t${threads} -c${connections} -d${duration}s, ${counters} counters;" \
     "redis-benchmark -c${connections}; $(nproc) cores"
printf '  %-48s %12s req/s\n' \
  "dist_counter POST /counter/:name" "${incr_rate:-n/a}" \
  "dist_counter GET /counter/:name/value" "${value_rate:-n/a}" \
  "dist_counter POST, ${pipeline} pipelined per write" "${pipelined_rate:-n/a}" \
  "dist_counter POST, --durable" "${durable_rate:-n/a}" \
  "redis INCR (not pipelined)" "${redis_rate:-n/a}" \
  "redis INCR -P ${pipeline}" "${redis_pipe_rate:-n/a}" \
  "nginx return 200 (wrk, same script)" "${nginx_rate:-n/a}"
echo "  increments / redis INCR          = $(ratio "${incr_rate:-0}" "${redis_rate:-0}")"
echo "  increments / nginx               = $(ratio "${incr_rate:-0}" "${nginx_rate:-0}")"
echo "  reads / redis INCR               = $(ratio "${value_rate:-0}" "${redis_rate:-0}")"
echo "  reads / nginx                    = $(ratio "${value_rate:-0}" "${nginx_rate:-0}")"
echo "  pipelined / redis INCR -P ${pipeline}     = $(ratio "${pipelined_rate:-0}" "${redis_pipe_rate:-0}")"
echo "  durable / default increments     = $(ratio "${durable_rate:-0}" "${incr_rate:-0}")"
echo "  system calls per increment       = ${syscalls_per_request}${syscalls_top:+ (${syscalls_top})}"
exit_if_problems
