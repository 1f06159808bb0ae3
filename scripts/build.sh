#!/usr/bin/env bash
# Installs missing packages, then configures and builds dist_counter.
#
#   scripts/build.sh                 build/       (RelWithDebInfo)
#   scripts/build.sh --asan          build-asan/  (-DDIST_COUNTER_SANITIZE=ON)
#   scripts/build.sh --tsan          build-tsan/  (-DDIST_COUNTER_TSAN=ON)
#   scripts/build.sh --tests         build the GoogleTest suites (the default
#                                    of a new build dir)
#   scripts/build.sh --no-tests      skip the GoogleTest suites
#   scripts/build.sh --target NAME   build one CMake target (e.g. dist_counter)
#   scripts/build.sh --no-deps       do not run scripts/install_deps.sh
#
# Without --tests/--no-tests an existing build dir keeps its setting.
# Environment: BUILD_TYPE (default: the build dir's, else RelWithDebInfo),
# JOBS (default 2: the machines have 2 cores), CMAKE_ARGS (extra words passed
# to cmake configure). The node binary ends up at <build dir>/dist_counter.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
# shellcheck source=scripts/lib/common.sh
source "${ROOT}/scripts/lib/common.sh"

build_dir="build"
sanitize="OFF"
tsan="OFF"
tests=""
target=""
deps=1
while (( $# > 0 )); do
  case "$1" in
    --asan) build_dir="build-asan"; sanitize="ON" ;;
    --tsan) build_dir="build-tsan"; tsan="ON" ;;
    --tests) tests="ON" ;;
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

jobs="${JOBS:-2}"
configure_args=(-S . -B "${build_dir}" -DDIST_COUNTER_SANITIZE="${sanitize}"
                -DDIST_COUNTER_TSAN="${tsan}")
if [[ -n "${BUILD_TYPE:-}" ]]; then
  configure_args+=(-DCMAKE_BUILD_TYPE="${BUILD_TYPE}")
elif [[ ! -f "${build_dir}/CMakeCache.txt" ]]; then
  configure_args+=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi
if [[ -n "${tests}" ]]; then
  configure_args+=(-DDIST_COUNTER_BUILD_TESTS="${tests}")
fi
# shellcheck disable=SC2206  # CMAKE_ARGS is meant to be split into words.
configure_args+=(${CMAKE_ARGS:-})

echo "build.sh: configuring ${build_dir}/ (sanitize=${sanitize}, tsan=${tsan}${tests:+, tests=${tests}})"
cmake "${configure_args[@]}"

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
