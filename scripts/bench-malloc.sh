#!/usr/bin/env bash
# The drop-in allocator against glibc and mimalloc, ALTERNATING in one session (round-robin, N rounds) so that drift
# in machine load hits all alike:
#   1. bench/malloc_pairs (Google Benchmark: malloc/free pairs of 16-1024 bytes, 1 and 2 threads), run plain (glibc),
#      with mimalloc's override preloaded and with libpacegc-malloc.so preloaded (manual mode, then find-leak with
#      its default sampling);
#   2. real programs' wall time, plain (glibc) and with libpacegc-malloc.so preloaded (manual, find-leak): sqlite3
#      (a 300,000-row table, an index, a join) and python3 (dicts, lists and strings with 2 threads; the interpreter itself, not a
#      wrapper script such as pyenv's shim, which would add the start-up of every process it runs);
#   3. start-up: 200 runs of /bin/true, plain and preloaded (each process initialises pacegc).
# Prints markdown tables of medians, and each ratio to mimalloc (1) or to glibc (2), with the min-max of the rounds.
#
# Usage: scripts/bench-malloc.sh [--rounds N] [--min-time S]
#   --rounds N     rounds of the round-robin (default 5)
#   --min-time S   --benchmark_min_time per benchmark (default 0.5)
# Binaries come from $BUILD_DIR (default build/release): bench/malloc_pairs and libpacegc-malloc.so. mimalloc is
# Debian's /usr/lib/x86_64-linux-gnu/libmimalloc.so.2 (MIMALLOC_LIB overrides). Run it on a quiet machine.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { echo "bench-malloc.sh: $*" >&2; exit 1; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$repo_root/build/release}"
rounds=5
min_time=0.5
command_line="scripts/bench-malloc.sh $*"
while (($# > 0)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --rounds) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "--rounds needs a positive integer"; rounds="$2"; shift ;;
    --min-time) [[ "${2:-}" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--min-time needs seconds"; min_time="$2"; shift ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
  shift
done
pairs="$build_dir/bench/malloc_pairs"
pacegc_lib="$build_dir/libpacegc-malloc.so"
mimalloc_lib="${MIMALLOC_LIB:-/usr/lib/x86_64-linux-gnu/libmimalloc.so.2}"
[[ -x "$pairs" ]] || die "missing $pairs (cmake --build $build_dir --target malloc_pairs)"
[[ -f "$pacegc_lib" ]] || die "missing $pacegc_lib (cmake --build $build_dir --target pacegc_malloc_shared)"
[[ -f "$mimalloc_lib" ]] || die "missing $mimalloc_lib (libmimalloc2.0)"
for p in sqlite3 python3; do command -v "$p" >/dev/null || die "$p is not installed (scripts/install-deps.sh)"; done
python="$(python3 -c 'import sys; print(sys.executable)')"  # the interpreter, past any wrapper script

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
results="$work/results.txt"  # lines: <table> <key> <allocator> <value>

preload_for() {
  case "$1" in
    glibc) echo "" ;;
    mimalloc) echo "$mimalloc_lib" ;;
    pacegc | find-leak) echo "$pacegc_lib" ;;
  esac
}
mode_for() { [[ "$1" == find-leak ]] && echo find-leak || echo manual; }

cat >"$work/workload.py" <<'EOF'
import threading
def work(seed):
    d = {}
    for i in range(300000):
        d[(i * seed) % 100003] = [str(i)] * (i % 5)
    s = sorted(d.items())
    return sum(len(v) for _, v in s)
ts = [threading.Thread(target=work, args=(k,)) for k in (7, 11)]
for t in ts: t.start()
for t in ts: t.join()
EOF
sqlite_sql="with recursive n(i) as (select 1 union all select i + 1 from n where i < 300000)
  insert into t select i, printf('%x-%d', i * 2654435761 % 4294967296, i) from n;
  create index tb on t(b); select count(*) from t x join t y on x.a = y.a + 1 where x.b < 'c';"

