#!/usr/bin/env bash
# pacegc's main demo: installs dependencies, builds Release into build/release, runs the examples, then the OOM
# simulator's step scenario (issue 5) with the four policies GOGC=100, GOGC=100 + GOMEMLIMIT, GOGC=off + GOMEMLIMIT
# and a ballast, for pacegc beside Go 1.19 and bdwgc, each run under a real 512MiB cap (a memory cgroup, or the RSS
# watchdog where cgroups are not writable): it prints the table and writes the plot to
# build/release/oomsim/step.svg (with step.csv and step.json). Then the quick benchmark suite (scripts/bench.sh
# --quick) when it is present. Takes a few minutes on 2 cores.
#
# Usage: scripts/run.sh [--no-bench]      (from any directory)
#   --no-bench   stop after the OOM simulator (skip scripts/bench.sh --quick)
# Environment: BUILD_DIR (default build/release), JOBS (build parallelism, default nproc).
# The examples honour the collector's environment, e.g. GOGC=50 GOMEMLIMIT=64MiB scripts/run.sh; the OOM simulator
# sets GOGC/GOMEMLIMIT per policy itself and ignores the caller's.
set -euo pipefail

run_bench=1
while (($# > 0)); do
  case "$1" in
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    --no-bench) run_bench=0 ;;
    *) echo "run.sh: unknown argument '$1' (accepted: --no-bench, --help)" >&2; exit 2 ;;
  esac
  shift
done

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
jobs="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
build_dir="${BUILD_DIR:-build/release}"
if ! [[ "$jobs" =~ ^[1-9][0-9]*$ ]]; then echo "run.sh: JOBS='$jobs' is not a positive whole number" >&2; exit 2; fi

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

oomsim_out="$build_dir/oomsim"
mkdir -p "$oomsim_out"
step "OOM simulator: scenario step (live 64..256 MiB, 1 GiB churn per phase), 512MiB cap, pacegc, Go 1.19, bdwgc"
# Exit status 1 only when a run failed for a reason other than memory (a kill by the cap is a result).
"$build_dir/bench/oomsim/pacegc-oomsim" --scenario step --cap 512MiB \
  --policy gogc --policy limit --policy off-limit --policy ballast --runtime pacegc,go,bdwgc --timeout 120 \
  --csv "$oomsim_out/step.csv" --json "$oomsim_out/step.json" --svg "$oomsim_out/step.svg"
echo "run.sh: plot written to $oomsim_out/step.svg (figures in step.csv, time series in step.json)"

if ((!run_bench)); then
  echo "run.sh: --no-bench: skipping scripts/bench.sh --quick"
elif [[ -x scripts/bench.sh ]]; then
  step "benchmarks: scripts/bench.sh --quick"
  BUILD_DIR="$build_dir" scripts/bench.sh --quick
elif [[ -e scripts/bench.sh ]]; then
  echo "run.sh: scripts/bench.sh exists but is not executable; fix with: chmod +x scripts/bench.sh" >&2
  exit 1
else
  echo "run.sh: scripts/bench.sh not present; skipping benchmarks."
fi

printf '\nrun.sh: done.\n'
