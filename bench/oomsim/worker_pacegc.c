/*
 * bench/oomsim/worker_pacegc.c — pacegc-oomsim-worker, the pacegc worker of the OOM simulator.
 *
 * Speaks bench/oomsim/PROTOCOL.md (read it first; this comment only adds what is specific to pacegc). Uses the
 * public API only (include/pacegc/pacegc.h). The parent (pacegc-oomsim) runs it inside a memory cgroup and gives
 * the pacing settings through the environment (GOGC, GOMEMLIMIT), which the library reads itself at start-up.
 *
 * Workload (identical in the three workers):
 *   live structure  a FIFO list of chunks (PROTOCOL.md, revised): a chunk is a scannable object of 128 pointer
 *                   words (1024 bytes), word 0 the next chunk, words 1..127 nodes. A node is a scannable object of
 *                   `object-size` bytes: word 0 a pointer field left NULL, the rest filled with 0xA5..A5 (a
 *                   non-canonical address that can never look like a pointer into the heap). Head and tail chunk
 *                   are globals (the data/bss segments are roots). Growing fills the tail chunk and appends chunks
 *                   while nodes × object-size + chunks × 1024 stays within LIVE; shrinking clears node pointers from
 *                   the head chunk (those nodes become garbage) and drops the head chunk once it is empty, until the
 *                   live bytes are at most LIVE.
 *   churn           scannable objects of `object-size` bytes stored into g_ring[i % 4096] (a global), one word
 *                   written into each, so every garbage object dies 4096 allocations later.
 *   ballast         one pgc_malloc_atomic object, never touched, kept in the global g_ballast until exit.
 *
 * Threads:
 *   main     runs the phases and prints `phase` / `phasedone`, then joins the sampler and prints `result`.
 *   sampler  a pthread registered with pgc_register_thread; every --sample-ms it reads pgc_stats, prints one `sample`
 *            line and harvests the pauses of the cycles completed since its last read from the pause_ns ring.
 *   (tuner)  no thread: with --tuner-pct a finalizer on a sentinel object runs after every collection that found the
 *            sentinel dead (on the thread that collected, after the world resumed), recomputes GOGC, and arms a new
 *            sentinel. A sentinel whose address lingers in a register or dead stack slot survives a cycle, so the
 *            tuner can skip a cycle; tuner_updates in the `result` line counts how often it ran.
 *
 * Pause percentiles: pgc_stats.pause_ns holds the last 256 pauses (cycle n at [(n + 255) % 256]). The sampler reads
 * it every sample period and at the end; if more than 256 cycles completed between two reads, the oldest pauses of
 * that stretch are overwritten before they are read. They are lost: the percentiles are then over the pauses that
 * were read, and `pauses_lost=N` in the `result` line says how many were missed (0 in every run so far: 256 cycles
 * in 20 ms would need a cycle every 78 us). A concurrent cycle's entry is its two pauses summed (Go's PauseNs counts
 * its STW phases the same way), so pause_max_ns is the larger of pgc_stats.pause_max_ns (the longest single pause,
 * exact even if pauses were lost) and the longest cycle read: never below p99, and what Go's worker reports.
 *
 * Output extensions beyond PROTOCOL.md (parsers ignore unknown keys): `start` carries gogc= and memory_limit= as the
 * library read them; `sample` carries gc_cpu= (the GC CPU fraction so far, so a killed run still reports one);
 * `result` carries pauses_lost= and tuner_updates=.
 *
 * Every line is formatted into a buffer and written with one write(2) (< PIPE_BUF), so lines from the two threads
 * never interleave and each is on the pipe as soon as it is complete (a kill loses nothing already printed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pacegc/pacegc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RING_SLOTS 4096
#define MAX_PHASES 4096
#define PAYLOAD_PATTERN ((uintptr_t)0xA5A5A5A5A5A5A5A5ull)

#define CHUNK_WORDS 128 /* word 0: next chunk; words 1..127: nodes */
#define CHUNK_BYTES ((uint64_t)(CHUNK_WORDS * sizeof(void *)))

typedef struct Phase {
  uint64_t live_bytes;
  uint64_t churn_bytes;
} Phase;

