/* oomsim-worker-bdwgc: the bdwgc (Boehm-Demers-Weiser GC, Debian libgc 8.2) peer worker of pacegc-oomsim.
 * It speaks bench/oomsim/PROTOCOL.md; the parent runs it like the pacegc and Go workers, under the same memory cap.
 * bdwgc reads its pacing settings natively at GC_INIT: GC_MAXIMUM_HEAP_SIZE (hard heap limit), GC_FREE_SPACE_DIVISOR
 * (its GOGC-like knob, default 3), GC_MARKERS (parallel marker threads, default: one per CPU).
 *
 * Field sources (also in README.md):
 *   heap_alloc  bytes in heap blocks holding objects = heapsize - free blocks (GC_get_prof_stats: heapsize_full -
 *               free_bytes_full): allocated objects, dead ones not yet swept, and free-list slack inside used blocks.
 *   heap_goal   na: bdwgc has no goal; it collects when bytes allocated since the last GC exceed heap/divisor.
 *   total       heapsize_full: the whole GC heap including blocks unmapped to the OS, i.e. exactly what
 *               GC_MAXIMUM_HEAP_SIZE bounds (resident memory can be lower: untouched or unmapped pages).
 *   live        heap bytes in blocks that kept at least one marked object, read at the end of the last collection
 *               (GC_EVENT_END): bdwgc frees wholly unmarked blocks eagerly there, so this is the marked bytes rounded
 *               up to block (4 KiB) granularity. bdwgc exports no marked-bytes counter.
 *   gc          GC_get_gc_no().   limiter  na (bdwgc has no CPU limiter).
 *   pauses      one per collection: wall time from GC_EVENT_START to GC_EVENT_END (bdwgc's default collections are
 *               stop-the-world and run inline in the allocating thread, so this is the pause the mutator sees).
 *   gc_cpu_fraction  process CPU time (CLOCK_PROCESS_CPUTIME_ID) consumed between GC_EVENT_START and GC_EVENT_END,
 *               i.e. by the collecting thread and the parallel markers while the world is stopped, divided by
 *               (CPUs available x wall): the same definition as Go's GCCPUFraction.
 * Workload (PROTOCOL.md, revised; identical to worker_pacegc.c): a FIFO list of GC_MALLOC'd chunks of 128 pointer
 * words (word 0 the next chunk, words 1..127 nodes); a node is a GC_MALLOC'd object of --object-size bytes, word 0
 * NULL, the rest 0xA5..A5; churn objects go into a static ring of 4096 slots with word 0 written; the ballast is one
 * GC_MALLOC_ATOMIC object never touched. Note: with bdwgc's default all-interior-pointers mode every object carries
 * one extra byte (EXTRA_BYTES), so a 64-byte request takes an 80-byte slot (granules of 16): bdwgc's real cost of
 * this workload, deliberately not hidden (GC_set_all_interior_pointers(0) would change its conservative semantics).
 * Output extensions (the parent ignores unknown keys): `start` carries max_heap_size=, free_space_divisor= and
 * version=; `sample` carries gc_cpu= (GC CPU fraction so far, so a killed run still reports one); `result` carries
 * markers= (bdwgc starts its parallel markers lazily, so they are counted at the end) and gc_wall_ns= (wall time
 * spent in collections, the sum of the pauses).
 * gc= and gc_cycles count collections after GC_INIT (GC_get_gc_no() minus its value at start-up).
 * If bdwgc cannot satisfy an allocation (hard limit reached and nothing to collect), the worker prints one line on
 * stderr and exits with status 3.
 */
#define _GNU_SOURCE
#define GC_THREADS
#include <gc/gc.h>
#include <gc/gc_mark.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROG "oomsim-worker-bdwgc"
#define RING_SLOTS 4096
#define PATTERN 0xA5A5A5A5A5A5A5A5ULL /* as worker_pacegc.c: a non-canonical address, never a heap pointer */
#define CHUNK_WORDS 128                 /* word 0: next chunk; words 1..127: nodes */
#define CHUNK_BYTES ((uint64_t)(CHUNK_WORDS * sizeof(void *)))

struct phase {
  uint64_t live, churn;
};

