#!/usr/bin/env bash
# Measures a 3-node dist_counter cluster over loopback (issue 3):
#
#   1. increment rate with wrk on all three nodes at once, against one node
#      alone measured in the same run with the same wrk settings;
#   2. convergence lag: from the last acknowledged write to every node
#      reading the same values (after the load, and for single writes on a
#      quiet cluster);
#   3. bytes pulled per merge round with 100k counters: a full sync, quiet
#      rounds, and rounds in which 1% of the counters change, against the
#      full-sync size measured in the same run.
#
#   scripts/bench_cluster.sh                  defaults below
#   scripts/bench_cluster.sh --duration 10 --connections 16 --counters 300
#   scripts/bench_cluster.sh --big 100000 --change-percent 1 --rounds 5
#   scripts/bench_cluster.sh --no-build --keep
#   MERGE_INTERVAL_MS=1000 DIST_COUNTER_BIN=build-x/dist_counter ...
#
# Everything runs on 127.0.0.1 on free ports with throwaway data dirs and is
# stopped when the script exits. Exits 1 if a node failed, answered non-2xx,
# or the nodes did not converge to the same values.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
# shellcheck source=scripts/lib/common.sh
source "${ROOT}/scripts/lib/common.sh"
# shellcheck source=scripts/lib/bench.sh
source "${ROOT}/scripts/lib/bench.sh"

duration="${DURATION:-10}"
connections="${CONNECTIONS:-16}"
counters="${COUNTERS:-300}"
big="${BIG:-100000}"
change_percent="${CHANGE_PERCENT:-1}"
rounds="${ROUNDS:-5}"
merge_interval_ms="${MERGE_INTERVAL_MS:-1000}"
probes="${PROBES:-10}"
build=1
keep=0
while (( $# > 0 )); do
  case "$1" in
    --no-build) build=0 ;;
    --keep) keep=1 ;;
    --duration) shift; duration="${1:?}" ;;
    --connections) shift; connections="${1:?}" ;;
    --counters) shift; counters="${1:?}" ;;
    --big) shift; big="${1:?}" ;;
    --change-percent) shift; change_percent="${1:?}" ;;
    --rounds) shift; rounds="${1:?}" ;;
    --probes) shift; probes="${1:?}" ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench_cluster.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
check_positive_ints "${duration}" "${connections}" "${counters}" "${big}" \
  "${change_percent}" "${rounds}" "${merge_interval_ms}" "${probes}"
prepare_node_binary "${build}"

pids=()        # node pids, by node index 0..2 (and 3 for the single node)
ports=()
child_pids=()  # benchmark clients running in the background
problems=()

# Stops whatever still runs (end_run calls it on exit).
stop_all() {
  local pid
  for pid in "${child_pids[@]}"; do stop_process "${pid}" "a client"; done
  for pid in "${pids[@]}"; do stop_process "${pid}" node; done
}
start_run dist_counter_bench_cluster

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

url() { echo "http://127.0.0.1:${ports[$1]}$2"; }

# Starts node $1 (index) with challenge id $1+1 and the extra flags "$@".
start_node() {
  local i="$1" j
  shift
  local actors="["
  for (( j = 0; j < 3; j++ )); do actors+="\"127.0.0.1:${ports[j]}\","; done
  actors="${actors%,}]"
  env -u ACTORS -u CHALLENGE_ID "${bin}" --challenge_id="$(( i + 1 ))" \
    --bind=127.0.0.1 --port="${ports[i]}" --data_dir="${tmp}/node${i}" \
    --actors="${actors}" \
    --merge_interval_ms="${merge_interval_ms}" --max_body_bytes=4194304 \
    --logtostderr=1 "$@" >"${tmp}/node${i}.log" 2>&1 &
  pids[i]=$!
  if wait_until "${pids[i]}" curl -fsS -m 1 "$(url "${i}" /ping)"; then
    return 0
  fi
  echo "bench_cluster.sh: node $(( i + 1 )) did not start; its log:" >&2
  tail -n 30 "${tmp}/node${i}.log" >&2
  exit 1
}

