#!/usr/bin/env bash
# Measures what many counters cost one node, and Redis holding the same keys
# in the same run on the same machine:
#
#   memory per counter    peak RSS while loading, RSS once loaded, RSS after
#                         a clean restart, / Redis RSS for the same N keys
#   disk per counter      the data directory after a clean stop
#   restart to serving    clean stop, and after kill -9 (WAL replay): from
#                         exec until /ping and a counter's value answer
#   hot rates             wrk increments and reads over 300 counters
#   spread reads          wrk reads of counters picked at random among all N
#                         (what a node whose counters outgrow its cache sees)
#
#   scripts/bench_scale.sh                     1M counters (c1 .. c1000000)
#   scripts/bench_scale.sh --counters 10000000
#   scripts/bench_scale.sh --duration 10       seconds per wrk run
#   scripts/bench_scale.sh --batch 2000        counters per POST /counters
#   scripts/bench_scale.sh --no-redis          skip the Redis reference
#   scripts/bench_scale.sh --no-build          use build/dist_counter as it is
#   scripts/bench_scale.sh --keep              keep the temp dir
#   DIST_COUNTER_BIN=build-x/dist_counter scripts/bench_scale.sh
#
# Counters are made with POST /counters (each counter once, delta 1), so
# each holds one actor; Redis gets `INCR c<i>` for the same names through
# redis-cli --pipe. Everything runs on 127.0.0.1 on free ports with
# throwaway data dirs, and is stopped when the script exits. Exits 1 if the
# node failed, refused a batch, lost a counter across a restart, or did not
# stop cleanly. Timings are reported, never asserted.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
# shellcheck source=scripts/lib/common.sh
source "${ROOT}/scripts/lib/common.sh"
# shellcheck source=scripts/lib/bench.sh
source "${ROOT}/scripts/lib/bench.sh"

counters=1000000
duration=10
batch=2000
redis=1
build=1
keep=0
while (( $# > 0 )); do
  case "$1" in
    --counters) shift; counters="${1:?}" ;;
    --duration) shift; duration="${1:?}" ;;
    --batch) shift; batch="${1:?}" ;;
    --no-redis) redis=0 ;;
    --no-build) build=0 ;;
    --keep) keep=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench_scale.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
check_positive_ints "${counters}" "${duration}" "${batch}"
prepare_node_binary "${build}"

node_pid=""
redis_pid=""
child_pid=""
node_port=""
stop_all() {
  stop_process "${child_pid}" "a benchmark client"
  stop_process "${node_pid}" node
  stop_process "${redis_pid}" redis-server
}
start_run dist_counter_bench_scale

problems=()
max_counters=$(( counters > 10000000 ? counters : 10000000 ))
pick_port node_port
node_url="http://127.0.0.1:${node_port}"

