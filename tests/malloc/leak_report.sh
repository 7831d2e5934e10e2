#!/usr/bin/env bash
# tests/malloc/leak_report.sh — PACEGC_MALLOC=find-leak on leak_probe (a program with known leaks): the report
# names the allocating functions, counts their blocks, leaves out what was kept or freed, keeps a block whose
# pointer was hidden (and says it was freed later), and, with the default sampling, finds a 64 MiB leak through the
# collections find-leak requests itself.
#
#   tests/malloc/leak_report.sh LIB PROBE
# Exits 0 when every check holds, 1 otherwise (printing the report), 2 on bad usage.
set -uo pipefail
lib="${1:-}" probe="${2:-}"
if [[ ! -f "$lib" || ! -x "$probe" ]]; then
  echo "usage: $0 path/to/libpacegc-malloc.so path/to/leak_probe" >&2
  exit 2
fi
failed=0
fail() { echo "FAIL: $*"; failed=1; }
err="$(mktemp)"
trap 'rm -f "$err"' EXIT

# --- every block sampled: the known sites -------------------------------------------------------------------------
out="$(LD_PRELOAD="$lib" PACEGC_MALLOC=find-leak PACEGC_LEAK_SAMPLE=1 "$probe" sites 2>"$err")"
rc=$?
[[ $rc -eq 0 && "$out" == "probe: ok" ]] || fail "leak_probe sites: exit $rc, stdout '$out'"

# The collection's own report comes before pgc_collect returns (the probe prints "probe: collected" after it).
before="$(sed -n '/^probe: collected$/q;p' "$err")"
# The count on the first "pacegc: leak:" line (a collection's) whose stack starts as the pattern says. A function
# is printed demangled: "(anonymous namespace)::LeakNodes() (leak_probe+0x1809)".
count_at() {
  printf '%s\n' "$before" | grep -E "^pacegc: leak: [0-9]+ blocks? \(.*allocated at $1" |
    head -1 | sed -E 's/^pacegc: leak: ([0-9]+) .*/\1/'
}
fn() { printf '[^<]*%s[^<]* \\(leak_probe\\+0x[0-9a-f]+\\)' "$1"; }  # FUNCTION in the program, with its offset
for f in "$(fn LeakSomeBlocks)" "$(fn LeakNodes)" "[^<]*strdup \\(libc[^<]*<- $(fn LeakStrings)" "$(fn LeakInThread)"; do
  n="$(count_at "$f")"
  # 200 blocks leaked at each site; a conservative scan may keep a few alive through stale copies.
  if [[ -z "$n" || "$n" -lt 150 || "$n" -gt 200 ]]; then
    fail "the collection's report does not give 150-200 blocks at '$f' (got '${n:-none}')"
  fi
done
grep -qE "allocated at $(fn LeakSomeBlocks) <- .*main \\(leak_probe\\+0x" <<<"$before" ||
  fail "LeakSomeBlocks's stack does not go on to main"
grep -q '(48 bytes\|([0-9.]* KiB) unreachable' <<<"$before" || fail "no byte count"
grep -q 'KeepBlocks\|FreeBlocks' "$err" && fail "blocks that were kept or freed are reported"
grep -qE "allocated at $(fn HideBlock)" <<<"$before" || fail "the hidden block is not reported"
grep -q 'check failed' "$err" && fail "the probe's own checks failed"

# At exit: one summary line, then a line per site, largest first.
summary="$(grep '^pacegc: leak summary (pid [0-9]*): ' "$err")"
[[ "$(printf '%s\n' "$summary" | grep -c .)" -eq 1 ]] || fail "not exactly one summary line"
grep -qE 'unreachable and never freed, at [0-9]+ sites; [0-9]+ allocations sampled \(every allocation\); 1 reported blocks were freed later' <<<"$summary" ||
  fail "the summary line does not say the sites, the sampling and the block freed after its report"
for f in LeakSomeBlocks LeakNodes LeakStrings LeakInThread HideBlock; do
  grep -qE "^pacegc: leak summary: [0-9]+ blocks? \(.*$(fn "$f")" "$err" || fail "the summary does not list $f"
done

if ((failed)); then
  echo "--- stdout: $out"
  echo "--- stderr:"
  cut -c1-400 "$err"
  exit 1
fi
echo "PASS sites: $(grep -c '^pacegc: leak:' "$err") site lines at the collection, summary: $summary"

# --- default sampling (1 per 512 KiB): a 64 MiB leak found through the collections find-leak asks for -----------
out="$(LD_PRELOAD="$lib" PACEGC_MALLOC=find-leak GODEBUG=gctrace=1 "$probe" sampled 2>"$err")"
rc=$?
[[ $rc -eq 0 && "$out" == "probe: ok" ]] || fail "leak_probe sampled: exit $rc, stdout '$out'"
grep -q '(requested)' "$err" || fail "no collection was requested by find-leak (gctrace shows none)"
line="$(grep -E "^pacegc: leak summary: .*allocated at $(fn LeakBig)" "$err" | head -1)"
# 16,384 blocks of 4 KiB, sampled 1 per 512 KiB: about 128 samples, so the estimate is within a few tens of percent.
est="$(sed -nE 's/.*about ([0-9.]+) MiB in all.*/\1/p' <<<"$line")"
if [[ -z "$est" ]] || ! awk -v e="$est" 'BEGIN { exit !(e >= 32 && e <= 128) }'; then
  fail "the summary does not estimate LeakBig's 64 MiB within 32-128 MiB (line: '${line:-none}')"
fi
if ((failed)); then
  echo "--- stdout: $out"
  echo "--- stderr:"
  grep -v '^gc ' "$err" | cut -c1-400
  exit 1
fi
echo "PASS sampled: $line" | cut -c1-300