# Prints the sum of node $1's metric lines whose name-and-labels starts with
# $2 and contains $3 (if given).
metric() {
  curl -fsS -m 10 "$(url "$1" /metrics)" \
    | awk -v p="$2" -v c="${3:-}" '$0 !~ /^#/ && index($1, p) == 1 && (c == "" || index($1, c) > 0) { s += $2 }
                                   END { printf "%.0f", s }'
}

# Prints one line per counter c1..c$2 with its value on node $1, in order.
values_of() {
  local i="$1" n="$2" k urls=()
  for (( k = 1; k <= n; k++ )); do urls+=("$(url "${i}" "/counter/c${k}/value")"); done
  curl -fsS -m 30 -w '\n' "${urls[@]}" 2>/dev/null
}

# Prints one line per wrk result "requests non2xx rate" from file $1.
wrk_summary() {
  local requests non2xx rate
  requests="$(wrk_field "$1" requests)"
  non2xx="$(wrk_field "$1" non2xx)"
  rate="$(wrk_rate "$1")"
  echo "${requests:-0} ${non2xx:-0} ${rate:-0}"
}

lua="${ROOT}/scripts/bench_incr.lua"
wrk_args=(-t 1 -c "${connections}" -d "${duration}s" -s "${lua}")

# ---- 0. reference: one node alone ------------------------------------------
for i in 0 1 2 3; do pick_port "ports[${i}]"; done
echo "bench_cluster.sh: reference: one node alone on port ${ports[3]}"
env -u ACTORS -u CHALLENGE_ID "${bin}" --challenge_id=single --bind=127.0.0.1 \
  --port="${ports[3]}" --data_dir="${tmp}/single" --logtostderr=1 \
  >"${tmp}/single.log" 2>&1 &
pids[3]=$!
wait_until "${pids[3]}" curl -fsS -m 1 "$(url 3 /ping)" || true
wrk "${wrk_args[@]}" "$(url 3 '')" -- "${counters}" >"${tmp}/wrk_single.txt" 2>&1
read -r _ _ single_rate < <(wrk_summary "${tmp}/wrk_single.txt")
stop_process "${pids[3]}" "single node"
unset 'pids[3]'
echo "  one node: ${single_rate} increments/s (wrk -t1 -c${connections})"

# ---- 1. increments spread over three nodes ----------------------------------
for i in 0 1 2; do start_node "${i}"; done
echo "bench_cluster.sh: 3 nodes on ports ${ports[0]} ${ports[1]} ${ports[2]}," \
     "merge interval ${merge_interval_ms} ms"
child_pids=()
for i in 0 1 2; do
  wrk "${wrk_args[@]}" "$(url "${i}" '')" -- "${counters}" \
    >"${tmp}/wrk_node${i}.txt" 2>&1 &
  child_pids+=($!)
done
for pid in "${child_pids[@]}"; do wait "${pid}" || true; done
child_pids=()
cluster_rate=0
cluster_acked=0
for i in 0 1 2; do
  read -r requests non2xx rate < <(wrk_summary "${tmp}/wrk_node${i}.txt")
  echo "  node $(( i + 1 )): ${rate} increments/s, ${non2xx} non-2xx"
  cluster_rate="$(awk -v a="${cluster_rate}" -v b="${rate}" 'BEGIN { printf "%.0f", a + b }')"
  cluster_acked=$(( cluster_acked + requests - non2xx ))
  if (( non2xx > 0 )); then problems+=("node $(( i + 1 )) answered ${non2xx} non-2xx"); fi
done

# ---- 2. convergence lag -------------------------------------------------------
# After the load: one more write on every node, then poll until all three
# nodes read the same value for every counter.
for i in 0 1 2; do
  curl -fsS -m 5 -X POST -d 1 "$(url "${i}" /counter/c1)" >/dev/null
done
start="$(now_ms)"
converged=""
while (( $(now_ms) - start < 60000 )); do
  a="$(values_of 0 "${counters}" | md5sum)"
  b="$(values_of 1 "${counters}" | md5sum)"
  c="$(values_of 2 "${counters}" | md5sum)"
  if [[ "${a}" == "${b}" && "${b}" == "${c}" ]]; then
    converged="$(( $(now_ms) - start ))"
    break
  fi
  sleep 0.02