/* ---- argument parsing ------------------------------------------------------------------------------------------ */

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs(PROG ": ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

/* GOMEMLIMIT's syntax: a non-negative integer with an optional B, KiB, MiB, GiB, TiB, PiB or EiB. */
static int parse_size(const char *s, uint64_t *out) {
  static const struct {
    const char *suffix;
    unsigned shift;
  } units[] = {{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}, {"PiB", 50}, {"EiB", 60}, {"B", 0}};
  size_t len = strlen(s), digits = len;
  unsigned shift = 0;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    size_t sl = strlen(units[i].suffix);
    if (len > sl && strcmp(s + len - sl, units[i].suffix) == 0) {
      digits = len - sl;
      shift = units[i].shift;
      break;
    }
  }
  if (digits == 0) return 0;
  uint64_t n = 0;
  for (size_t i = 0; i < digits; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    if (n > (UINT64_MAX - 9) / 10) return 0;
    n = n * 10 + (uint64_t)(s[i] - '0');
  }
  if (shift && n > (UINT64_C(0x7fffffffffffffff) >> shift)) return 0;
  *out = n << shift;
  return 1;
}

struct options {
  struct phase *phases;
  size_t nphases;
  uint64_t obj_size, ballast;
  long sample_ms;
};

static void parse_phases(const char *val, struct options *o) {
  char *copy = strdup(val), *save = NULL;
  if (!copy) die("out of memory parsing --phases");
  free(o->phases);
  o->phases = NULL;
  o->nphases = 0;
  size_t cap = 0;
  if (*val == '\0' || val[strlen(val) - 1] == ',') die("--phases: empty phase in \"%s\"", val);
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *colon = strchr(tok, ':');
    if (!colon || strchr(colon + 1, ':')) die("--phases: \"%s\" is not LIVE:CHURN", tok);
    *colon = '\0';
    struct phase p;
    if (!parse_size(tok, &p.live) || !parse_size(colon + 1, &p.churn)) {
      *colon = ':';
      die("--phases: bad size in \"%s\" (sizes use GOMEMLIMIT syntax: 64MiB, 1GiB, 4096)", tok);
    }
    if (o->nphases == cap) {
      cap = cap ? 2 * cap : 8;
      o->phases = realloc(o->phases, cap * sizeof *o->phases);
      if (!o->phases) die("out of memory parsing --phases");
    }
    o->phases[o->nphases++] = p;
  }
  free(copy);
}

static struct options parse_args(int argc, char **argv) {
  struct options o = {.obj_size = 64, .sample_ms = 20};
  int seen_phases = 0;
  for (int i = 1; i < argc; i++) {
    char name[32];
    const char *val = NULL, *arg = argv[i], *eq = strchr(arg, '=');
    if (strncmp(arg, "--", 2) == 0 && eq && (size_t)(eq - arg) < sizeof name) {
      memcpy(name, arg, (size_t)(eq - arg));
      name[eq - arg] = '\0';
      val = eq + 1;
    } else {
      snprintf(name, sizeof name, "%s", arg);
      if (strlen(arg) >= sizeof name) name[0] = '\0';
    }
    if (strcmp(name, "--phases") && strcmp(name, "--object-size") && strcmp(name, "--ballast") &&
        strcmp(name, "--tuner-pct") && strcmp(name, "--cap") && strcmp(name, "--sample-ms"))
      die("unknown argument \"%s\" (usage: " PROG " --phases LIVE:CHURN[,...] [--object-size BYTES] "
          "[--ballast BYTES] [--sample-ms MS])", arg);
    if (!val) {
      if (i + 1 >= argc) die("%s: missing value", name);
      val = argv[++i];
    }
    if (!strcmp(name, "--phases")) {
      parse_phases(val, &o);
      seen_phases = 1;
    } else if (!strcmp(name, "--object-size")) {
      if (!parse_size(val, &o.obj_size) || o.obj_size < 8 || o.obj_size > (UINT64_C(1) << 20))
        die("--object-size: \"%s\" is not a size between 8 and 1MiB", val);
    } else if (!strcmp(name, "--ballast")) {
      if (!parse_size(val, &o.ballast)) die("--ballast: \"%s\" is not a size (GOMEMLIMIT syntax)", val);
    } else if (!strcmp(name, "--tuner-pct")) {
      die("--tuner-pct: not supported: bdwgc has no per-cycle GOGC to retune (the tuner policy is n/a for bdwgc)");
    } else if (!strcmp(name, "--cap")) {
      uint64_t c;
      if (!parse_size(val, &c) || c == 0) die("--cap: \"%s\" is not a positive size (GOMEMLIMIT syntax)", val);
      /* accepted and unused: only the tuner needs it */
    } else { /* --sample-ms */
      char *end;
      errno = 0;
      long v = strtol(val, &end, 10);
      if (errno || *val == '\0' || *end != '\0' || v < 1 || v > 60000)
        die("--sample-ms: \"%s\" is not an integer between 1 and 60000", val);
      o.sample_ms = v;
    }
  }
  if (!seen_phases) die("--phases: required (e.g. --phases 64MiB:1GiB,128MiB:1GiB)");
  return o;
}