/* ---- Settings (written by main before any thread starts, read-only afterwards) ---- */
static Phase g_phases[MAX_PHASES];
static size_t g_num_phases;
static size_t g_object_size = 64;
static uint64_t g_ballast_bytes;
static int g_tuner_pct;      /* 0: no tuner */
static uint64_t g_cap_bytes; /* for the tuner */
static unsigned g_sample_ms = 20;
static struct timespec g_t0;

/* ---- Heap roots (globals: the data and bss segments are scanned) ---- */
static void **g_head_chunk; /* oldest chunk; its node slots [g_head_index, end) are occupied */
static void **g_tail_chunk; /* newest chunk; its node slots [1, g_tail_index) are occupied */
/* volatile: these are only ever written, and the compiler would otherwise drop the stores and the variables (the
 * ballast and the ring would die at once). The stores must reach memory for the collector to see the roots. */
static void *volatile g_ring[RING_SLOTS];
static void *volatile g_ballast;

/* ---- Main-thread state ---- */
static size_t g_head_index = 1;
static size_t g_tail_index = CHUNK_WORDS;
static uint64_t g_live_nodes;
static uint64_t g_live_chunks;
static uint64_t g_churn_done_bytes;
static unsigned long g_tuner_updates; /* written by the tuner finalizer (runs on the collecting thread) */

/* ---- Sampler state (sampler thread; main reads it after pthread_join) ---- */
static volatile int g_stop_sampler;   /* set by main; read by the sampler (plain flag: a delay of one period is fine) */
static uint64_t g_pauses_seen_cycles; /* cycles whose pause was harvested (or counted lost) */
static uint64_t *g_pauses;            /* harvested pauses in ns (system malloc: never holds heap pointers) */
static size_t g_pauses_len, g_pauses_cap;
static uint64_t g_pauses_lost;
static uint64_t g_peak_total_bytes;

static uint64_t NowMs(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)(t.tv_sec - g_t0.tv_sec) * 1000u + (uint64_t)((t.tv_nsec - g_t0.tv_nsec) / 1000000);
}

static double NowS(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - g_t0.tv_sec) + (double)(t.tv_nsec - g_t0.tv_nsec) * 1e-9;
}

/* One protocol line: formatted, '\n' appended, written with a single write(2). */
__attribute__((format(printf, 1, 2))) static void Emit(const char *fmt, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof(buf) - 2) n = (int)sizeof(buf) - 2;
  buf[n++] = '\n';
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(STDOUT_FILENO, p, (size_t)n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return; /* the parent went away; nothing useful to do */
    }
    p += w;
    n -= (int)w;
  }
}

__attribute__((noreturn, format(printf, 1, 2))) static void Usage(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  fprintf(stderr, "pacegc-oomsim-worker: %s\n", buf);
  exit(2);
}

static pgc_stats ReadStats(void) {
  pgc_stats s;
  memset(&s, 0, sizeof(s));
  s.size = sizeof(s);
  pgc_read_stats(&s);
  return s;
}

/* ---- Argument parsing ---------------------------------------------------------------------------------------- */

/* A size in GOMEMLIMIT syntax, "off" refused. `what` names the argument in the message. */
static uint64_t ParseSize(const char *what, const char *text) {
  char error[256];
  int64_t v = 0;
  if (strcmp(text, "off") == 0 || text[0] == '\0') {
    Usage("%s: '%s' is not a size; want a number of bytes or a whole number with B, KiB, MiB, GiB or TiB", what, text);
  }
  if (pgc_parse_memory_limit(text, &v, error, sizeof(error)) != 0) Usage("%s: %s", what, error);
  return (uint64_t)v;
}

static unsigned long ParseCount(const char *what, const char *text, unsigned long lo, unsigned long hi) {
  char *end = NULL;
  errno = 0;
  unsigned long v = strtoul(text, &end, 10);
  if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || v < lo || v > hi) {
    Usage("%s: '%s' is not a whole number in [%lu, %lu]", what, text, lo, hi);
  }
  return v;
}

/* "LIVE:CHURN[,LIVE:CHURN...]" */
static void ParsePhases(const char *text) {
  char *copy = strdup(text);
  if (copy == NULL) Usage("--phases: out of memory");
  g_num_phases = 0;
  char *save = NULL;
  for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
    char *colon = strchr(item, ':');
    if (colon == NULL) Usage("--phases: '%s' is not LIVE:CHURN (e.g. 64MiB:1GiB)", item);
    *colon = '\0';
    if (g_num_phases == MAX_PHASES) Usage("--phases: more than %d phases", MAX_PHASES);
    g_phases[g_num_phases].live_bytes = ParseSize("--phases (live)", item);
    g_phases[g_num_phases].churn_bytes = ParseSize("--phases (churn)", colon + 1);
    ++g_num_phases;
  }
  free(copy);
  if (g_num_phases == 0) Usage("--phases: empty list; want LIVE:CHURN[,LIVE:CHURN...]");
}

