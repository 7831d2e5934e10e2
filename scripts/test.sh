#!/usr/bin/env bash
# Builds pacegc and runs its whole test suite: the command the README and CI use.
#
#   1. scripts/install-deps.sh (installs missing Debian packages when root; otherwise says what is missing)
#   2. Release build with tests in build/release, then ctest there
#      (includes the installed-package consumer tests: find_package(pacegc) and pkg-config)
#   3. AddressSanitizer build (Debug, heap verification on, no benchmarks) in build/asan, then ctest there
#
# Usage: scripts/test.sh [--quick]
#   --quick   skip the AddressSanitizer build (for quick local iterations; CI always runs both)
# Works from any directory. Exits non-zero if any step fails, and ends with one summary line.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

quick=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "test.sh: unknown argument '$arg' (accepted: --quick, --help)" >&2; exit 2 ;;
  esac
done

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

jobs="$(nproc 2>/dev/null || echo 2)"
# Tests without their own TIMEOUT property get this many seconds; a hang (say, a stop-the-world deadlock) fails
# the run instead of stalling CI until its own limit.
test_timeout=900

step() { printf '\n==== %s ====\n' "$*"; }

release_status="not run"
asan_status="not run"
((quick == 0)) || asan_status="skipped (--quick)"
summary() { echo "pacegc tests: release ${release_status}, asan ${asan_status}"; }
trap 'rc=$?; if ((rc != 0)); then summary; fi' EXIT

step "dependencies"
scripts/install-deps.sh

# build_and_test DIR CTEST_ENV... -- CMAKE_ARGS...
build_and_test() {
  local dir="$1"; shift
  local -a env_vars=()
  while (($# > 0)) && [[ "$1" != "--" ]]; do env_vars+=("$1"); shift; done
  shift  # the "--"
  cmake -S . -B "$dir" "$@"
  cmake --build "$dir" -j "$jobs"
  # --no-tests=error: a build that registered no tests is a failure, never a silent pass.
  (cd "$dir" && env "${env_vars[@]}" ctest --output-on-failure --no-tests=error --timeout "$test_timeout")
}

step "release build and tests (build/release)"
release_status="FAILED"
build_and_test build/release -- \
  -DCMAKE_BUILD_TYPE=Release -DPACEGC_BUILD_TESTS=ON
release_status="OK"

if ((quick == 0)); then
  step "AddressSanitizer build and tests (build/asan)"
  asan_status="FAILED"
  # detect_stack_use_after_return=0: the collector scans whole thread stacks conservatively, dead frames below
  #   the live ones included, which that mode poisons; worse, the mode moves locals into heap-allocated "fake
  #   frames" outside the thread's stack, where the scanner never looks, so objects held only by locals would be
  #   collected while still in use.
  # detect_leaks=0: LeakSanitizer reports memory unreachable from its own idea of the roots at exit; in a
  #   garbage-collected heap unreferenced objects are normal until the next cycle, so every report is noise.
  # halt_on_error=1 (the default, spelled out): the first error ends the test with a report and fails it.
  build_and_test build/asan \
    ASAN_OPTIONS=detect_stack_use_after_return=0:detect_leaks=0:halt_on_error=1 -- \
    -DCMAKE_BUILD_TYPE=Debug -DPACEGC_SANITIZE=address -DPACEGC_VERIFY_HEAP=ON \
    -DPACEGC_BUILD_TESTS=ON -DPACEGC_BUILD_BENCH=OFF
  asan_status="OK"
fi

summary