/* ---- output ---------------------------------------------------------------------------------------------------- */

static struct timespec t0;

static uint64_t ns_since(const struct timespec *a, const struct timespec *b) {
  return (uint64_t)((b->tv_sec - a->tv_sec) * 1000000000LL + (b->tv_nsec - a->tv_nsec));
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return ns_since(&t0, &t);
}

static uint64_t now_ms(void) { return now_ns() / 1000000; }

/* One line per call, flushed: flockfile keeps the sampler's and the main thread's lines whole. */
static void emit(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  flockfile(stdout);
  vfprintf(stdout, fmt, ap);
  fputc('\n', stdout);
  fflush(stdout);
  funlockfile(stdout);
  va_end(ap);
}

/* ---- collection events (called by bdwgc with its allocation lock held; must not allocate from the GC) ---------- */

static struct timespec ev_start_wall, ev_start_cpu;
static int ev_started;
static uint64_t *pauses; /* malloc'd (not GC) buffer of pause times */
static size_t npauses, pauses_cap;
static _Atomic uint64_t gc_cpu_ns, gc_wall_ns;
static _Atomic uint64_t live_after_gc;
static _Atomic int live_known;
static _Atomic uint64_t peak_total;

static void note_total(uint64_t total) {
  uint64_t cur = atomic_load(&peak_total);
  while (total > cur && !atomic_compare_exchange_weak(&peak_total, &cur, total)) {
  }
}

static void GC_CALLBACK on_event(GC_EventType e) {
  if (e == GC_EVENT_START) {
    clock_gettime(CLOCK_MONOTONIC, &ev_start_wall);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ev_start_cpu);
    ev_started = 1;
  } else if (e == GC_EVENT_END && ev_started) {
    struct timespec w, c;
    clock_gettime(CLOCK_MONOTONIC, &w);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c);
    ev_started = 0;
    atomic_fetch_add(&gc_cpu_ns, ns_since(&ev_start_cpu, &c));
    atomic_fetch_add(&gc_wall_ns, ns_since(&ev_start_wall, &w));
    if (npauses == pauses_cap) {
      size_t ncap = pauses_cap ? 2 * pauses_cap : 1024;
      uint64_t *np = realloc(pauses, ncap * sizeof *np); /* system malloc, not the GC heap */
      if (np) {
        pauses = np;
        pauses_cap = ncap;
      }
    }
    if (npauses < pauses_cap) pauses[npauses++] = ns_since(&ev_start_wall, &w); /* else dropped: out of memory */
    /* Unsynchronized getters are the documented way to read heap sizes from a callback holding the lock. */
    atomic_store(&live_after_gc, (uint64_t)GC_get_heap_size() - (uint64_t)GC_get_free_bytes());
    atomic_store(&live_known, 1);
    note_total((uint64_t)GC_get_heap_size() + (uint64_t)GC_get_unmapped_bytes());
  }
}

static void *GC_CALLBACK on_oom(size_t bytes) {
  fprintf(stderr, PROG ": out of memory: bdwgc could not allocate %zu bytes (heap %zu bytes; GC_MAXIMUM_HEAP_SIZE=%s)\n",
          bytes, (size_t)GC_get_heap_size() + (size_t)GC_get_unmapped_bytes(),
          getenv("GC_MAXIMUM_HEAP_SIZE") ? getenv("GC_MAXIMUM_HEAP_SIZE") : "unset");
  fflush(stdout);
  _exit(3);
}

