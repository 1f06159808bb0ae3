#!/usr/bin/env bash
# Runs the deterministic cluster simulator (tests/sim/, dist_counter_sim):
# real nodes in one process over a simulated network, faults drawn from a
# seed. Builds the binary first (build/, only that target).
#
#   scripts/sim.sh --seeds 1000              nightly: seeds 1..1000
#   scripts/sim.sh --seeds 200 --nodes 20    a fixed cluster size
#   scripts/sim.sh --seed 42 --nodes 5 --events 300 --trace
#                                            replay one seed, printing its trace
#
# Every other argument goes to dist_counter_sim (--first_seed, --events,
# --shrink=false, --work_dir; see dist_counter_sim --help). A failing seed
# is printed with the command that replays it and the smallest failing
# configuration found. Exits non-zero if any seed failed.
# Environment: JOBS (default 2), NO_BUILD=1 to use build/ as it is.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
# shellcheck source=scripts/lib/common.sh
source "${ROOT}/scripts/lib/common.sh"

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
esac

if [[ "${NO_BUILD:-0}" != 1 ]]; then
  JOBS="${JOBS:-2}" "${ROOT}/scripts/build.sh" --no-deps --tests \
    --target dist_counter_sim >/dev/null \
    || die "building dist_counter_sim failed (run scripts/build.sh to see why)"
fi
exec "${ROOT}/build/dist_counter_sim" "$@"
