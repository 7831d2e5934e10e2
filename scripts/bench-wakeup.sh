#!/usr/bin/env bash
# Issue 12's target benchmark: a 1 ms sleeper's wake-up lateness while the heap holds a large live structure and
# another thread churns (bench/wakeup_latency.c; design comment there). Runs pacegc, bdwgc and Go 1.19
# ALTERNATING for N rounds, so that drift in machine load hits all three alike, then prints a markdown table of
# medians and min–max per runtime (lateness max, p99, p99.9, churn wall, longest GC pause, collections, peak RSS),
# with the commit, the machine, the date and the command, and the targets' status for pacegc.
#
# Usage: scripts/bench-wakeup.sh [--rounds N] [--live-gib G] [--churn-gib G] [--runtimes LIST] [--concurrent-off]
#   --rounds N         rounds (default 3)
#   --live-gib G       live heap in GiB (default 1; fractional allowed, e.g. 0.25)
#   --churn-gib G      churn per run in GiB (default 8)
#   --runtimes LIST    comma-separated subset of pacegc,bdwgc,go (default all three; each must be built)
#   --concurrent-off   also run pacegc with PACEGC_CONCURRENT=off each round, and print the churn wall ratio
#                      (the issue's ≤ 1.5× target). The pacegc row runs with PACEGC_CONCURRENT=on (the default;
#                      the caller's value if set).
# Binaries: $BUILD_DIR/bench/wakeup_latency_{pacegc,bdwgc,go} (default build/release), built if missing. GOGC and
# GOMEMLIMIT are passed through from the caller's environment (unset: GOGC=100 for pacegc and Go; bdwgc has its own
# default pacing). Each run goes under `nice -n $NICE` (default 0; set NICE=10 on a shared machine). Progress and
# the runs' output go to stderr, the report to stdout.
set -euo pipefail
die() { echo "bench-wakeup.sh: $*" >&2; exit 1; }
bad_option() { echo "bench-wakeup.sh: $*" >&2; exit 2; }  # one line, exit 2, as the benchmark itself
is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
is_gib() { [[ "$1" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]]; }
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$repo_root/build/release}"
rounds=3 live=1 churn=8 runtimes="pacegc,bdwgc,go" concurrent_off=0 nice_level="${NICE:-0}"
command_line="scripts/bench-wakeup.sh $*"
while (($# > 0)); do
  case "$1" in
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    --rounds) (($# >= 2)) && is_count "$2" || bad_option "--rounds needs a positive integer"; rounds="$2"; shift ;;
    --live-gib) (($# >= 2)) && is_gib "$2" || bad_option "--live-gib needs a number of GiB"; live="$2"; shift ;;
    --churn-gib) (($# >= 2)) && is_gib "$2" || bad_option "--churn-gib needs a number of GiB"; churn="$2"; shift ;;
    --runtimes) (($# >= 2)) && [[ "$2" =~ ^(pacegc|bdwgc|go)(,(pacegc|bdwgc|go))*$ ]] ||
      bad_option "--runtimes needs a comma-separated subset of pacegc,bdwgc,go"; runtimes="$2"; shift ;;
    --concurrent-off) concurrent_off=1 ;;
    *) bad_option "unknown argument '$1' (see --help)" ;;
  esac
  shift
done
[[ "$nice_level" =~ ^-?[0-9]+$ ]] || bad_option "NICE must be an integer"

IFS=, read -r -a runtime_list <<<"$runtimes"
runs=()  # "label binary env" per run of a round
for rt in "${runtime_list[@]}"; do
  bin="$build_dir/bench/wakeup_latency_$rt"
  if [[ ! -x "$bin" ]]; then
    [[ -f "$build_dir/CMakeCache.txt" ]] || cmake -S "$repo_root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >&2
    cmake --build "$build_dir" --target "wakeup_latency_$rt" -j "$(nproc)" >&2 || die "cannot build $bin"
  fi
  [[ -x "$bin" ]] || die "$bin is missing (is its peer installed? see bench/CMakeLists.txt)"
  runs+=("$rt")
  if [[ "$rt" == pacegc && "$concurrent_off" == 1 ]]; then runs+=("pacegc-off"); fi
done

out="$(mktemp)" one="$(mktemp)"
trap 'rm -f "$out" "$one"' EXIT
for ((r = 1; r <= rounds; r++)); do
  for run in "${runs[@]}"; do
    echo "round $r/$rounds: $run" >&2
    status=0
    case "$run" in
      pacegc-off) env PACEGC_CONCURRENT=off nice -n "$nice_level" "$build_dir/bench/wakeup_latency_pacegc" \
                    --live-gib "$live" --churn-gib "$churn" >"$one" || status=$? ;;
      pacegc) env PACEGC_CONCURRENT="${PACEGC_CONCURRENT:-on}" nice -n "$nice_level" \
                "$build_dir/bench/wakeup_latency_pacegc" --live-gib "$live" --churn-gib "$churn" >"$one" || status=$? ;;
      *) nice -n "$nice_level" "$build_dir/bench/wakeup_latency_$run" --live-gib "$live" --churn-gib "$churn" \
           >"$one" || status=$? ;;
    esac
    cat "$one" >&2
    ((status == 0)) || die "round $r: $run exited with status $status (its output is above)"
    sed -n "s/^RESULT /RESULT run=$run /p" "$one" >>"$out"
  done
done

/usr/bin/python3 - "$out" "$command_line" "$(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo '?')" \
  "$rounds" "${GOGC:-unset (100)}" "${GOMEMLIMIT:-unset}" "$nice_level" "${runs[@]}" <<'PY'
import datetime, os, platform, statistics, sys
path, command, commit, rounds, gogc, memlimit, nice = sys.argv[1:8]
order = sys.argv[8:]
rows = {}
for line in open(path):
    kv = dict(f.split("=", 1) for f in line.split()[1:])
    if kv.get("verified") != "1":
        sys.exit(f"bench-wakeup.sh: run {kv.get('run')} did not verify its live structure")
    rows.setdefault(kv["run"], []).append(kv)
names = {"pacegc": "pacegc PACEGC_CONCURRENT=" + os.environ.get("PACEGC_CONCURRENT", "on"), "pacegc-off": "pacegc PACEGC_CONCURRENT=off", "bdwgc": "bdwgc 8.2", "go": "Go 1.19"}
def col(rs, k): return [float(r[k]) for r in rs]
def cell(rs, k, d):
    xs = col(rs, k)
    return f"{statistics.median(xs):.{d}f} ({min(xs):.{d}f}–{max(xs):.{d}f})"
first = rows[order[0]][0]
print(f"wakeup_latency, live {first['live_gib']} GiB, churn {first['churn_gib']} GiB; {rounds} rounds alternating "
      f"({', '.join(order)}); commit {commit}; {platform.node()}, {os.cpu_count()} CPUs, "
      f"{datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC; nice {nice}; GOGC {gogc}, GOMEMLIMIT {memlimit}; "
      f"`{command.strip()}`\n")
print("Median of rounds (min–max). Lateness: actual − intended wake-up of a thread sleeping 1 ms in a loop.\n")
print("| runtime | wake-ups | late max ms | late p99 ms | late p99.9 ms | >25 ms | churn wall s | "
      "longest GC pause ms | GCs in churn | peak RSS MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for run in order:
    rs = rows[run]
    churn_s = [float(r["churn_ms"]) / 1000 for r in rs]
    print(f"| {names[run]} | {statistics.median(col(rs, 'wakeups')):.0f} | {cell(rs, 'late_max_ms', 1)} | "
          f"{cell(rs, 'late_p99_ms', 2)} | {cell(rs, 'late_p999_ms', 1)} | {cell(rs, 'late_over_25ms', 0)} | "
          f"{statistics.median(churn_s):.1f} ({min(churn_s):.1f}–{max(churn_s):.1f}) | "
          f"{cell(rs, 'pause_max_ms', 1)} | {cell(rs, 'gcs', 0)} | {cell(rs, 'maxrss_mib', 0)} |")
if "pacegc" in rows:
    p = rows["pacegc"]
    mx, p99 = statistics.median(col(p, "late_max_ms")), statistics.median(col(p, "late_p99_ms"))
    line = (f"\npacegc against issue 12's targets (medians): late max {mx:.1f} ms (target ≤ 25: "
            f"{'met' if mx <= 25 else 'missed'}), p99 {p99:.2f} ms (target ≤ 2: {'met' if p99 <= 2 else 'missed'})")
    if "go" in rows:
        g = rows["go"]
        gmx, gp99 = statistics.median(col(g, "late_max_ms")), statistics.median(col(g, "late_p99_ms"))
        line += (f"; better than Go 1.19 ({gmx:.1f} ms max, {gp99:.2f} ms p99): max "
                 f"{'yes' if mx < gmx else 'no'}, p99 {'yes' if p99 < gp99 else 'no'}")
    print(line)
    if "pacegc-off" in rows:
        ratio = statistics.median(col(p, "churn_ms")) / statistics.median(col(rows["pacegc-off"], "churn_ms"))
        print(f"churn wall, pacegc / PACEGC_CONCURRENT=off (medians): {ratio:.2f} (target ≤ 1.5)")
PY
