# shellcheck shell=bash
# Helpers shared by the benchmarks (scripts/bench.sh, scripts/bench_cluster.sh).
# Sourced after scripts/lib/common.sh, never run:
#
#   source "${ROOT}/scripts/lib/common.sh"
#   source "${ROOT}/scripts/lib/bench.sh"
#
# A benchmark defines stop_all (stops everything it started), sets keep (1:
# keep the temp dir) and calls start_run to get its temp dir in tmp.

# Exits 2 with a message unless every argument is a positive integer.
check_positive_ints() {
  local n
  for n in "$@"; do
    if ! [[ "${n}" =~ ^[1-9][0-9]*$ ]]; then
      echo "${SCRIPT_NAME}: '${n}' is not a positive integer" >&2
      exit 2
    fi
  done
}

# Installs the benchmark packages, builds build/dist_counter if $1 is 1 (and
# DIST_COUNTER_BIN is unset), and sets bin to the node binary:
# DIST_COUNTER_BIN, else build/dist_counter. Exits 1 if it is missing.
prepare_node_binary() {
  local build="$1"
  "${ROOT}/scripts/install_deps.sh" --bench
  bin="${DIST_COUNTER_BIN:-${ROOT}/build/dist_counter}"
  if [[ -n "${DIST_COUNTER_BIN:-}" ]]; then
    build=0
  fi
  if (( build )); then
    "${ROOT}/scripts/build.sh" --no-deps --target dist_counter
  fi
  if [[ ! -x "${bin}" ]]; then
    die "${bin} is missing; run scripts/build.sh"
  fi
}

# Makes the run's temp dir "${TMPDIR:-/tmp}/$1.XXXXXX" and sets tmp to it.
# From then on the script's exit, Ctrl-C or SIGTERM runs end_run.
start_run() {
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
  trap end_run EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# The exit trap: calls stop_all, removes tmp (or names it if keep is 1) and
# exits with the script's own status.
end_run() {
  local rc=$?
  trap - EXIT INT TERM
  stop_all
  # shellcheck disable=SC2154  # keep is the script's.
  if (( keep )); then
    echo "${SCRIPT_NAME}: kept ${tmp}"
  else
    rm -rf "${tmp}"
  fi
  exit "${rc}"
}

# Sets the variable named $1 to a loopback TCP port that nothing uses, below
# Linux's default ephemeral range so outgoing connections do not take it,
# and never one this function gave out before.
taken_ports=" "
pick_port() {
  local port i
  for (( i = 0; i < 500; i++ )); do
    port=$(( 20000 + RANDOM % 12000 ))
    [[ "${taken_ports}" == *" ${port} "* ]] && continue
    if [[ -z "$(ss -Htan "sport = :${port}" 2>/dev/null)" ]]; then
      taken_ports+="${port} "
      printf -v "$1" '%s' "${port}"
      return 0
    fi
  done
  die "no free port found"
}

# Waits up to 10 s for `$2...` to succeed while process $1 is alive. Returns 1
# if the process is gone or the time is up.
wait_until() {
  local pid="$1" i
  shift
  for (( i = 0; i < 100; i++ )); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    alive "${pid}" || return 1
    sleep 0.1
  done
  return 1
}

# Prints the value of key $2 (a whole number) from the last "bench: ..." line
# that scripts/bench_incr.lua wrote into wrk's output file $1.
wrk_field() {
  grep -E '^bench: ' "$1" | tail -n 1 | tr ' ' '\n' \
    | sed -n "s/^$2=\([0-9]*\)$/\1/p"
}

# Prints wrk's "Requests/sec" from its output file $1.
wrk_rate() {
  awk '/^Requests\/sec:/ { print $2 }' "$1" | tail -n 1
}

# Prints $1 / $2 with two decimals, or n/a if $2 is not positive.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
}

# If the array problems has entries, prints each as "  PROBLEM: ..." and
# exits 1.
exit_if_problems() {
  # shellcheck disable=SC2154  # problems is the script's.
  if (( ${#problems[@]} > 0 )); then
    printf '  PROBLEM: %s\n' "${problems[@]}"
    exit 1
  fi
}