static void ParseArgs(int argc, char **argv) {
  int have_phases = 0;
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--phases") == 0 || strcmp(a, "--object-size") == 0 || strcmp(a, "--ballast") == 0 ||
        strcmp(a, "--tuner-pct") == 0 || strcmp(a, "--cap") == 0 || strcmp(a, "--sample-ms") == 0) {
      if (v == NULL) Usage("%s needs a value", a);
      ++i;
    }
    if (strcmp(a, "--phases") == 0) {
      ParsePhases(v);
      have_phases = 1;
    } else if (strcmp(a, "--object-size") == 0) {
      g_object_size = (size_t)ParseCount(a, v, sizeof(void *), 1ul << 20);
    } else if (strcmp(a, "--ballast") == 0) {
      g_ballast_bytes = ParseSize(a, v);
    } else if (strcmp(a, "--tuner-pct") == 0) {
      g_tuner_pct = (int)ParseCount(a, v, 1, 100);
    } else if (strcmp(a, "--cap") == 0) {
      g_cap_bytes = ParseSize(a, v);
    } else if (strcmp(a, "--sample-ms") == 0) {
      g_sample_ms = (unsigned)ParseCount(a, v, 1, 60000);
    } else {
      Usage("unknown argument '%s' (accepted: --phases --object-size --ballast --tuner-pct --cap --sample-ms)", a);
    }
  }
  if (!have_phases) Usage("--phases LIVE:CHURN[,...] is required");
  if (g_tuner_pct != 0 && g_cap_bytes == 0) Usage("--tuner-pct needs --cap BYTES");
}

/* ---- Pause harvesting (sampler thread, then main after the join) ---------------------------------------------- */

static void PushPause(uint64_t ns) {
  if (g_pauses_len == g_pauses_cap) {
    size_t cap = g_pauses_cap == 0 ? 1024 : g_pauses_cap * 2;
    uint64_t *p = realloc(g_pauses, cap * sizeof(*p));
    if (p == NULL) {
      ++g_pauses_lost;
      return;
    }
    g_pauses = p;
    g_pauses_cap = cap;
  }
  g_pauses[g_pauses_len++] = ns;
}

static void HarvestPauses(const pgc_stats *s) {
  uint64_t n = s->num_gc;
  if (n <= g_pauses_seen_cycles) return;
  if (n - g_pauses_seen_cycles > 256) {
    g_pauses_lost += n - g_pauses_seen_cycles - 256;
    g_pauses_seen_cycles = n - 256;
  }
  for (uint64_t c = g_pauses_seen_cycles + 1; c <= n; ++c) PushPause(s->pause_ns[(c + 255) % 256]);
  g_pauses_seen_cycles = n;
}

static void Observe(const pgc_stats *s) {
  HarvestPauses(s);
  if (s->total_bytes > g_peak_total_bytes) g_peak_total_bytes = s->total_bytes;
}

static void EmitSample(const pgc_stats *s) {
  char goal[32];
  if (s->heap_goal_bytes == UINT64_MAX) {
    snprintf(goal, sizeof(goal), "na");
  } else {
    snprintf(goal, sizeof(goal), "%" PRIu64, s->heap_goal_bytes);
  }
  Emit("sample t_ms=%" PRIu64 " heap_alloc=%" PRIu64 " heap_goal=%s total=%" PRIu64 " live=%" PRIu64 " gc=%" PRIu64
       " limiter=%" PRIu64 " gc_cpu=%.4f",
       NowMs(), s->heap_alloc_bytes, goal, s->total_bytes, s->heap_live_bytes, s->num_gc, s->limiter_enabled,
       s->gc_cpu_fraction);
}

