#!/usr/bin/env bash
# GCBench for pacegc and its peers (bdwgc, mimalloc with explicit frees, glibc malloc with explicit frees), run
# ALTERNATING in one session — round-robin pacegc, bdwgc, mimalloc, glibc, then again, N rounds — so that drift in
# machine load or clock speed hits every allocator alike. Prints a markdown table (median wall time, min–max, median
# peak RSS, ratios to bdwgc, GC counts) with the machine, the date and the exact command.
#
# Usage: scripts/bench.sh [--quick] [--rounds N] [--repeats N] [--allocators LIST] [--alloc] [--build]
#   --rounds N         rounds of the round-robin (default 5)
#   --quick            2 rounds, and shorter microbenchmark runs with --alloc
#   --repeats N        GCBench repetitions inside each process (gcbench_* argv[1]; default 1)
#   --allocators LIST  comma-separated subset of pacegc,bdwgc,mimalloc,glibc (default: all four, all required)
#   --alloc            also run the allocation microbenchmarks (alloc_bench_*, --benchmark_repetitions=3) and print
#                      median ns per allocation with ratios to bdwgc (glibc has no microbenchmark)
#   --build            rebuild the benchmark targets before running (default: build only those that are missing)
# Binaries come from $BUILD_DIR/bench (default build/release/bench). Missing ones are built with cmake --build
# (configuring $BUILD_DIR as Release first if it has no CMakeCache.txt); if that fails, the script says which
# binary is missing and exits 1. Works from any directory; progress goes to stderr, the report to stdout.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { echo "bench.sh: $*" >&2; exit 1; }
is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$repo_root/build/release}"
command_line="scripts/bench.sh"
for arg in "$@"; do
  if [[ "$arg" =~ ^[A-Za-z0-9_,./=:+-]+$ ]]; then command_line+=" $arg"; else command_line+=" $(printf '%q' "$arg")"; fi
done