done
total="$(values_of 0 "${counters}" | awk 'NF { s += $1 } END { printf "%d", s }')"
if [[ -z "${converged}" ]]; then
  problems+=("the nodes did not agree within 60 s after the load")
  converged="n/a"
elif (( total < cluster_acked + 3 )); then
  problems+=("counters sum to ${total} < ${cluster_acked} + 3 acknowledged")
fi
echo "  after the load: all nodes agree ${converged} ms after the last write;" \
     "sum ${total} >= ${cluster_acked} + 3 acknowledged"

# Quiet cluster: single writes on a random node until all three see them.
lags=()
for (( p = 1; p <= probes; p++ )); do
  i=$(( RANDOM % 3 ))
  curl -fsS -m 5 -X POST -d 1 "$(url "${i}" /counter/probe)" >/dev/null
  start="$(now_ms)"
  while (( $(now_ms) - start < 30000 )); do
    seen=0
    for j in 0 1 2; do
      v="$(curl -fsS -m 5 "$(url "${j}" /counter/probe/value)" || echo 0)"
      (( v == p )) && seen=$(( seen + 1 ))
    done
    (( seen == 3 )) && break
    sleep 0.005
  done
  lags+=("$(( $(now_ms) - start ))")
done
read -r lag_min lag_median lag_max < <(printf '%s\n' "${lags[@]}" | sort -n \
  | awk '{ a[NR] = $1 } END { printf "%d %d %d\n", a[1], a[int((NR + 1) / 2)], a[NR] }')
echo "  quiet cluster, ${probes} single writes: lag min ${lag_min} ms," \
     "median ${lag_median} ms, max ${lag_max} ms"

# ---- 3. bytes per merge round with many counters ----------------------------
bytes_all() {  # bytes pulled by all nodes from all peers
  local s=0 i
  for i in 0 1 2; do s=$(( s + $(metric "${i}" dist_counter_peer_pulled_bytes_total) )); done
  echo "${s}"
}
rounds_all() {  # successful pull rounds of all nodes
  local s=0 i
  for i in 0 1 2; do
    s=$(( s + $(metric "${i}" 'dist_counter_merge_rounds_total{' 'result="ok"') ))
  done
  echo "${s}"
}
size_of() {  # counters held by node $1
  curl -fsS -m 10 "$(url "$1" /metrics)" \
    | awk '$1 == "dist_counter_counters" { v = $2 } END { printf "%.0f", v }'
}

# Loads `big` counters on node 1 in batches of 10000 (POST /counters).
echo "bench_cluster.sh: loading ${big} counters on node 1"
one_from="dist_counter_peer_pulled_bytes_total{peer=\"127.0.0.1:${ports[0]}\"}"
one_before="$(metric 1 "${one_from}")"
bytes_before="$(bytes_all)"
start="$(now_ms)"
for (( k = 0; k < big; k += 10000 )); do
  awk -v from="${k}" -v to="$(( k + 10000 < big ? k + 10000 : big ))" \
    'BEGIN { printf "{"; for (i = from; i < to; i++) printf "%s\"big%06d\":1", (i > from ? "," : ""), i; printf "}" }' \
    >"${tmp}/batch.json"
  curl -fsS -m 30 -X POST --data-binary "@${tmp}/batch.json" "$(url 0 /counters)" >/dev/null
done
want=$(( big + counters + 1 ))  # + "probe"
while (( $(now_ms) - start < 120000 )); do
  (( $(size_of 1) >= want && $(size_of 2) >= want )) && break
  sleep 0.05
done
sync_ms=$(( $(now_ms) - start ))
sleep "$(awk -v m="${merge_interval_ms}" 'BEGIN { print 2 * m / 1000 }')"
full_bytes=$(( $(bytes_all) - bytes_before ))
# Node 2's pull of node 1 alone is one full snapshot of the big store.
full_one=$(( $(metric 1 "${one_from}") - one_before ))
echo "  full sync: ${big} counters reached all nodes in ${sync_ms} ms;" \
     "${full_bytes} bytes pulled in the cluster"