static void *SamplerMain(void *arg) {
  (void)arg;
  if (pgc_register_thread() != 0) fprintf(stderr, "pacegc-oomsim-worker: sampler: pgc_register_thread failed\n");
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  while (!g_stop_sampler) {
    pgc_stats s = ReadStats();
    Observe(&s);
    EmitSample(&s);
    next.tv_nsec += (long)g_sample_ms * 1000000L;
    while (next.tv_nsec >= 1000000000L) {
      next.tv_nsec -= 1000000000L;
      ++next.tv_sec;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {
    }
  }
  pgc_unregister_thread();
  return NULL;
}

static int CompareU64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted pauses (p in (0, 1]); 0 with no pauses. */
static uint64_t Percentile(double p) {
  if (g_pauses_len == 0) return 0;
  size_t rank = (size_t)(p * (double)g_pauses_len + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > g_pauses_len) rank = g_pauses_len;
  return g_pauses[rank - 1];
}

/* ---- Tuner ------------------------------------------------------------------------------------------------------ */

static void TunerFire(void *obj, void *data);

/* noinline, so the sentinel's address does not stay in a caller's frame and keep it alive. */
__attribute__((noinline)) static void ArmTuner(void) {
  void *sentinel = pgc_malloc_atomic(16);
  if (sentinel != NULL) pgc_register_finalizer(sentinel, TunerFire, NULL);
}

/* After a collection: GOGC = (pct/100 × cap − live) / live × 100, clamped to [10, 500]. */
static void TunerFire(void *obj, void *data) {
  (void)obj;
  (void)data;
  pgc_stats s = ReadStats();
  if (s.heap_live_bytes > 0) {
    double target = (double)g_tuner_pct / 100.0 * (double)g_cap_bytes;
    double live = (double)s.heap_live_bytes;
    double gogc = (target - live) / live * 100.0;
    if (gogc < 10) gogc = 10;
    if (gogc > 500) gogc = 500;
    pgc_set_gc_percent((int)gogc);
    ++g_tuner_updates;
  }
  ArmTuner();
}

/* ---- Workload --------------------------------------------------------------------------------------------------- */

static void *AllocOrDie(size_t size, const char *what) {
  void *p = pgc_malloc(size);
  if (p == NULL) {
    fprintf(stderr, "pacegc-oomsim-worker: pgc_malloc(%zu) returned NULL while %s\n", size, what);
    exit(3);
  }
  return p;
}

static uint64_t LiveBytes(void) {
  return g_live_nodes * g_object_size + g_live_chunks * CHUNK_BYTES;
}

static void GrowOrShrink(uint64_t live_bytes) {
  for (;;) {
    uint64_t next = LiveBytes() + g_object_size + (g_tail_index == CHUNK_WORDS ? CHUNK_BYTES : 0);
    if (next > live_bytes) break;
    if (g_tail_index == CHUNK_WORDS) {
      void **chunk = AllocOrDie(CHUNK_BYTES, "growing the live heap");
      if (g_tail_chunk == NULL) {
        g_head_chunk = chunk;
        g_head_index = 1;
      } else {
        g_tail_chunk[0] = chunk;
      }
      g_tail_chunk = chunk;
      g_tail_index = 1;
      ++g_live_chunks;
    }
    uintptr_t *node = AllocOrDie(g_object_size, "growing the live heap");
    for (size_t i = 1; i < g_object_size / sizeof(uintptr_t); ++i) node[i] = PAYLOAD_PATTERN; /* word 0 stays NULL */
    g_tail_chunk[g_tail_index++] = node;
    ++g_live_nodes;
  }
  while (LiveBytes() > live_bytes && g_live_nodes > 0) {
    g_head_chunk[g_head_index++] = NULL;
    --g_live_nodes;
    size_t end = g_head_chunk == g_tail_chunk ? g_tail_index : CHUNK_WORDS;
    if (g_head_index == end) { /* the head chunk is empty: drop it */
      void **next = g_head_chunk[0];
      if (g_head_chunk == g_tail_chunk) {
        g_tail_chunk = NULL;
        g_tail_index = CHUNK_WORDS;
      }
      g_head_chunk = next;
      g_head_index = 1;
      --g_live_chunks;
    }
  }
}

static void Churn(uint64_t churn_bytes) {
  uint64_t objects = churn_bytes / g_object_size;
  for (uint64_t i = 0; i < objects; ++i) {
    uintptr_t *p = AllocOrDie(g_object_size, "churning");
    p[0] = (uintptr_t)i;
    g_ring[i % RING_SLOTS] = p;
  }
  g_churn_done_bytes += objects * g_object_size;
}

int main(int argc, char **argv) {
  clock_gettime(CLOCK_MONOTONIC, &g_t0);
  ParseArgs(argc, argv);

  pgc_stats s0 = ReadStats();
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  char gogc[24], limit[24];
  if (s0.gc_percent < 0) {
    snprintf(gogc, sizeof(gogc), "off");
  } else {
    snprintf(gogc, sizeof(gogc), "%" PRId64, s0.gc_percent);
  }
  if (s0.memory_limit_bytes == INT64_MAX) {
    snprintf(limit, sizeof(limit), "off");
  } else {
    snprintf(limit, sizeof(limit), "%" PRId64, s0.memory_limit_bytes);
  }
  Emit("start runtime=pacegc pid=%ld cpus=%ld gogc=%s memory_limit=%s", (long)getpid(), cpus, gogc, limit);

  if (g_ballast_bytes > 0) {
    g_ballast = pgc_malloc_atomic(g_ballast_bytes); /* never touched: its pages stay unfaulted */
    if (g_ballast == NULL) {
      fprintf(stderr, "pacegc-oomsim-worker: the ballast of %" PRIu64 " bytes could not be allocated\n",
              g_ballast_bytes);
      return 3;
    }
  }
  if (g_tuner_pct != 0) ArmTuner();

  pthread_t sampler;
  int rc = pthread_create(&sampler, NULL, SamplerMain, NULL);
  if (rc != 0) {
    fprintf(stderr, "pacegc-oomsim-worker: cannot start the sampler thread: %s\n", strerror(rc));
    return 3;
  }

  for (size_t i = 0; i < g_num_phases; ++i) {
    const Phase *ph = &g_phases[i];
    Emit("phase n=%zu live=%" PRIu64 " churn=%" PRIu64 " t_ms=%" PRIu64, i + 1, ph->live_bytes, ph->churn_bytes,
         NowMs());
    GrowOrShrink(ph->live_bytes);
    double churn_start = NowS();
    uint64_t gc_cpu_start_ns = ReadStats().gc_cpu_ns;
    Churn(ph->churn_bytes);
    double churn_s = NowS() - churn_start;
    pgc_stats end = ReadStats();
    uint64_t gc_cpu_ns = end.gc_cpu_ns - gc_cpu_start_ns;
    /* gc_cpu: the GC CPU fraction of the churn, Go's definition: pgc_stats.gc_cpu_ns (pause x CPU capacity) over
     * churn wall x CPU capacity (the CPUs the program may use: under a CPU quota, the quota, not the machine's). */
    double capacity = end.cpu_capacity > 0 ? end.cpu_capacity : (double)cpus;
    Emit("phasedone n=%zu t_ms=%" PRIu64 " churn_s=%.3f gc_cpu=%.4f", i + 1, NowMs(), churn_s,
         churn_s > 0 ? (double)gc_cpu_ns / 1e9 / (churn_s * capacity) : 0.0);
  }
  double wall_s = NowS();

  g_stop_sampler = 1;
  pthread_join(sampler, NULL);
  pgc_stats s = ReadStats();
  Observe(&s);
  EmitSample(&s);
  qsort(g_pauses, g_pauses_len, sizeof(*g_pauses), CompareU64);
  /* The longest cycle's pauses, as the percentiles count them (and Go's worker its max): pause_max_ns is the longest
   * single pause, shorter than a concurrent cycle's two pauses summed. */
  uint64_t pause_max_ns = s.pause_max_ns;
  if (g_pauses_len > 0 && g_pauses[g_pauses_len - 1] > pause_max_ns) pause_max_ns = g_pauses[g_pauses_len - 1];
  Emit("result wall_s=%.3f gc_cycles=%" PRIu64 " gc_cpu_fraction=%.4f pause_p50_ns=%" PRIu64 " pause_p99_ns=%" PRIu64
       " pause_max_ns=%" PRIu64 " churn_bytes=%" PRIu64 " limiter_on_ns=%" PRIu64 " peak_total=%" PRIu64
       " pauses_lost=%" PRIu64 " tuner_updates=%lu",
       wall_s, s.num_gc, s.gc_cpu_fraction, Percentile(0.50), Percentile(0.99), pause_max_ns, g_churn_done_bytes,
       s.limiter_enabled_ns, g_peak_total_bytes, g_pauses_lost, g_tuner_updates);
  return 0;
}
