#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, libFuzzer, ASan and UBSan
# into build-fuzz/, then runs each one for a bounded time over its
# checked-in seed corpus (fuzz/corpus/<target>/). Exits nonzero if a build
# fails or any target finds a crash, a sanitizer report or a broken
# property; the input that did it is saved as build-fuzz/artifacts/<target>-*
# (replay it with: build-fuzz/fuzz/<target> <file>).
#
#   scripts/fuzz.sh                     every target, FUZZ_SECONDS each
#   scripts/fuzz.sh decimal_fuzzer ...  only these targets
#   scripts/fuzz.sh --no-build          run what build-fuzz/ already holds
#
# Environment: FUZZ_SECONDS (per target, default 20), JOBS (default 2),
# CMAKE_ARGS (extra words for cmake configure, e.g. a compiler launcher).
# New inputs the fuzzers find go to build-fuzz/corpus/<target>/, never into
# the checked-in corpus; copy a useful one there by hand.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"

readonly ALL_TARGETS=(decimal_fuzzer counter_name_fuzzer json_fuzzer
                      batch_body_fuzzer config_body_fuzzer changes_page_fuzzer
                      http_request_fuzzer)
# Longest input per target: names fit in a URL, bodies in a few KB (deep
# nesting needs length, but the depth bound is hit within a few bytes).
declare -A MAX_LEN=([decimal_fuzzer]=64 [counter_name_fuzzer]=1024
                    [json_fuzzer]=8192 [batch_body_fuzzer]=8192
                    [config_body_fuzzer]=8192 [changes_page_fuzzer]=8192
                    [http_request_fuzzer]=4096)
# The dictionary per target (default fuzz/json.dict).
declare -A DICT=([http_request_fuzzer]=fuzz/http.dict)

usage() {
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
}

build=1
targets=()
for arg in "$@"; do
  case "${arg}" in
    --no-build) build=0 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "fuzz.sh: unknown argument '${arg}'" >&2; usage >&2; exit 2 ;;
    *) targets+=("${arg}") ;;
  esac
done
if (( ${#targets[@]} == 0 )); then
  targets=("${ALL_TARGETS[@]}")
fi

build_dir="build-fuzz"
seconds="${FUZZ_SECONDS:-20}"

if (( build )); then
  if ! command -v clang++ >/dev/null 2>&1; then
    echo "fuzz.sh: clang++ not found (scripts/install_deps.sh installs it)" >&2
    exit 1
  fi
  echo "fuzz.sh: configuring ${build_dir}/"
  # shellcheck disable=SC2206  # CMAKE_ARGS is meant to be split into words.
  cmake -S . -B "${build_dir}" -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" \
    -DDIST_COUNTER_BUILD_FUZZERS=ON -DDIST_COUNTER_BUILD_TESTS=OFF \
    ${CMAKE_ARGS:-} >/dev/null
  echo "fuzz.sh: building ${targets[*]}"
  cmake --build "${build_dir}" --parallel "${JOBS:-2}" --target "${targets[@]}"
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
# halt_on_error: UB is a finding, except what fuzz/ubsan.supp lets through.
# The suppressions are appended even to options set by the caller (the test
# command sets its own UBSAN_OPTIONS for the sanitizer stage).
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}:suppressions=${ROOT}/fuzz/ubsan.supp"
mkdir -p "${build_dir}/artifacts"
failed=()
for target in "${targets[@]}"; do
  binary="${build_dir}/fuzz/${target}"
  seeds="fuzz/corpus/${target}"
  work="${build_dir}/corpus/${target}"
  if [[ ! -x "${binary}" || ! -d "${seeds}" ]]; then
    echo "fuzz.sh: ${target}: no ${binary} or no ${seeds}/" >&2
    failed+=("${target}")
    continue
  fi
  mkdir -p "${work}"
  log="${build_dir}/${target}.log"
  echo "fuzz.sh: ${target} for ${seconds}s (log: ${log})"
  # The first corpus directory receives new inputs; the seeds are only read.
  if "${binary}" -max_total_time="${seconds}" -timeout=10 \
       -rss_limit_mb=2048 -max_len="${MAX_LEN[${target}]:-4096}" \
       -dict="${DICT[${target}]:-fuzz/json.dict}" -print_final_stats=1 \
       -artifact_prefix="${build_dir}/artifacts/${target}-" \
       "${work}" "${seeds}" >"${log}" 2>&1; then
    grep -E '^stat::number_of_executed_units|^Done ' "${log}" | tail -1 |
      sed "s/^/fuzz.sh: ${target}: /"
  else
    echo "fuzz.sh: ${target} FAILED; the end of ${log}:" >&2
    tail -30 "${log}" >&2
    failed+=("${target}")
  fi
done

if (( ${#failed[@]} > 0 )); then
  echo "fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets ran ${seconds}s without a finding"