# Quiet rounds.
b0="$(bytes_all)"; r0="$(rounds_all)"
sleep "$(awk -v m="${merge_interval_ms}" -v n="${rounds}" 'BEGIN { print n * m / 1000 }')"
b1="$(bytes_all)"; r1="$(rounds_all)"
idle_per_round=$(( (b1 - b0) / ((r1 - r0) > 0 ? (r1 - r0) : 1) ))
echo "  quiet: $(( b1 - b0 )) bytes in $(( r1 - r0 )) pull rounds," \
     "${idle_per_round} bytes per round"

# Rounds in which change_percent% of the counters change (on a random node).
changed=$(( big * change_percent / 100 ))
b0="$(bytes_all)"; r0="$(rounds_all)"
for (( round = 0; round < rounds; round++ )); do
  awk -v n="${changed}" -v big="${big}" -v seed="${round}${RANDOM}" \
    'BEGIN { srand(seed); printf "{"; for (i = 0; i < n; i++) printf "%s\"big%06d\":1", (i ? "," : ""), int(rand() * big); printf "}" }' \
    >"${tmp}/change.json"
  curl -fsS -m 30 -X POST --data-binary "@${tmp}/change.json" \
    "$(url $(( RANDOM % 3 )) /counters)" >/dev/null
  sleep "$(awk -v m="${merge_interval_ms}" 'BEGIN { print m / 1000 }')"
done
sleep "$(awk -v m="${merge_interval_ms}" 'BEGIN { print 2 * m / 1000 }')"
b1="$(bytes_all)"; r1="$(rounds_all)"
change_rounds=$(( r1 - r0 ))
change_bytes=$(( b1 - b0 ))
change_per_round=$(( change_bytes / (change_rounds > 0 ? change_rounds : 1) ))
# Every node pulls from two peers per interval: 6 pull rounds per interval.
per_interval=$(( change_bytes / (rounds + 2) ))
echo "  ${change_percent}% (${changed} counters) changing every interval:" \
     "${change_bytes} bytes in ${change_rounds} pull rounds," \
     "${change_per_round} bytes per round, ${per_interval} bytes per interval" \
     "for the whole cluster"

# Everyone agrees at the end.
for (( i = 0; i < 3; i++ )); do
  size="$(size_of "${i}")"
  if (( size != want )); then
    problems+=("node $(( i + 1 )) holds ${size} counters, not ${want}")
  fi
done
check="$(( RANDOM % big ))"
v0="$(curl -fsS "$(url 0 "/counter/big$(printf %06d "${check}")/value")")"
v1="$(curl -fsS "$(url 1 "/counter/big$(printf %06d "${check}")/value")")"
v2="$(curl -fsS "$(url 2 "/counter/big$(printf %06d "${check}")/value")")"
if [[ "${v0}" != "${v1}" || "${v1}" != "${v2}" ]]; then
  problems+=("big$(printf %06d "${check}") reads ${v0} ${v1} ${v2}")
fi

statuses=()
for i in 0 1 2; do
  stop_process "${pids[i]}" "node $(( i + 1 ))"
  statuses+=("${stopped_status}")
  (( stopped_status == 0 )) || problems+=("node $(( i + 1 )) exited with ${stopped_status}")
done
pids=()

echo
echo "================ bench_cluster.sh results ================"
echo "  3 nodes on 127.0.0.1, $(nproc) cores, merge interval ${merge_interval_ms} ms"
printf '  %-46s %10s inc/s\n' \
  "3 nodes, wrk -t1 -c${connections} on each" "${cluster_rate}" \
  "1 node alone, same wrk (reference)" "${single_rate}"
echo "  cluster / single node = $(ratio "${cluster_rate}" "${single_rate}")"
echo "  convergence lag after the load: ${converged} ms from the last write"
echo "  convergence lag, quiet: min ${lag_min} / median ${lag_median} /" \
     "max ${lag_max} ms (${probes} writes)"
echo "  ${big} counters: full snapshot ${full_one} bytes (node 2 from node 1)"
echo "  quiet pull round: ${idle_per_round} bytes"
echo "  pull round with ${change_percent}% changed: ${change_per_round} bytes" \
     "= $(awk -v a="${change_per_round}" -v b="${full_one}" \
          'BEGIN { if (b > 0) printf "%.2f%%", 100 * a / b; else print "n/a" }')" \
     "of a full snapshot; whole cluster ${per_interval} bytes per interval"
exit_if_problems
