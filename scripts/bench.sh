#!/usr/bin/env bash
# Measures dist_counter's increment rate over loopback and, in the same run,
# two references on the same machine: Redis INCR (redis-benchmark, not
# pipelined) and nginx `return 200` (wrk with the same script). Prints the
# three rates in requests per second and our ratio to each.
#
#   scripts/bench.sh                   default mode (flush every interval)
#   scripts/bench.sh --durable         node acknowledges after the WAL write
#   scripts/bench.sh --duration 30 --connections 50 --threads 2 --counters 300
#   scripts/bench.sh --no-build        use build/dist_counter as it is
#   scripts/bench.sh --keep            keep the temp dir (node data and logs)
#   DIST_COUNTER_BIN=build-x/dist_counter scripts/bench.sh   another binary
#
# Everything runs on 127.0.0.1 on free ports, with throwaway data dirs, and
# is stopped when the script exits. Installs the benchmark packages with
# scripts/install_deps.sh --bench. Exits 1 if the node failed, answered
# non-2xx, or its counters sum to less than the increments it acknowledged.
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
redis_requests="${REDIS_REQUESTS:-200000}"
durable=0
build=1
keep=0
while (( $# > 0 )); do
  case "$1" in
    --durable) durable=1 ;;
    --no-build) build=0 ;;
    --keep) keep=1 ;;
    --duration) shift; duration="${1:?}" ;;
    --connections) shift; connections="${1:?}" ;;
    --threads) shift; threads="${1:?}" ;;
    --counters) shift; counters="${1:?}" ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
check_positive_ints "${duration}" "${connections}" "${threads}" \
  "${counters}" "${redis_requests}"
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

lua="${ROOT}/scripts/bench_incr.lua"
wrk_args=(-t "${threads}" -c "${connections}" -d "${duration}s" --latency
          -s "${lua}")
problems=()

# ---- 1. dist_counter -------------------------------------------------------
pick_port node_port
node_flags=(--challenge_id=bench --bind=127.0.0.1 --port="${node_port}"
            --data_dir="${tmp}/node" --logtostderr=1)
mode="default"
if (( durable )); then
  node_flags+=(--durable)
  mode="durable"
fi
echo "bench.sh: starting dist_counter (${mode} mode) on 127.0.0.1:${node_port}"
env -u ACTORS -u CHALLENGE_ID "${bin}" "${node_flags[@]}" \
  >"${tmp}/node.log" 2>&1 &
node_pid=$!
node_url="http://127.0.0.1:${node_port}"
if ! wait_until "${node_pid}" curl -fsS -m 1 "${node_url}/ping"; then
  echo "bench.sh: the node did not answer /ping; its log:" >&2
  tail -n 30 "${tmp}/node.log" >&2
  exit 1
fi

echo "bench.sh: wrk ${wrk_args[*]} ${node_url} -- ${counters}"
run_client "${tmp}/wrk_node.txt" wrk "${wrk_args[@]}" "${node_url}" -- "${counters}"
if ! alive "${node_pid}"; then
  echo "bench.sh: the node died during the run; its log:" >&2
  tail -n 30 "${tmp}/node.log" >&2
  exit 1
fi
node_rate="$(wrk_rate "${tmp}/wrk_node.txt")"
node_done="$(wrk_field "${tmp}/wrk_node.txt" requests)"
node_non2xx="$(wrk_field "${tmp}/wrk_node.txt" non2xx)"
node_sockerr="$(wrk_field "${tmp}/wrk_node.txt" socket_errors)"
acked=$(( ${node_done:-0} - ${node_non2xx:-0} ))
if (( ${node_non2xx:-0} > 0 )); then
  problems+=("the node answered ${node_non2xx} requests with a non-2xx status")
fi

# Every acknowledged increment must be counted (a few more may have landed
# while wrk stopped). One curl process reads all the values over keep-alive.
urls=()
for (( i = 1; i <= counters; i++ )); do
  urls+=("${node_url}/counter/c${i}/value")
done
if counted="$(curl -fsS -m 30 -w '\n' "${urls[@]}" 2>"${tmp}/curl.err" \
               | awk 'NF { s += $1 } END { printf "%d", s }')"; then
  echo "bench.sh: acknowledged increments ${acked}, sum of counters ${counted}"
  if (( counted < acked )); then
    problems+=("counters sum to ${counted} < ${acked} acknowledged increments")
  fi
else
  problems+=("could not read the counters back: $(head -n 1 "${tmp}/curl.err")")
fi

stop_process "${node_pid}" node
node_status=${stopped_status}
node_pid=""
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
echo "bench.sh: wrk ${wrk_args[*]} ${nginx_url} -- ${counters}"
run_client "${tmp}/wrk_nginx.txt" wrk "${wrk_args[@]}" "${nginx_url}" -- \
  "${counters}"
nginx_rate="$(wrk_rate "${tmp}/wrk_nginx.txt")"
stop_process "${nginx_pid}" nginx
nginx_pid=""

# ---- results ----------------------------------------------------------------
echo
echo "==================== bench.sh results ===================="
echo "  wrk -t${threads} -c${connections} -d${duration}s, ${counters} counters;" \
     "redis-benchmark -c${connections} -n${redis_requests}; $(nproc) cores"
printf '  %-44s %12s req/s\n' \
  "dist_counter POST /counter/:name (${mode})" "${node_rate:-n/a}" \
  "redis INCR (redis-benchmark, not pipelined)" "${redis_rate:-n/a}" \
  "nginx return 200 (wrk, same script)" "${nginx_rate:-n/a}"
echo "  dist_counter / redis = $(ratio "${node_rate:-0}" "${redis_rate:-0}")"
echo "  dist_counter / nginx = $(ratio "${node_rate:-0}" "${nginx_rate:-0}")"
echo "  node: ${acked} increments acknowledged, ${node_non2xx:-?} non-2xx," \
     "${node_sockerr:-?} socket errors, exit status ${node_status} after SIGTERM"
if (( node_status != 0 )); then
  problems+=("the node exited with status ${node_status} after SIGTERM")
fi
exit_if_problems