rounds=5
repeats=1
allocators="pacegc,bdwgc,mimalloc,glibc"
run_alloc=0
quick=0
force_build=0
rounds_given=0
while (($# > 0)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --quick) quick=1 ;;
    --rounds)
      (($# >= 2)) && is_count "$2" || die "--rounds needs a positive integer (got '${2-}')"
      rounds="$2"; rounds_given=1; shift ;;
    --repeats)
      (($# >= 2)) && is_count "$2" || die "--repeats needs a positive integer (got '${2-}')"
      repeats="$2"; shift ;;
    --allocators)
      (($# >= 2)) || die "--allocators needs a comma-separated list of pacegc,bdwgc,mimalloc,glibc"
      allocators="$2"; shift ;;
    --alloc) run_alloc=1 ;;
    --build) force_build=1 ;;
    *) die "unknown argument '$1' (see scripts/bench.sh --help)" ;;
  esac
  shift
done
if ((quick && !rounds_given)); then rounds=2; fi

IFS=',' read -r -a alloc_list <<<"$allocators"
((${#alloc_list[@]} > 0)) || die "--allocators: empty list"
declare -A seen=()
for a in "${alloc_list[@]}"; do
  case "$a" in
    pacegc | bdwgc | mimalloc | glibc) ;;
    *) die "--allocators: unknown allocator '$a' (accepted: pacegc, bdwgc, mimalloc, glibc)" ;;
  esac
  [[ -z "${seen[$a]-}" ]] || die "--allocators: '$a' listed twice"
  seen[$a]=1
done

# ---- binaries ---------------------------------------------------------------------------------------------------
targets=()
for a in "${alloc_list[@]}"; do
  targets+=("gcbench_$a")
  if ((run_alloc)) && [[ "$a" != glibc ]]; then targets+=("alloc_bench_$a"); fi
done

missing=()
for t in "${targets[@]}"; do
  if ((force_build)) || [[ ! -x "$build_dir/bench/$t" ]]; then missing+=("$t"); fi
done
if ((${#missing[@]} > 0)); then
  echo "bench.sh: building ${missing[*]} in $build_dir" >&2
  if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
    cmake -S "$repo_root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >&2 ||
      die "configuring $build_dir failed; cannot build ${missing[*]}"
  fi
  cmake --build "$build_dir" -j "$(nproc 2>/dev/null || echo 2)" --target "${missing[@]}" >&2 ||
    echo "bench.sh: cmake --build failed (see above)" >&2
  for t in "${missing[@]}"; do
    if [[ ! -x "$build_dir/bench/$t" ]]; then
      hint=""
      case "$t" in
        *_pacegc) hint=" (needs the library target pacegc_static from gc/)" ;;
        alloc_bench_*) hint=" (needs Google Benchmark: libbenchmark-dev)" ;;
      esac
      die "missing $build_dir/bench/$t and it could not be built$hint; use --allocators to run a subset"
    fi
  done
fi

build_type="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_dir/CMakeCache.txt" 2>/dev/null || true)"
sanitize="$(sed -n 's/^PACEGC_SANITIZE:[A-Z]*=//p' "$build_dir/CMakeCache.txt" 2>/dev/null || true)"
verify="$(sed -n 's/^PACEGC_VERIFY_HEAP:[A-Z]*=//p' "$build_dir/CMakeCache.txt" 2>/dev/null || true)"
if [[ -n "$sanitize" || "$verify" == ON ]]; then
  echo "bench.sh: WARNING: $build_dir has PACEGC_SANITIZE='$sanitize' PACEGC_VERIFY_HEAP='$verify';" \
    "pacegc numbers from it are not representative" >&2
fi

# ---- GCBench, round-robin -----------------------------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/pacegc-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
results="$work/gcbench.results"
: >"$results"

for ((r = 1; r <= rounds; r++)); do
  for a in "${alloc_list[@]}"; do
    log="$work/gcbench_$a.$r.log"
    if ! "$build_dir/bench/gcbench_$a" "$repeats" >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      die "gcbench_$a failed in round $r (exit status above; last lines of its output shown)"
    fi
    line="$(grep '^RESULT ' "$log" | tail -n 1 || true)"
    [[ -n "$line" ]] || { tail -n 20 "$log" >&2; die "gcbench_$a printed no RESULT line in round $r"; }
    echo "$line" >>"$results"
    echo "bench.sh: round $r/$rounds: $line" >&2
  done
done

cpu_model="$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)"
mem_total="$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
echo "## GCBench (Ellis, Kovac, Boehm)"
echo
echo "- Command: \`$command_line\` (BUILD_DIR=$build_dir, build type ${build_type:-unknown})"
echo "- Machine: $(nproc) CPUs ($cpu_model), $mem_total RAM, Linux $(uname -r)"
echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- $rounds rounds, allocators alternating ($(IFS=,; echo "${alloc_list[*]}")), $repeats GCBench run(s) per process;" \
  "wall = total time of the run(s) inside the process, peak RSS = getrusage ru_maxrss"
echo
python3 "$repo_root/bench/summarize.py" gcbench "$results" --order "$(IFS=,; echo "${alloc_list[*]}")" --baseline bdwgc

# ---- allocation microbenchmarks -------------------------------------------------------------------------------------
if ((run_alloc)); then
  jsons=()
  min_time=()
  ((quick)) && min_time=(--benchmark_min_time=0.1)
  for a in "${alloc_list[@]}"; do
    [[ "$a" != glibc ]] || continue
    json="$work/alloc_bench_$a.json"
    echo "bench.sh: running alloc_bench_$a" >&2
    if ! "$build_dir/bench/alloc_bench_$a" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
      "${min_time[@]}" --benchmark_out="$json" --benchmark_out_format=json >"$work/alloc_bench_$a.log" 2>&1; then
      tail -n 20 "$work/alloc_bench_$a.log" >&2
      die "alloc_bench_$a failed"
    fi
    jsons+=("$json")
  done
  if ((${#jsons[@]} > 0)); then
    echo
    echo "## Allocation fast path (alloc_bench_*, 3 repetitions, medians)"
    echo
    python3 "$repo_root/bench/summarize.py" alloc "${jsons[@]}"
  else
    echo "bench.sh: --alloc: no allocator with a microbenchmark selected (glibc has none)" >&2
  fi
fi
