#!/usr/bin/env bash
# tests/malloc/leak_in_cgroup.sh — a leaking program (leaker.c) under a real 256 MiB memory cgroup (cgroup v1,
# /sys/fs/cgroup/memory): with plain glibc malloc the kernel OOM-kills it; preloaded with libpacegc-malloc in
# collect mode and GOMEMLIMIT=192MiB it finishes. Exit 0 when both happen, 1 otherwise, 77 (skipped, reason printed)
# when no memory cgroup is writable here.
#
#   tests/malloc/leak_in_cgroup.sh path/to/libpacegc-malloc.so path/to/leaker
set -uo pipefail
lib="${1:?usage: $0 LIB LEAKER}"
leaker="${2:?usage: $0 LIB LEAKER}"
root=/sys/fs/cgroup/memory
if [[ ! -w "$root" ]]; then
  echo "leak_in_cgroup: SKIP: $root is not writable (needs root and cgroup v1's memory controller)"
  exit 77
fi
cg="$root/pacegc-leak-$$"
mkdir "$cg" || { echo "leak_in_cgroup: SKIP: cannot create $cg"; exit 77; }
out="$(mktemp)"
cleanup() { rmdir "$cg" 2>/dev/null || true; rm -f "$out"; }
trap cleanup EXIT
echo $((256 << 20)) >"$cg/memory.limit_in_bytes"
if [[ -e "$cg/memory.memsw.limit_in_bytes" ]]; then echo $((256 << 20)) >"$cg/memory.memsw.limit_in_bytes"; fi

# run_capped ENV...: runs the leaker inside the cgroup with the given environment; prints its exit status.
run_capped() {
  bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec env "$@"' _ "$cg" "$@" >"$out" 2>&1
  echo $?
}

plain=$(run_capped "$leaker")
plain_out=$(cat "$out")
collect=$(run_capped LD_PRELOAD="$lib" PACEGC_MALLOC=collect GOMEMLIMIT=192MiB "$leaker")
collect_out=$(cat "$out")
echo "plain glibc: exit $plain ($plain_out)"
echo "PACEGC_MALLOC=collect GOMEMLIMIT=192MiB: exit $collect ($collect_out)"
ok=1
[[ $plain -eq 137 ]] || { echo "leak_in_cgroup: FAIL: plain glibc was not OOM-killed (exit $plain, want 137)"; ok=0; }
[[ $collect -eq 0 && "$collect_out" == *"allocated 2048 MiB"* ]] ||
  { echo "leak_in_cgroup: FAIL: the collect mode did not finish (exit $collect)"; ok=0; }
((ok))
