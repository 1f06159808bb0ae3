# shellcheck shell=bash
# Shell helpers shared by the scripts in scripts/. Sourced, never run:
#
#   source "${ROOT}/scripts/lib/common.sh"
#
# Messages start with the name of the script that sources this file
# (bench.sh: ..., cluster.sh: ...). Defines functions and SCRIPT_NAME only;
# sourcing it starts nothing and changes no shell option.

# The running script's file name, for messages.
SCRIPT_NAME="${0##*/}"

# Prints the comment block under the running script's #! line: its usage.
usage() {
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
}

# Prints "<script>: $*" on stderr and exits 1.
die() {
  echo "${SCRIPT_NAME}: $*" >&2
  exit 1
}

# Prints the state letter of process $1 (R, S, T for stopped, Z, ...), or
# nothing if there is no such process.
proc_state() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  stat="${stat##*) }"
  echo "${stat:0:1}"
}

# True if process $1 runs or is paused (an exited child that was not waited
# for yet is a zombie, which `kill -0` still finds; it does not count).
alive() {
  local state
  state="$(proc_state "$1")"
  [[ -n "${state}" && "${state}" != "Z" ]]
}

# Waits until process $1 is gone, at most $2 tenths of a second. Returns 1 if
# it still runs then.
wait_gone() {
  local pid="$1" i
  for (( i = 0; i < $2; i++ )); do
    alive "${pid}" || return 0
    sleep 0.1
  done
  ! alive "${pid}"
}

# Stops one of this script's background children: SIGTERM, up to 10 s, then
# SIGKILL. Arguments: a pid (may be empty: then does nothing) and a name for
# messages. Sets stopped_status to the child's exit status (0 for no pid).
# shellcheck disable=SC2034  # stopped_status is for the scripts to read.
stopped_status=0
# shellcheck disable=SC2034
stop_process() {
  local pid="$1" name="$2"
  stopped_status=0
  [[ -n "${pid}" ]] || return 0
  kill -TERM "${pid}" 2>/dev/null || true
  if ! wait_gone "${pid}" 100; then
    echo "${SCRIPT_NAME}: ${name} (pid ${pid}) ignored SIGTERM; killing it" >&2
    kill -KILL "${pid}" 2>/dev/null || true
  fi
  wait "${pid}" 2>/dev/null || stopped_status=$?
}