wall() {  # wall <allocator> <command...>: seconds, 3 decimals
  local alloc="$1"
  shift
  local t0 t1
  t0=$(date +%s.%N)
  LD_PRELOAD="$(preload_for "$alloc")" PACEGC_MALLOC="$(mode_for "$alloc")" "$@" >/dev/null 2>&1
  t1=$(date +%s.%N)
  echo "$t0 $t1" | awk '{ printf "%.3f", $2 - $1 }'
}

for ((r = 1; r <= rounds; r++)); do
  echo "round $r/$rounds" >&2
  for alloc in glibc mimalloc pacegc find-leak; do
    LD_PRELOAD="$(preload_for $alloc)" PACEGC_MALLOC="$(mode_for $alloc)" "$pairs" --benchmark_min_time="$min_time" --benchmark_format=csv 2>/dev/null |
      awk -F, -v a="$alloc" '/BM_MallocFreePairs/ { split($1, n, ":"); gsub(/"/, "", n[2]); print "pairs", n[2], a, $7 / 1e6 }' \
      >>"$results"
  done
  for alloc in glibc pacegc find-leak; do
    echo "program sqlite3 $alloc $(wall $alloc sqlite3 :memory: "create table t(a integer, b text); $sqlite_sql")" >>"$results"
    echo "program python3 $alloc $(wall $alloc "$python" "$work/workload.py")" >>"$results"
    echo "program true-x200 $alloc $(wall $alloc bash -c 'for i in $(seq 200); do /bin/true; done')" >>"$results"
  done
done

commit="$(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "### \`$command_line\` (commit $commit, $rounds rounds, $(nproc) cores)"
echo
echo "malloc/free pairs, millions per second (median of rounds; higher is better), and pacegc's time per pair over
mimalloc's (lower is better; the target is 1.3 or less; find-leak: PACEGC_MALLOC=find-leak, default sampling):"
echo
echo "| threads | glibc | mimalloc | pacegc | find-leak | time per pair, pacegc / mimalloc (median, min-max of rounds) | find-leak / mimalloc |"
echo "|---|---|---|---|---|---|---|"
python3 - "$results" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def values(table, key, alloc):
    return [float(r[3]) for r in rows if r[0] == table and r[1] == key and r[2] == alloc]
for threads in sorted({r[1] for r in rows if r[0] == "pairs"}, key=int):
    g, m, p, f = (values("pairs", threads, a) for a in ("glibc", "mimalloc", "pacegc", "find-leak"))
    ratios = [b / a for a, b in zip(p, m)]  # time per pair: pacegc's over mimalloc's
    fratios = [b / a for a, b in zip(f, m)]
    print(f"| {threads} | {statistics.median(g):.1f} | {statistics.median(m):.1f} | {statistics.median(p):.1f} | "
          f"{statistics.median(f):.1f} | {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) | "
          f"{statistics.median(fratios):.2f} ({min(fratios):.2f}-{max(fratios):.2f}) |")
print()
print("Real programs, wall seconds (median of rounds; lower is better), and pacegc / glibc (true-x200: a shell")
print("running /bin/true 200 times, every process preloaded: the start-up cost):")
print()
print("| program | glibc | pacegc | find-leak | pacegc / glibc (median, min-max of rounds) | find-leak / glibc |")
print("|---|---|---|---|---|---|")
for prog in ("sqlite3", "python3", "true-x200"):
    g, p, f = (values("program", prog, a) for a in ("glibc", "pacegc", "find-leak"))
    ratios = [a / b for a, b in zip(p, g)]
    fratios = [a / b for a, b in zip(f, g)]
    print(f"| {prog} | {statistics.median(g):.3f} | {statistics.median(p):.3f} | {statistics.median(f):.3f} | "
          f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) | "
          f"{statistics.median(fratios):.2f} ({min(fratios):.2f}-{max(fratios):.2f}) |")
EOF