/* ---- sampler thread (created with GC_pthread_create through gc.h's redirect, so it is registered) -------------- */

static long sample_ms;
static uint64_t slot;
static int ncpus = 1;
static GC_word gc_no0;
static atomic_int sampler_stop;

static void sample(int print) {
  struct GC_prof_stats_s st;
  GC_get_prof_stats(&st, sizeof st);
  uint64_t total = st.heapsize_full;
  note_total(total);
  if (!print) return;
  char live[32] = "na";
  uint64_t t = now_ns();
  if (atomic_load(&live_known)) snprintf(live, sizeof live, "%" PRIu64, atomic_load(&live_after_gc));
  emit("sample t_ms=%" PRIu64 " heap_alloc=%" PRIu64 " heap_goal=na total=%" PRIu64 " live=%s gc=%" PRIu64
       " limiter=na gc_cpu=%.4f",
       t / 1000000, (uint64_t)(st.heapsize_full - st.free_bytes_full), total, live, (uint64_t)(st.gc_no - gc_no0),
       t ? (double)atomic_load(&gc_cpu_ns) / ((double)ncpus * (double)t) : 0.0);
}

static void *sampler_main(void *arg) {
  (void)arg;
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  while (!atomic_load(&sampler_stop)) {
    next.tv_nsec += sample_ms * 1000000L;
    while (next.tv_nsec >= 1000000000L) {
      next.tv_nsec -= 1000000000L;
      next.tv_sec++;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {
    }
    if (!atomic_load(&sampler_stop)) sample(1);
  }
  return NULL;
}

/* ---- workload -------------------------------------------------------------------------------------------------- */

/* Roots: static data is scanned by bdwgc. volatile: these are only written, and the stores must reach memory. */
static void *volatile ring[RING_SLOTS];
static void *volatile ballast;
static void **head_chunk; /* oldest chunk; node slots [head_index, end) are occupied */
static void **tail_chunk; /* newest chunk; node slots [1, tail_index) are occupied */
static size_t head_index = 1, tail_index = CHUNK_WORDS;
static uint64_t nnodes, nchunks;
static size_t obj_size;

static void *gc_alloc(size_t bytes) {
  void *p = GC_MALLOC(bytes);
  if (!p) on_oom(bytes);
  return p;
}

static uint64_t live_bytes(void) { return nnodes * obj_size + nchunks * CHUNK_BYTES; }

/* Grows or shrinks the live structure exactly as worker_pacegc.c does. */
static void set_live(uint64_t target) {
  for (;;) {
    uint64_t next = live_bytes() + obj_size + (tail_index == CHUNK_WORDS ? CHUNK_BYTES : 0);
    if (next > target) break;
    if (tail_index == CHUNK_WORDS) {
      void **chunk = gc_alloc(CHUNK_BYTES);
      if (tail_chunk == NULL) {
        head_chunk = chunk;
        head_index = 1;
      } else {
        tail_chunk[0] = chunk;
      }
      tail_chunk = chunk;
      tail_index = 1;
      nchunks++;
    }
    uint64_t *node = gc_alloc(obj_size); /* word 0 stays NULL (GC_MALLOC clears) */
    for (size_t i = 1; i < obj_size / sizeof(uint64_t); i++) node[i] = PATTERN;
    tail_chunk[tail_index++] = node;
    nnodes++;
  }
  while (live_bytes() > target && nnodes > 0) {
    head_chunk[head_index++] = NULL;
    nnodes--;
    size_t end = head_chunk == tail_chunk ? tail_index : CHUNK_WORDS;
    if (head_index == end) { /* the head chunk is empty: drop it */
      void **next = head_chunk[0];
      if (head_chunk == tail_chunk) {
        tail_chunk = NULL;
        tail_index = CHUNK_WORDS;
      }
      head_chunk = next;
      head_index = 1;
      nchunks--;
    }
  }
}

static uint64_t churn(uint64_t bytes) {
  uint64_t n = bytes / obj_size;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t *o = gc_alloc(obj_size);
    o[0] = i; /* one word written, as worker_pacegc.c; small integers are not heap addresses */
    ring[slot++ % RING_SLOTS] = o;
  }
  return n * obj_size;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

static void percentile(char *buf, size_t len, const uint64_t *sorted, size_t n, double p) {
  if (n == 0) {
    snprintf(buf, len, "na");
    return;
  }
  size_t k = (size_t)(p * (double)n + 0.999999999); /* nearest rank */
  if (k < 1) k = 1;
  if (k > n) k = n;
  snprintf(buf, len, "%" PRIu64, sorted[k - 1]);
}

int main(int argc, char **argv) {
  clock_gettime(CLOCK_MONOTONIC, &t0);
  struct options o = parse_args(argc, argv);
  obj_size = (size_t)o.obj_size;
  sample_ms = o.sample_ms;

  GC_INIT(); /* reads GC_MAXIMUM_HEAP_SIZE, GC_FREE_SPACE_DIVISOR, GC_MARKERS from the environment */
  GC_set_oom_fn(on_oom);
  GC_set_on_collection_event(on_event);
  gc_no0 = GC_get_gc_no(); /* gc= and gc_cycles count the collections after start-up */

  cpu_set_t set;
  ncpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (ncpus < 1) ncpus = 1;
  const char *maxheap = getenv("GC_MAXIMUM_HEAP_SIZE"), *divisor = getenv("GC_FREE_SPACE_DIVISOR");
  emit("start runtime=bdwgc pid=%ld cpus=%d max_heap_size=%s free_space_divisor=%s version=%d.%d.%d",
       (long)getpid(), ncpus, maxheap && *maxheap ? maxheap : "off", divisor && *divisor ? divisor : "3",
       GC_VERSION_MAJOR, GC_VERSION_MINOR, GC_VERSION_MICRO);

  if (o.ballast) {
    ballast = GC_MALLOC_ATOMIC((size_t)o.ballast); /* pointer-free, never touched */
    if (!ballast) on_oom((size_t)o.ballast);
  }

  pthread_t sampler;
  int rc = pthread_create(&sampler, NULL, sampler_main, NULL);
  if (rc != 0) {
    fprintf(stderr, PROG ": cannot start the sampler thread: %s\n", strerror(rc));
    return 1;
  }

  uint64_t churn_total = 0;
  for (size_t i = 0; i < o.nphases; i++) {
    emit("phase n=%zu live=%" PRIu64 " churn=%" PRIu64 " t_ms=%" PRIu64, i + 1, o.phases[i].live, o.phases[i].churn,
         now_ms());
    set_live(o.phases[i].live);
    uint64_t c0 = now_ns();
    churn_total += churn(o.phases[i].churn);
    emit("phasedone n=%zu t_ms=%" PRIu64 " churn_s=%.3f", i + 1, now_ms(), (double)(now_ns() - c0) / 1e9);
  }
  uint64_t wall = now_ns();
  atomic_store(&sampler_stop, 1);
  pthread_join(sampler, NULL);
  sample(0);

  /* Read the event state under the allocation lock's protection: no collection runs now (we are the only mutator
   * and we are not allocating), and the sampler has exited. */
  size_t n = npauses;
  uint64_t *sorted = malloc((n ? n : 1) * sizeof *sorted);
  if (!sorted) die("out of memory");
  memcpy(sorted, pauses, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, cmp_u64);
  char p50[32], p99[32], pmax[32];
  percentile(p50, sizeof p50, sorted, n, 0.50);
  percentile(p99, sizeof p99, sorted, n, 0.99);
  percentile(pmax, sizeof pmax, sorted, n, 1.0);
  emit("result wall_s=%.3f gc_cycles=%" PRIu64 " gc_cpu_fraction=%.4f pause_p50_ns=%s pause_p99_ns=%s "
       "pause_max_ns=%s churn_bytes=%" PRIu64 " limiter_on_ns=na peak_total=%" PRIu64 " markers=%d gc_wall_ns=%" PRIu64,
       (double)wall / 1e9, (uint64_t)(GC_get_gc_no() - gc_no0),
       (double)atomic_load(&gc_cpu_ns) / ((double)ncpus * (double)wall),
       p50, p99, pmax, churn_total, atomic_load(&peak_total), GC_get_parallel() + 1,
       atomic_load(&gc_wall_ns));
  /* keep the live structures reachable to the end */
  GC_reachable_here(head_chunk);
  GC_reachable_here(ballast);
  free(sorted);
  free(o.phases);
  return 0;
}