# Prints field $2 (in kB) of /proc/$1/status (VmRSS, VmHWM).
proc_kb() {
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# Prints nanoseconds since the epoch.
now_ns() { date +%s%N; }

# Starts the node on data dir ${tmp}/node (kept across restarts) and sets
# node_pid; does not wait.
launch_node() {
  env -u ACTORS -u CHALLENGE_ID "${bin}" --challenge_id=scale \
    --bind=127.0.0.1 --port="${node_port}" --data_dir="${tmp}/node" \
    --max_counters="${max_counters}" --max_body_bytes=$(( 1024 * 1024 )) \
    --logtostderr=1 --minloglevel=1 >>"${tmp}/node.log" 2>&1 &
  node_pid=$!
}

# Waits (up to 30 min) until the node answers /ping and counter c1 reads 1;
# sets serving_ms to the time since $1 (nanoseconds). Exits 1 if it dies.
wait_serving() {
  local start="$1"
  while true; do
    if [[ "$(curl -s -m 1 "${node_url}/counter/c1/value" 2>/dev/null)" == 1 ]]
    then
      break
    fi
    if ! alive "${node_pid}"; then
      echo "bench_scale.sh: the node died; its log:" >&2
      tail -n 30 "${tmp}/node.log" >&2
      exit 1
    fi
    if (( ($(now_ns) - start) / 1000000000 > 1800 )); then
      die "the node did not serve within 30 minutes"
    fi
    sleep 0.01
  done
  serving_ms=$(( ($(now_ns) - start) / 1000000 ))
}

# Creates c1..c<counters> on the node with POST /counters in batches, on two
# keep-alive connections. Prints the number of counters acknowledged.
load_node() {
  python3 - "${node_port}" "${counters}" "${batch}" <<'EOF'
import http.client, sys, threading
port, total, batch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
acked = [0, 0]
def worker(slot):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for first in range(1 + slot * batch, total + 1, 2 * batch):
        last = min(first + batch - 1, total)
        body = "{" + ",".join('"c%d":1' % i for i in range(first, last + 1)) + "}"
        conn.request("POST", "/counters", body)
        reply = conn.getresponse()
        text = reply.read()
        if reply.status != 204:
            sys.stderr.write("POST /counters: %d %s\n" % (reply.status, text[:200]))
            sys.exit(1)
        acked[slot] += last - first + 1
threads = [threading.Thread(target=worker, args=(s,)) for s in (0, 1)]
for t in threads: t.start()
for t in threads: t.join()
print(sum(acked))
EOF
}

# Checks that counter c<i> reads 1 for a few i spread over the range.
check_sample() {
  local i v
  for i in 1 2 $(( counters / 2 )) $(( counters - 1 )) "${counters}"; do
    (( i >= 1 )) || continue
    v="$(curl -s -m 5 "${node_url}/counter/c${i}/value")"
    [[ "${v}" == 1 ]] || problems+=("$1: counter c${i} reads '${v}', not 1")
  done
}

# Runs wrk with scripts/bench.lua on the node: $1 kind, $2 counters to pick
# from. Sets rate and p99 (as wrk prints it).
run_wrk() {
  local out="${tmp}/wrk_$1_$2.txt" rc=0
  wrk -t 2 -c 50 -d "${duration}s" --latency -s "${ROOT}/scripts/bench.lua" \
    "${node_url}" -- "$2" "$1" 1 >"${out}" 2>&1 &
  child_pid=$!
  wait "${child_pid}" || rc=$?
  child_pid=""
  (( rc == 0 )) || problems+=("wrk $1 over $2 counters exited ${rc}")
  rate="$(wrk_rate "${out}")"
  p99="$(awk '$1 == "99%" { print $2 }' "${out}" | tail -n 1)"
  local non2xx
  non2xx="$(wrk_field "${out}" non2xx)"
  if (( ${non2xx:-0} > 0 )); then
    problems+=("wrk $1 over $2 counters: ${non2xx} non-2xx replies")
  fi
}

# ---- 1. load ---------------------------------------------------------------
echo "bench_scale.sh: loading ${counters} counters into dist_counter"
launch_node
wait_until "${node_pid}" curl -fsS -m 1 "${node_url}/ping" \
  || die "the node did not answer /ping"
empty_kb="$(proc_kb "${node_pid}" VmRSS)"
load_start=$(now_ns)
acked="$(load_node)" || die "loading failed"
load_s="$(awk -v ns=$(( $(now_ns) - load_start )) 'BEGIN { printf "%.1f", ns / 1e9 }')"
(( acked == counters )) || problems+=("loaded ${acked} of ${counters} counters")
load_peak_kb="$(proc_kb "${node_pid}" VmHWM)"
loaded_kb="$(proc_kb "${node_pid}" VmRSS)"
check_sample "after loading"

# ---- 2. clean restart ----------------------------------------------------------
stop_start=$(now_ns)
kill -TERM "${node_pid}"
wait "${node_pid}" && stop_rc=0 || stop_rc=$?
stop_ms=$(( ($(now_ns) - stop_start) / 1000000 ))
node_pid=""
(( stop_rc == 0 )) || problems+=("the node exited ${stop_rc} on SIGTERM")
disk_bytes="$(du -sb "${tmp}/node" | awk '{ print $1 }')"
start=$(now_ns)
launch_node
wait_serving "${start}"
clean_restart_ms="${serving_ms}"
sleep 1  # let a restart that loads in the background show its footprint
restarted_kb="$(proc_kb "${node_pid}" VmRSS)"
check_sample "after a clean restart"

# ---- 3. restart after kill -9 ----------------------------------------------------
kill -KILL "${node_pid}"
wait "${node_pid}" 2>/dev/null || true
node_pid=""
start=$(now_ns)
launch_node
wait_serving "${start}"
crash_restart_ms="${serving_ms}"
check_sample "after kill -9"
# ---- 4. hot and spread rates (after the restarts: counters then read 1) ----
run_wrk incr 300;             hot_incr="${rate}"; hot_incr_p99="${p99}"
run_wrk value 300;            hot_read="${rate}"; hot_read_p99="${p99}"
run_wrk value "${counters}";  spread_read="${rate}"; spread_read_p99="${p99}"
run_wrk incr "${counters}";   spread_incr="${rate}"; spread_incr_p99="${p99}"

kill -TERM "${node_pid}"
wait "${node_pid}" || problems+=("the node did not stop cleanly at the end")
node_pid=""

# ---- 5. Redis with the same keys ------------------------------------------------
redis_kb=0
redis_empty_kb=0
redis_used=0
if (( redis )); then
  pick_port redis_port
  mkdir -p "${tmp}/redis"
  redis-server --port "${redis_port}" --bind 127.0.0.1 --save '' \
    --appendonly no --daemonize no --dir "${tmp}/redis" \
    --logfile "${tmp}/redis/redis.log" &
  redis_pid=$!
  wait_until "${redis_pid}" redis-cli -h 127.0.0.1 -p "${redis_port}" ping \
    || die "redis-server did not start"
  redis_empty_kb="$(proc_kb "${redis_pid}" VmRSS)"
  echo "bench_scale.sh: loading ${counters} keys into Redis (INCR)"
  python3 -c '
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
for i in range(1, n + 1):
    k = b"c%d" % i
    out.write(b"*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n" % (len(k), k))
' "${counters}" | redis-cli -h 127.0.0.1 -p "${redis_port}" --pipe >/dev/null
  redis_kb="$(proc_kb "${redis_pid}" VmRSS)"
  redis_used="$(redis-cli -h 127.0.0.1 -p "${redis_port}" info memory \
    | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }')"
  stop_process "${redis_pid}" redis-server
  redis_pid=""
fi

# ---- report ---------------------------------------------------------------------
# Prints $1 (bytes) / counters, then the same less $2 (the empty process's
# bytes): what one more counter costs.
per() {
  awk -v a="$1" -v e="${2:-0}" -v n="${counters}" \
    'BEGIN { printf "%.0f (%.0f above the empty process)", a / n, (a - e) / n }'
}
echo
echo "==== bench_scale.sh: ${counters} counters, 1 actor each; $(nproc) cores ===="
printf '  %-44s %s\n' "load (POST /counters x ${batch})" "${load_s} s"
printf '  %-44s %s B/counter\n' "peak RSS while loading" "$(per $(( load_peak_kb * 1024 )) $(( empty_kb * 1024 )))"
printf '  %-44s %s B/counter\n' "RSS once loaded" "$(per $(( loaded_kb * 1024 )) $(( empty_kb * 1024 )))"
printf '  %-44s %s B/counter\n' "RSS after a clean restart" "$(per $(( restarted_kb * 1024 )) $(( empty_kb * 1024 )))"
if (( redis )); then
  printf '  %-44s %s B/key (used_memory %s B/key)\n' "Redis RSS, same keys" \
    "$(per $(( redis_kb * 1024 )) $(( redis_empty_kb * 1024 )))" \
    "$(per "${redis_used}" | cut -d' ' -f1)"
  printf '  %-44s %s\n' "RSS ratio above empty (restarted / Redis)" \
    "$(ratio $(( restarted_kb - empty_kb )) $(( redis_kb - redis_empty_kb )))"
fi
printf '  %-44s %s B/counter\n' "disk after a clean stop" \
  "$(per "${disk_bytes}" | cut -d' ' -f1)"
printf '  %-44s %s ms\n' "clean stop (SIGTERM to exit)" "${stop_ms}"
printf '  %-44s %s ms\n' "restart to serving, clean stop" "${clean_restart_ms}"
printf '  %-44s %s ms\n' "restart to serving, after kill -9" "${crash_restart_ms}"
printf '  %-44s %s req/s (p99 %s)\n' "increments over 300 counters" "${hot_incr}" "${hot_incr_p99}"
printf '  %-44s %s req/s (p99 %s)\n' "reads over 300 counters" "${hot_read}" "${hot_read_p99}"
printf '  %-44s %s req/s (p99 %s)\n' "reads over all ${counters}" "${spread_read}" "${spread_read_p99}"
printf '  %-44s %s req/s (p99 %s)\n' "increments over all ${counters}" "${spread_incr}" "${spread_incr_p99}"
exit_if_problems
