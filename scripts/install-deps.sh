#!/usr/bin/env bash
# Installs the Debian packages pacegc needs to build, test and benchmark, and nothing else.
#
# Idempotent: each package is checked with dpkg-query; apt-get runs only when something is missing, and then
# installs only the missing packages. Prints one line when everything is already there.
# Without root, a missing package is reported (with the command to install it) and the script exits 1.
#
# Usage: scripts/install-deps.sh            (from any directory)
set -euo pipefail

# What each package is for:
#   cmake g++ pkg-config        build; pkg-config is used by the installed-package consumer test
#   libmimalloc-dev             mimalloc (the library dlopens libmimalloc.so.2 at run time; benchmarks link it)
#   catch2                      test framework (Catch2 v2, header only)
#   libbenchmark-dev            Google Benchmark for bench/
#   libgc-dev                   bdwgc, the peer collector the benchmarks compare against
#   golang-1.19-go              the Go peer benchmarks (binary: /usr/lib/go-1.19/bin/go)
#   python3 python3-matplotlib  plots for docs/ (use /usr/bin/python3: Debian's matplotlib is installed for it)
#   python3-prometheus-client   the metrics_exposition test parses pgc_write_metrics' output with its parser
#   time                        /usr/bin/time -v for peak RSS in experiments
#   git sqlite3 jq xz-utils     unmodified programs the drop-in allocator's test runs with libpacegc-malloc
#   bzip2 zstd tcl nodejs       preloaded (tests/malloc/real_programs.sh)
#   libcpp-httplib-dev          cpp-httplib for examples/http_cache.cpp (pacegc-http-cache; optional in CMake)
readonly PACKAGES=(
  cmake g++ pkg-config
  libmimalloc-dev
  catch2
  libbenchmark-dev
  libgc-dev
  golang-1.19-go
  python3 python3-matplotlib
  python3-prometheus-client
  time
  git sqlite3 jq xz-utils bzip2 zstd tcl nodejs
  libcpp-httplib-dev
)

is_installed() {
  local status
  status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" || return 1
  [[ "$status" == "install ok installed" ]]
}

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps: dpkg-query not found; this script supports Debian/Ubuntu only." >&2
  echo "install-deps: install the equivalents of: ${PACKAGES[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} required packages are installed."
  exit 0
fi

if ((EUID != 0)); then
  echo "install-deps: missing Debian packages: ${missing[*]}" >&2
  echo "install-deps: not running as root; install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing missing packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

# apt-get can succeed while leaving a package unconfigured; verify rather than assume.
still_missing=()
for pkg in "${missing[@]}"; do
  is_installed "$pkg" || still_missing+=("$pkg")
done
if ((${#still_missing[@]} != 0)); then
  echo "install-deps: still not installed after apt-get: ${still_missing[*]}" >&2
  exit 1
fi
echo "install-deps: installed ${missing[*]}."
