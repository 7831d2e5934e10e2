#!/usr/bin/env bash
# The GC CPU limiter with a soft memory limit below the live heap (issue 10): bench/limit_below_live run with no
# limit and with pgc_set_memory_limit(0), ALTERNATING for N rounds so that drift in machine load hits both alike.
# Prints a markdown table (median allocation rate, min–max, GC CPU, time until the limiter turned on) and the ratio
# of the medians (target: the limited rate ≥ 40% of the unlimited one), with the machine, date and command.
#
# Usage: scripts/bench-limit.sh [--rounds N] [--seconds S] [--live MiB]
#   --rounds N    rounds (default 5); --seconds S  timed phase of each run (default 8); --live MiB  (default 64)
# Binary: $BUILD_DIR/bench/limit_below_live (default build/release), built if missing. Run it inside a cpu cgroup
# with a quota (e.g. `echo $$ > /sys/fs/cgroup/cpu/NAME/cgroup.procs` first) to measure under throttling.
set -euo pipefail
die() { echo "bench-limit.sh: $*" >&2; exit 1; }
is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$repo_root/build/release}"
rounds=5 seconds=8 live=64
command_line="scripts/bench-limit.sh $*"
while (($# > 0)); do
  case "$1" in
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    --rounds) (($# >= 2)) && is_count "$2" || die "--rounds needs a positive integer"; rounds="$2"; shift ;;
    --seconds) (($# >= 2)) && is_count "$2" || die "--seconds needs a positive integer"; seconds="$2"; shift ;;
    --live) (($# >= 2)) && is_count "$2" || die "--live needs a positive integer (MiB)"; live="$2"; shift ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done
bin="$build_dir/bench/limit_below_live"
if [[ ! -x "$bin" ]]; then
  [[ -f "$build_dir/CMakeCache.txt" ]] || cmake -S "$repo_root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build "$build_dir" --target limit_below_live -j "$(nproc)" >&2 || die "cannot build $bin"
fi
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for ((r = 1; r <= rounds; r++)); do
  for limit in off 0; do
    echo "round $r/$rounds: limit $limit" >&2
    "$bin" --live "$live" --seconds "$seconds" --limit "$limit" | tee -a "$out" >&2
  done
done
/usr/bin/python3 - "$out" "$command_line" "$(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo '?')" <<'PY'
import statistics, sys, platform, datetime
rows = {"off": [], "set": []}
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split())
    rows[kv["limit"]].append(kv)
def col(rs, k): return [float(r[k]) for r in rs]
def fmt(xs, d=2): return f"{statistics.median(xs):.{d}f} [{min(xs):.{d}f}–{max(xs):.{d}f}]"
print(f"limit_below_live, live {rows['off'][0]['live_mib']} MiB, CPU capacity {rows['off'][0]['cpus']}; "
      f"{len(rows['off'])} rounds alternating; commit {sys.argv[3]}; {platform.node()}, "
      f"{datetime.date.today()}; `{sys.argv[2].strip()}`\n")
print("| limit | rate M allocs/s | GC CPU | limiter on ms | first on ms |")
print("|---|---:|---:|---:|---:|")
for name, key in (("none", "off"), ("0 (below live)", "set")):
    rs = rows[key]
    print(f"| {name} | {fmt(col(rs, 'rate_mps'))} | {fmt(col(rs, 'gc_cpu'), 3)} | "
          f"{fmt(col(rs, 'limiter_on_ms'), 0)} | {fmt(col(rs, 'first_on_ms'), 0)} |")
ratio = statistics.median(col(rows["set"], "rate_mps")) / statistics.median(col(rows["off"], "rate_mps"))
print(f"\nlimited / unlimited rate (medians): {ratio:.2f}")
PY
