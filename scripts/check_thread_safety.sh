#!/usr/bin/env bash
# Runs clang's thread-safety analysis (-Wthread-safety, as errors) over every
# source file in src/: each access to a GUARDED_BY field must hold its Mutex
# (util/mutex.h), each REQUIRES must be met. Compiles nothing (-fsyntax-only).
# First proves the check can fail: a snippet that reads a guarded field
# without its lock, and one that takes two locks against their declared
# order (ACQUIRED_AFTER, checked by -Wthread-safety-beta), must be refused.
#
#   scripts/check_thread_safety.sh
#
# Environment: CLANGXX (default clang++). Exits nonzero on a finding.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
clangxx="${CLANGXX:-clang++}"
if ! command -v "${clangxx}" >/dev/null 2>&1; then
  echo "check_thread_safety.sh: ${clangxx} not found: install clang (apt-get install clang; scripts/install_deps.sh does)" >&2
  exit 1
fi
flags=(-std=c++17 -fsyntax-only -Wthread-safety -Wthread-safety-beta
       -Werror=thread-safety -Werror=thread-safety-beta
       -Wno-unknown-warning-option -I "${ROOT}/src")

probe="$(mktemp "${TMPDIR:-/tmp}/thread_safety_probe.XXXXXX.cc")"
trap 'rm -f "${probe}"' EXIT
cat > "${probe}" <<'CC'
#include "util/mutex.h"
struct Probe {
  dist_counter::Mutex mu;
  int value GUARDED_BY(mu) = 0;
  int Read() { return value; }  // must be refused: mu is not held
};
CC
if "${clangxx}" "${flags[@]}" "${probe}" >/dev/null 2>&1; then
  echo "check_thread_safety.sh: the analysis is not on: an unguarded read compiled" >&2
  exit 1
fi
# ... and that a lock order written with ACQUIRED_BEFORE is enforced.
cat > "${probe}" <<'CC'
#include "util/mutex.h"
struct Probe {
  dist_counter::Mutex first;
  dist_counter::Mutex second ACQUIRED_AFTER(first);
  void Backwards() {
    dist_counter::MutexLock b(&second);
    dist_counter::MutexLock a(&first);  // must be refused: order inverted
  }
};
CC
if "${clangxx}" "${flags[@]}" "${probe}" >/dev/null 2>&1; then
  echo "check_thread_safety.sh: lock order is not checked: an inverted order compiled" >&2
  exit 1
fi

failed=0
count=0
while IFS= read -r -d '' file; do
  count=$((count + 1))
  if ! "${clangxx}" "${flags[@]}" "${file}"; then
    echo "check_thread_safety.sh: ${file}: findings above" >&2
    failed=1
  fi
done < <(find src -name '*.cc' -print0 | sort -z)
if (( failed )); then
  echo "check_thread_safety.sh: FAILED" >&2
  exit 1
fi
echo "check_thread_safety.sh: ${count} files clean"
