#!/usr/bin/env bash
# pacegc's main demo: installs dependencies, builds Release into build/release, runs the examples, then the quick
# benchmark suite (scripts/bench.sh --quick) when it is present. Takes a few minutes on 2 cores.
#
# Usage: scripts/run.sh            (from any directory)
# The examples honour the collector's environment, e.g. GOGC=50 GOMEMLIMIT=64MiB scripts/run.sh
set -euo pipefail

if (($# > 0)); then
  case "$1" in
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (accepted: --help)" >&2; exit 2 ;;
  esac
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
jobs="$(nproc 2>/dev/null || echo 2)"
build_dir=build/release

step() { printf '\n==== %s ====\n' "$*"; }

step "dependencies"
scripts/install-deps.sh

step "release build ($build_dir)"
# Same configuration as scripts/test.sh, so the two share one build tree without reconfiguring back and forth.
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DPACEGC_BUILD_TESTS=ON -DPACEGC_BUILD_EXAMPLES=ON
cmake --build "$build_dir" -j "$jobs"

step "example: hello (C API)"
"$build_dir/examples/hello"

step "example: cache_service (C++ API, 2 worker threads)"
"$build_dir/examples/cache_service" --threads 2

if [[ -x scripts/bench.sh ]]; then
  step "benchmarks: scripts/bench.sh --quick"
  scripts/bench.sh --quick
elif [[ -e scripts/bench.sh ]]; then
  echo "run.sh: scripts/bench.sh exists but is not executable; fix with: chmod +x scripts/bench.sh" >&2
  exit 1
else
  echo "run.sh: scripts/bench.sh not present; skipping benchmarks."
fi

printf '\nrun.sh: done.\n'
