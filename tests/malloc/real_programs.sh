#!/usr/bin/env bash
# tests/malloc/real_programs.sh — unmodified programs nobody here wrote, run plain and with libpacegc-malloc.so
# preloaded, in every mode PACEGC_MALLOC accepts: their output and exit status must be the same. Each workload makes
# the program allocate in earnest and, where the program can, create threads, fork, dlopen and use thread-local
# storage (the comment of each case says which).
#
#   tests/malloc/real_programs.sh LIB [WORKDIR]
#
# A program that is not installed is skipped with a line saying so (scripts/install-deps.sh installs them all);
# fewer than 8 programs run is a failure, so the test cannot pass by skipping. Exits 0 when every program that ran
# agrees with its plain run, 1 otherwise (with the difference), 2 on bad usage.
set -uo pipefail

lib="${1:-}"
if [[ -z "$lib" || ! -f "$lib" ]]; then
  echo "usage: $0 path/to/libpacegc-malloc.so [workdir]" >&2
  exit 2
fi
lib="$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")"
work="${2:-$(mktemp -d)}"
mkdir -p "$work"
cd "$work" || exit 2

modes=(manual collect find-leak)  # every value PACEGC_MALLOC accepts (settings/settings.cc)
ran=0
failed=0

# What find-leak said at the exit of each process of a case: "; find-leak: P processes, S sampled, L leaked at N
# sites" (docs/MALLOC.md reports these; PACEGC_LEAK_SAMPLE=1 in the environment samples every allocation).
leak_digest() {
  [[ -f "$1" ]] || return 0
  awk '/^pacegc: leak summary \(pid/ {
         p++
         if (match($0, /[0-9]+ allocations? sampled/)) { split(substr($0, RSTART, RLENGTH), a, " "); s += a[1] }
         if (match($0, /: [0-9]+ (sampled )?blocks? \(/)) { split(substr($0, RSTART + 2, RLENGTH), b, " "); l += b[1] }
         if (match($0, /at [0-9]+ sites?;/)) { split(substr($0, RSTART, RLENGTH), c, " "); n += c[2] }
       }
       END { if (p) printf "; find-leak: %d processes, %d allocations sampled, %d leaked blocks at %d sites", p, s, l, n }' "$1"
}

# run_case NAME PROGRAM COMMAND: COMMAND (a bash snippet) runs plain, then preloaded in each mode, each in a fresh
# directory; stdout and the exit status must match. stderr is shown only on a mismatch.
run_case() {
  local name="$1" program="$2" cmd="$3"
  if ! command -v "$program" >/dev/null 2>&1; then
    echo "SKIP $name: $program is not installed (scripts/install-deps.sh)"
    return
  fi
  rm -rf "plain-$name" && mkdir "plain-$name"
  (cd "plain-$name" && env -u LD_PRELOAD bash -c "$cmd" >../"$name.plain.out" 2>../"$name.plain.err")
  local plain_rc=$?
  local mode ok=1
  for mode in "${modes[@]}"; do
    rm -rf "pre-$name" && mkdir "pre-$name"
    (cd "pre-$name" && LD_PRELOAD="$lib" PACEGC_MALLOC="$mode" bash -c "$cmd" >../"$name.$mode.out" 2>../"$name.$mode.err")
    local rc=$?
    if [[ $rc -ne $plain_rc ]] || ! cmp -s "$name.plain.out" "$name.$mode.out"; then
      ok=0
      echo "FAIL $name (PACEGC_MALLOC=$mode): exit $rc, plain $plain_rc"
      diff "$name.plain.out" "$name.$mode.out" | head -20
      echo "--- stderr:"
      head -20 "$name.$mode.err"
    fi
  done
  ran=$((ran + 1))
  if ((ok)); then
    echo "PASS $name ($(wc -c <"$name.plain.out") bytes of output, exit $plain_rc)$(leak_digest "$name.find-leak.err")"
  else
    failed=$((failed + 1))
  fi
}

# A file of text to compress and sort: 4 MB, reproducible.
seq 1 400000 | awk '{ printf "%08d line %d of the pacegc drop-in test %x\n", ($1 * 7919) % 1000003, $1, $1 * 31 }' \
  >input.txt

# Python: threads (threading, concurrent.futures), fork (os.fork and subprocess), thread-local storage
# (threading.local), dlopen (ctypes loads libc; importing zlib/json/sqlite3 loads extension modules), and a heap of
# small objects.
cat >workload.py <<'EOF'
import concurrent.futures, ctypes, ctypes.util, hashlib, json, os, sqlite3, subprocess, sys, threading, zlib
local = threading.local()
def work(n):
    local.buf = [str(i) * (i % 17) for i in range(20000 + n)]
    d = {k: len(k) for k in local.buf}
    return hashlib.sha256(json.dumps(sorted(d.items())).encode()).hexdigest()[:16]
with concurrent.futures.ThreadPoolExecutor(4) as ex:
    print(list(ex.map(work, range(8))))
libc = ctypes.CDLL(ctypes.util.find_library("c"))
print(libc.strlen(b"pacegc"))
print(len(zlib.compress(open("../input.txt", "rb").read(), 6)))
pid = os.fork()
if pid == 0:
    os._exit(sum(len(str(i)) for i in range(10000)) % 200)
