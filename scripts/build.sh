#!/usr/bin/env bash
# Installs missing packages, then configures and builds dist_counter.
#
#   scripts/build.sh                 build/       (RelWithDebInfo, with tests)
#   scripts/build.sh --asan          build-asan/  (-DDIST_COUNTER_SANITIZE=ON)
#   scripts/build.sh --no-tests      skip the GoogleTest suites
#   scripts/build.sh --target NAME   build one CMake target (e.g. dist_counter)
#   scripts/build.sh --no-deps       do not run scripts/install_deps.sh
#
# Environment: BUILD_TYPE (default RelWithDebInfo), JOBS (default 2: the
# machines have 2 cores), CMAKE_ARGS (extra words passed to cmake configure).
# The node binary ends up at <build dir>/dist_counter.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

build_dir="build"
sanitize="OFF"
tests="ON"
target=""
deps=1
while (( $# > 0 )); do
  case "$1" in
    --asan) build_dir="build-asan"; sanitize="ON" ;;
    --no-tests) tests="OFF" ;;
    --target) shift; target="${1:?--target needs a name}" ;;
    --target=*) target="${1#--target=}" ;;
    --no-deps) deps=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

if (( deps )); then
  "${ROOT}/scripts/install_deps.sh"
fi

build_type="${BUILD_TYPE:-RelWithDebInfo}"
jobs="${JOBS:-2}"
# shellcheck disable=SC2206  # CMAKE_ARGS is meant to be split into words.
extra_args=(${CMAKE_ARGS:-})

echo "build.sh: configuring ${build_dir}/ (${build_type}, sanitize=${sanitize}," \
     "tests=${tests})"
cmake -S . -B "${build_dir}" \
  -DCMAKE_BUILD_TYPE="${build_type}" \
  -DDIST_COUNTER_SANITIZE="${sanitize}" \
  -DDIST_COUNTER_BUILD_TESTS="${tests}" \
  "${extra_args[@]}"

build_args=(--build "${build_dir}" --parallel "${jobs}")
if [[ -n "${target}" ]]; then
  build_args+=(--target "${target}")
fi
echo "build.sh: building ${build_dir}/ with ${jobs} jobs${target:+ (target ${target})}"
cmake "${build_args[@]}"
if [[ -x "${build_dir}/dist_counter" ]]; then
  echo "build.sh: done: ${build_dir}/dist_counter"
else
  echo "build.sh: done (no ${build_dir}/dist_counter yet)"
fi
