/*
 * consumer.c — a C program built against an installed pacegc (CMake package or pkg-config).
 *
 * Keeps a list reachable from a global, drops a large amount of garbage, forces a collection, and checks that
 * the live data survived intact and that the statistics show a collection that kept the live data and reclaimed
 * the garbage. Prints "consumer_c: OK" and exits 0 only if every check passed.
 */
#include <pacegc/pacegc.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(CONSUMER_EXPECT_VERSION_MAJOR) && \
    (PACEGC_VERSION_MAJOR != CONSUMER_EXPECT_VERSION_MAJOR || PACEGC_VERSION_MINOR != CONSUMER_EXPECT_VERSION_MINOR)
#error "pacegc.h is not the version of the package found: headers from another installation?"
#endif

enum {
  kLiveNodes = 1000,
  kLabelBytes = 32, /* room for "node-" and any uint64_t */
  kGarbageObjects = 100000,
  kGarbageBytes = 64,
};

typedef struct Node {
  struct Node *next;
  uint64_t value;
  char *label; /* pgc_malloc_atomic: text, never scanned; kept alive by this (scanned) field */
} Node;

/* In .bss, which the collector scans: everything reachable from here is live. */
static Node *g_live_list;

static int g_failures;

#define CHECK(cond, ...)                                                  \
  do {                                                                    \
    if (!(cond)) {                                                        \
      fprintf(stderr, "consumer_c: check failed: %s: ", #cond);           \
      fprintf(stderr, __VA_ARGS__);                                       \
      fputc('\n', stderr);                                                \
      g_failures++;                                                       \
    }                                                                     \
  } while (0)

static int BuildLiveList(void) {
  for (uint64_t i = 0; i < kLiveNodes; i++) {
    Node *n = pgc_malloc(sizeof *n);
    char *label = pgc_malloc_atomic(kLabelBytes);
    if (n == NULL || label == NULL) {
      fprintf(stderr, "consumer_c: allocation %llu failed\n", (unsigned long long)i);
      return 0;
    }
    snprintf(label, kLabelBytes, "node-%llu", (unsigned long long)i);
    n->value = i;
    n->label = label;
    n->next = g_live_list;
    g_live_list = n;
  }
  return 1;
}

/* Unreferenced objects, allocated in a frame of their own so no pointer to them outlives the call. */
static __attribute__((noinline)) int MakeGarbage(void) {
  for (int i = 0; i < kGarbageObjects; i++) {
    unsigned char *p = pgc_malloc(kGarbageBytes);
    if (p == NULL) return 0;
    memset(p, 0x5a, kGarbageBytes);
  }
  return 1;
}

static void CheckLiveList(void) {
  uint64_t expected = kLiveNodes;
  size_t count = 0;
  char want[kLabelBytes];
  for (const Node *n = g_live_list; n != NULL; n = n->next) {
    expected--;
    count++;
    snprintf(want, sizeof want, "node-%llu", (unsigned long long)expected);
    if (n->value != expected || strcmp(n->label, want) != 0) {
      CHECK(0, "node %zu holds value %llu label '%.31s', expected %llu '%s'", count,
            (unsigned long long)n->value, n->label, (unsigned long long)expected, want);
      return;
    }
  }
  CHECK(count == kLiveNodes, "live list has %zu nodes", count);
}

int main(void) {
  if (!BuildLiveList() || !MakeGarbage()) return 1;
  pgc_collect();

  pgc_stats st;
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  pgc_read_stats(&st);

  CheckLiveList();
  const uint64_t live_bytes = (uint64_t)kLiveNodes * (sizeof(Node) + kLabelBytes);
  const uint64_t garbage_bytes = (uint64_t)kGarbageObjects * kGarbageBytes;
  CHECK(st.version == PGC_STATS_VERSION, "stats version %u, header says %d", st.version, PGC_STATS_VERSION);
  CHECK(st.num_gc >= 1, "num_gc = %llu", (unsigned long long)st.num_gc);
  CHECK(st.num_forced_gc >= 1, "num_forced_gc = %llu", (unsigned long long)st.num_forced_gc);
  CHECK(st.total_alloc_objects >= 2 * kLiveNodes + kGarbageObjects, "total_alloc_objects = %llu",
        (unsigned long long)st.total_alloc_objects);
  /* The collection marked at least the live list, and not most of the garbage (conservative slack allowed). */
  CHECK(st.heap_live_bytes >= live_bytes, "heap_live_bytes = %llu < %llu bytes reachable",
        (unsigned long long)st.heap_live_bytes, (unsigned long long)live_bytes);
  CHECK(st.heap_live_bytes < live_bytes + garbage_bytes / 2, "heap_live_bytes = %llu: garbage was retained",
        (unsigned long long)st.heap_live_bytes);

  printf("consumer_c: num_gc=%llu heap_live_bytes=%llu heap_goal_bytes=%llu pause_total_ns=%llu\n",
         (unsigned long long)st.num_gc, (unsigned long long)st.heap_live_bytes,
         (unsigned long long)st.heap_goal_bytes, (unsigned long long)st.pause_total_ns);
  if (g_failures != 0) {
    fprintf(stderr, "consumer_c: FAILED (%d checks)\n", g_failures);
    return 1;
  }
  printf("consumer_c: OK\n");
  return 0;
}
