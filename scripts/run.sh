#!/usr/bin/env bash
# Installs missing packages, builds, and runs one dist_counter node in the
# foreground on port 7777 with its data in data/node1.
#
#   scripts/run.sh                       challenge id from $CHALLENGE_ID, else 1
#   CHALLENGE_ID=7 scripts/run.sh
#   scripts/run.sh --durable --flush_interval_ms=1000   (extra flags pass through)
#
# Later flags override earlier ones, so `scripts/run.sh --port=8080` works;
# `scripts/run.sh --help` builds and lists the node's flags.
# Stop it with Ctrl-C (SIGINT) or SIGTERM: the node flushes and exits 0.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"

"${ROOT}/scripts/build.sh" --target dist_counter >&2
mkdir -p data/node1
# A foreground node logs to the terminal unless told otherwise.
export GLOG_logtostderr="${GLOG_logtostderr:-1}"

exec build/dist_counter --challenge_id="${CHALLENGE_ID:-1}" --port=7777 \
  --data_dir=data/node1 "$@"
