#!/usr/bin/env bash
# Builds pacegc and runs its whole test suite: the command the README and CI use.
#
#   1. scripts/install-deps.sh (installs missing Debian packages when root; otherwise says what is missing)
#   2. release  Release build with tests in build/release, then ctest there
#               (includes the installed-package consumer tests: find_package(pacegc) and pkg-config)
#   3. asan     AddressSanitizer build (Debug, heap verification on, no benchmarks) in build/asan, then ctest
#   4. tsan     ThreadSanitizer build (Debug, heap verification on, no benchmarks) in build/tsan, then ctest
#   5. ubsan    UndefinedBehaviorSanitizer build (Debug, heap verification on, no benchmarks) in build/ubsan, then ctest
# The sanitizer builds run the stress tests at PACEGC_STRESS_SCALE=0.25 (tests/CMakeLists.txt); docs/HACKING.md
# says why each sanitizer option is set.
#
# Usage: scripts/test.sh [--quick | --only BUILD[,BUILD...]]
#   --quick        the release build only (for quick local iterations; CI always runs all four)
#   --only BUILDS  just these of release, asan, tsan, ubsan (e.g. --only tsan)
# Works from any directory. Exits non-zero if any step fails, and ends with one summary line.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

all_builds=(release asan tsan ubsan)
selected=("${all_builds[@]}")
while (($# > 0)); do
  case "$1" in
    --quick) selected=(release) ;;
    --only)
      (($# >= 2)) || { echo "test.sh: --only needs a list of builds (${all_builds[*]})" >&2; exit 2; }
      IFS=',' read -r -a selected <<<"$2"
      for b in "${selected[@]}"; do
        if [[ " ${all_builds[*]} " != *" $b "* ]]; then
          echo "test.sh: unknown build '$b' (accepted: ${all_builds[*]})" >&2
          exit 2
        fi
      done
      shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "test.sh: unknown argument '$1' (accepted: --quick, --only BUILDS, --help)" >&2; exit 2 ;;
  esac
  shift
done

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

jobs="$(nproc 2>/dev/null || echo 2)"
# Tests without their own TIMEOUT property get this many seconds; a hang (say, a stop-the-world deadlock) fails
# the run instead of stalling CI until its own limit.
test_timeout=900

step() { printf '\n==== %s ====\n' "$*"; }

declare -A status
for b in "${all_builds[@]}"; do status[$b]="skipped"; done
summary() {
  local line="pacegc tests:"
  for b in "${all_builds[@]}"; do line+=" $b ${status[$b]},"; done
  echo "${line%,}"
}
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

# Sanitizer builds share these: Debug, the heap verifier on (every collection verified, misuse aborts), and no
# benchmarks (a sanitizer would break bdwgc's scanning and distort the numbers).
sanitizer_cmake=(-DCMAKE_BUILD_TYPE=Debug -DPACEGC_VERIFY_HEAP=ON -DPACEGC_BUILD_TESTS=ON -DPACEGC_BUILD_BENCH=OFF)

for b in "${selected[@]}"; do
  status[$b]="FAILED"
  case "$b" in
    release)
      step "release build and tests (build/release)"
      build_and_test build/release -- -DCMAKE_BUILD_TYPE=Release -DPACEGC_BUILD_TESTS=ON ;;
    asan)
      step "AddressSanitizer build and tests (build/asan)"
      # detect_stack_use_after_return=0: the collector scans whole thread stacks conservatively, dead frames below
      #   the live ones included, which that mode poisons; worse, the mode moves locals into heap-allocated "fake
      #   frames" outside the thread's stack, where the scanner never looks, so objects held only by locals would be
      #   collected while still in use.
      # detect_leaks=0: LeakSanitizer reports memory unreachable from its own idea of the roots at exit; in a
      #   garbage-collected heap unreferenced objects are normal until the next cycle, so every report is noise.
      # halt_on_error=1 (the default, spelled out): the first error ends the test with a report and fails it.
      build_and_test build/asan \
        ASAN_OPTIONS=detect_stack_use_after_return=0:detect_leaks=0:halt_on_error=1 -- \
        -DPACEGC_SANITIZE=address "${sanitizer_cmake[@]}" ;;
    tsan)
      # TSAN_OPTIONS for every test come from tests/CMakeLists.txt (die_after_fork=0, halt_on_error=1).
      step "ThreadSanitizer build and tests (build/tsan)"
      build_and_test build/tsan -- -DPACEGC_SANITIZE=thread "${sanitizer_cmake[@]}" ;;
    ubsan)
      # Built with -fno-sanitize-recover=undefined (CMakeLists.txt): any report aborts the test.
      step "UndefinedBehaviorSanitizer build and tests (build/ubsan)"
      build_and_test build/ubsan -- -DPACEGC_SANITIZE=undefined "${sanitizer_cmake[@]}" ;;
  esac
  status[$b]="OK"
done

summary