print("child", os.waitpid(pid, 0)[1] >> 8)
print(subprocess.run([sys.executable, "-c", "print(sum(range(10**6)))"], capture_output=True, text=True).stdout.strip())
db = sqlite3.connect(":memory:")
db.execute("create table t(k integer primary key, v text)")
db.executemany("insert into t values (?, ?)", ((i, "v%d" % (i * i)) for i in range(50000)))
print(db.execute("select count(*), sum(length(v)) from t").fetchone())
EOF
run_case python3 python3 'python3 ../workload.py'

# sqlite3's shell: a 200,000-row table, an index, a join and aggregates (its page cache and parser allocate).
run_case sqlite3 sqlite3 "sqlite3 :memory: \"
  create table t(a integer, b text);
  with recursive n(i) as (select 1 union all select i + 1 from n where i < 200000)
    insert into t select i, printf('%x-%d', i * 2654435761 % 4294967296, i) from n;
  create index tb on t(b);
  select count(*), sum(a), max(b) from t;
  select count(*) from t x join t y on x.a = y.a + 1 where x.b < 'c';\""

# The compiler: gcc (cc1 and as run preloaded too, through the inherited environment) compiles and runs a program.
cat >prog.c <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct node { struct node *next; char name[24]; };
int main(void) {
  struct node *head = NULL;
  for (int i = 0; i < 100000; i++) {
    struct node *n = malloc(sizeof *n);
    snprintf(n->name, sizeof n->name, "node-%d", i);
    n->next = head;
    head = n;
  }
  unsigned long sum = 0;
  while (head) { struct node *n = head; head = n->next; sum += strlen(n->name); free(n); }
  printf("%lu\n", sum);
  return 0;
}
EOF
run_case gcc gcc 'gcc -O2 -o prog ../prog.c && ./prog'

# git: a repository with fixed dates and authors (so hashes match), commits, a branch and merge, a repack (git
# pack-objects uses threads) and fsck.
run_case git git 'export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@e GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@e
  export GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z" HOME="$PWD"
  git init -q -b main r && cd r && for i in $(seq 1 30); do seq $i 3000 >f$((i % 7)); git add -A; git commit -qm "c$i"; done
  git checkout -qb side HEAD~5 && echo side >s && git add s && git commit -qm side && git checkout -q main
  git merge -q --no-edit side && git repack -adq --threads=2 && git fsck --no-progress --strict && git log --format="%H %s" | head -5
  git count-objects -v | grep -v size'

# Compressors with threads: xz -T2 and zstd -T2 compress in worker threads; gzip and bzip2 single-threaded.
run_case xz xz 'xz -T2 -6 -c ../input.txt >c.xz && xz -d -c c.xz | md5sum && wc -c <c.xz'
run_case zstd zstd 'zstd -q -T2 -19 -c ../input.txt >c.zst && zstd -q -d -c c.zst | md5sum && wc -c <c.zst'
run_case gzip gzip 'gzip -9 -c ../input.txt | gzip -d -c | md5sum'
run_case bzip2 bzip2 'bzip2 -9 -c ../input.txt | bzip2 -d -c | md5sum'

# sort with two threads and a small buffer (temporary files, merge).
run_case sort sort 'sort --parallel=2 -S 1M -k2,2n ../input.txt | md5sum'

# jq: build, transform and reduce a 100,000-element JSON document.
run_case jq jq "jq -n '[range(100000) | {k: (. * 7 % 1000 | tostring), v: .}] | group_by(.k) | map({k: .[0].k, n: length, s: (map(.v) | add)}) | (length, .[0], .[-1])'"

# perl: hashes, regular expressions, sort, and a forked child.
run_case perl perl "perl -e 'my %h; for my \$i (1..200000) { \$h{\"k\$i\"} = join(\",\", \$i, \$i * 2) } my \$n = grep { /7\$/ } keys %h; my \$pid = fork(); if (!\$pid) { exit(scalar(keys %h) % 100) } waitpid(\$pid, 0); print \"\$n \", \$? >> 8, \" \", (sort { \$a <=> \$b } map { length } values %h)[-1], \"\\n\"'"

# Tcl: lists, dicts and string building.
run_case tclsh tclsh 'echo "set d {}; for {set i 0} {\$i < 200000} {incr i} { dict set d k\$i [string repeat x [expr {\$i % 13}]] }; puts [dict size \$d]; puts [string length [join [dict values \$d] {}]]" | tclsh'

# Node.js: V8 maps its own heap and runs worker threads (libuv's pool and a Worker).
cat >workload.js <<'EOF'
const { Worker, isMainThread, parentPort } = require('worker_threads');
const zlib = require('zlib');
if (isMainThread) {
  const m = new Map();
  for (let i = 0; i < 200000; i++) m.set('k' + i, { i, s: 'v'.repeat(i % 31) });
  let total = 0;
  for (const v of m.values()) total += v.s.length;
  console.log(m.size, total);
  zlib.gzip(Buffer.alloc(1 << 20, 'p'), (err, out) => {
    console.log(err ? 'error' : zlib.gunzipSync(out).length);
    const w = new Worker(__filename);
    w.on('message', (msg) => { console.log('worker', msg); });
  });
} else {
  const a = [];
  for (let i = 0; i < 100000; i++) a.push({ i, t: String(i) });
  parentPort.postMessage(a.reduce((s, o) => s + o.t.length, 0));
}
EOF
run_case node node 'node ../workload.js'

echo "real_programs: $ran programs ran, $failed failed (work directory $work)"
if ((ran < 8)); then
  echo "real_programs: fewer than 8 programs ran: install them with scripts/install-deps.sh" >&2
  exit 1
fi
((failed == 0))
