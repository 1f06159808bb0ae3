#!/usr/bin/env bash
# Installs the Debian (bookworm) packages needed to build and test
# dist_counter, and with --bench also those the benchmarks use.
#
#   scripts/install_deps.sh           build + test packages
#   scripts/install_deps.sh --bench   ... plus wrk, redis, nginx
#   scripts/install_deps.sh --check   only report what is missing (exit 1 if so)
#
# Does nothing (and never calls apt) when every package is already installed,
# so a second run takes a fraction of a second. Installs with apt-get as root,
# or through sudo for a developer who is not root; otherwise fails and names
# the packages to install.
set -euo pipefail

readonly BUILD_PACKAGES=(
  build-essential cmake pkg-config git ca-certificates curl
  librocksdb-dev rocksdb-tools libpistache-dev rapidjson-dev
  libgflags-dev libgoogle-glog-dev libgtest-dev libcurl4-openssl-dev
  python3  # scripts/check_readme.py (the README test); slim images lack it
  clang libclang-rt-14-dev  # check_thread_safety.sh; fuzz.sh (libFuzzer)
  dnsmasq-base  # peers_dns_test: a real DNS server on loopback
  python3-yaml  # scripts/check_kubernetes.py (deploy/kubernetes/)
  iproute2 iptables  # partition_test: nodes in network namespaces, faults
  kubernetes-client  # kubectl, for check_kubernetes.py's `kubectl kustomize`
)
# Packages whose command may come from another package: a kubectl from
# Kubernetes' or Google's own apt repository is as good as Debian's (and
# Debian's would clash with its /usr/bin/kubectl).
declare -A COMMAND_OF=([kubernetes-client]=kubectl)
readonly BENCH_PACKAGES=(wrk redis-server redis-tools nginx-light strace)

usage() {
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
}

want_bench=0
check_only=0
for arg in "$@"; do
  case "${arg}" in
    --bench) want_bench=1 ;;
    --check) check_only=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install_deps.sh: unknown argument '${arg}'" >&2; usage >&2; exit 2 ;;
  esac
done

packages=("${BUILD_PACKAGES[@]}")
if (( want_bench )); then
  packages+=("${BENCH_PACKAGES[@]}")
fi

# Prints the packages of "$@" that dpkg does not list as installed.
missing_packages() {
  local pkg status
  for pkg in "$@"; do
    if [[ -n "${COMMAND_OF[${pkg}]:-}" ]] &&
       command -v "${COMMAND_OF[${pkg}]}" >/dev/null 2>&1; then
      continue
    fi
    status="$(dpkg-query -W -f='${db:Status-Status}' "${pkg}" 2>/dev/null || true)"
    if [[ "${status}" != "installed" ]]; then
      echo "${pkg}"
    fi
  done
}

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install_deps.sh: dpkg-query not found; this script expects Debian" \
       "bookworm. Install these packages by other means:" >&2
  echo "  ${packages[*]}" >&2
  exit 1
fi

mapfile -t missing < <(missing_packages "${packages[@]}")
if (( ${#missing[@]} == 0 )); then
  echo "install_deps.sh: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "install_deps.sh: missing packages: ${missing[*]}"
if (( check_only )); then
  exit 1
fi

if [[ "$(id -u)" -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install_deps.sh: not root and sudo is not available." >&2
  echo "Ask an administrator to run:" >&2
  echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"

mapfile -t still_missing < <(missing_packages "${packages[@]}")
if (( ${#still_missing[@]} != 0 )); then
  echo "install_deps.sh: still missing after apt-get: ${still_missing[*]}" >&2
  exit 1
fi
echo "install_deps.sh: installed ${missing[*]}"
