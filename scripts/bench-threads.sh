#!/usr/bin/env bash
# Allocation with 1, 2, 4 and 8 threads (bench/alloc_threads.cc) for pacegc, bdwgc and mimalloc, and Go 1.19's
# runtime on the ring shape (bench/peers/go/allocthreads, when it was built: at each GOGC), ALTERNATING in one session (round-robin over the allocators, N rounds) so that drift in machine load hits all alike; then the
# stop-the-world handshake with 0..32 registered threads (bench/stw_threads.c). Prints markdown tables: median
# aggregate rate (millions of allocations per second) per shape, allocator and thread count, each pacegc rate's
# ratio to its one-thread rate, and the issue's two ratios (2 threads / 1 thread, 8 threads / 2 threads).
#
# Usage: scripts/bench-threads.sh [--rounds N] [--gogc LIST] [--min-time S] [--no-stw]
#   --rounds N     rounds of the round-robin (default 3)
#   --gogc LIST    comma-separated GOGC values for pacegc and Go (default 100,1000; bdwgc and mimalloc run once per
#                  round)
#   --min-time S   --benchmark_min_time per benchmark (default 0.5)
#   --no-stw       skip the stop-the-world table
# Binaries come from $BUILD_DIR/bench (default build/release/bench); build them first (cmake --build ... --target
# alloc_threads_pacegc alloc_threads_bdwgc alloc_threads_mimalloc stw_threads). Run it on a quiet machine: other
# load makes multi-threaded rates meaningless (a preempted thread stalls every stop of the world).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { echo "bench-threads.sh: $*" >&2; exit 1; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_dir="${BUILD_DIR:-$repo_root/build/release}/bench"
rounds=3
gogc_list="100,1000"
min_time=0.5
run_stw=1
command_line="scripts/bench-threads.sh $*"
while (($# > 0)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --rounds) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "--rounds needs a positive integer"; rounds="$2"; shift ;;
    --gogc) [[ "${2:-}" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--gogc needs a list like 100,1000"; gogc_list="$2"; shift ;;
    --min-time) [[ "${2:-}" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--min-time needs seconds"; min_time="$2"; shift ;;
    --no-stw) run_stw=0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
  shift
done
for b in alloc_threads_pacegc alloc_threads_bdwgc alloc_threads_mimalloc; do
  [[ -x "$bench_dir/$b" ]] || die "missing $bench_dir/$b (build it first; see --help)"
done

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
IFS=',' read -r -a gogcs <<<"$gogc_list"
for ((r = 1; r <= rounds; ++r)); do
  for g in "${gogcs[@]}"; do
    echo "round $r/$rounds: pacegc GOGC=$g" >&2
    GOGC="$g" "$bench_dir/alloc_threads_pacegc" --benchmark_min_time="$min_time" --benchmark_format=json \
      >"$out/pacegc-gogc$g-$r.json"
    if [[ -x "$bench_dir/alloc_threads_go" ]]; then
      echo "round $r/$rounds: go GOGC=$g" >&2
      GOGC="$g" "$bench_dir/alloc_threads_go" --min-time "$min_time" >"$out/go-gogc$g-$r.txt"
    fi
  done
  for peer in bdwgc mimalloc; do
    echo "round $r/$rounds: $peer" >&2
    "$bench_dir/alloc_threads_$peer" --benchmark_min_time="$min_time" --benchmark_format=json >"$out/$peer-$r.json"
  done
done

echo "# Allocation with threads — $(date -u +%Y-%m-%d) on $(nproc) CPUs ($(uname -r)), commit $(git -C "$repo_root" rev-parse --short HEAD)"
echo
echo "Command: \`$command_line\`; median of $rounds rounds, millions of allocations per second (aggregate)."
echo
python3 - "$out" <<'EOF'
import glob, json, os, re, statistics, sys
out = sys.argv[1]
rates = {}  # (shape, allocator label, threads) -> [rates]
for path in sorted(glob.glob(os.path.join(out, "go-gogc*.txt"))):
    label = "Go 1.19 GOGC=" + re.match(r"go-gogc(\d+)-\d+\.txt", os.path.basename(path)).group(1)
    with open(path) as f:
        for line in f:  # ring/threads:N items_per_second=R gcs=G seconds=S
            m = re.match(r"ring/threads:(\d+) items_per_second=(\S+)", line)
            if m:
                rates.setdefault(("ring", label, int(m.group(1))), []).append(float(m.group(2)) / 1e6)
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    name = os.path.basename(path)
    m = re.match(r"(pacegc-gogc(\d+)|bdwgc|mimalloc)-\d+\.json", name)
    label = f"pacegc GOGC={m.group(2)}" if m.group(2) else m.group(1)
    with open(path) as f:
        data = json.load(f)
    for b in data["benchmarks"]:
        shape = b["name"].split("/")[0]
        threads = int(re.search(r"threads:(\d+)", b["name"]).group(1))
        rates.setdefault((shape, label, threads), []).append(b["items_per_second"] / 1e6)
labels = sorted({k[1] for k in rates}, key=lambda l: (not l.startswith("pacegc"), l))
threads = sorted({k[2] for k in rates})
for shape in ("ring", "xfree"):
    print(f"**{shape}**\n")
    print("| allocator | " + " | ".join(f"{t} thr" for t in threads) + " | 2/1 | 8/2 |")
    print("|---|" + "---:|" * (len(threads) + 2))
    for label in labels:
        if not any((shape, label, t) in rates for t in threads):
            continue  # Go runs the ring shape only
        med = {t: statistics.median(rates[(shape, label, t)]) for t in threads if (shape, label, t) in rates}
        cells = [f"{med[t]:.1f}" for t in threads]
        r21 = f"{med[2] / med[1]:.2f}" if 1 in med and 2 in med else ""
        r82 = f"{med[8] / med[2]:.2f}" if 2 in med and 8 in med else ""
        print(f"| {label} | " + " | ".join(cells) + f" | {r21} | {r82} |")
    print()
EOF

if ((run_stw)); then
  [[ -x "$bench_dir/stw_threads" ]] || die "missing $bench_dir/stw_threads"
  echo "**Stop-the-world with N other registered threads** (\`stw_threads 32\`: 200 pgc_collect on an empty heap)"
  echo
  echo '```'
  "$bench_dir/stw_threads" 32
  echo '```'
fi
