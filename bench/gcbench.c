/*
 * GCBench — the classic allocation benchmark by John Ellis and Pete Kovac (Post Communications), as adapted to C
 * by Hans Boehm (GCBench.c distributed with bdwgc). One source, four executables; the allocator is chosen at
 * compile time by exactly one of these macros:
 *
 *   GCBENCH_PACEGC    pgc_malloc for nodes, pgc_malloc_atomic for the array; nothing is freed (the collector does it)
 *   GCBENCH_BDWGC     GC_MALLOC for nodes, GC_MALLOC_ATOMIC for the array, GC_INIT; nothing is freed
 *   GCBENCH_MIMALLOC  mi_calloc/mi_malloc, and every dropped tree freed with mi_free (the manual-free floor)
 *   GCBENCH_GLIBC     calloc/malloc + free of every dropped tree (the system allocator; links no other allocator)
 *
 * The algorithm is the original's, unchanged:
 *   1. stretch the heap with a bottom-up tree of depth kStretchTreeDepth (18), then drop it;
 *   2. build a long-lived tree of depth kLongLivedTreeDepth (16) top-down and a long-lived pointer-free array of
 *      kArraySize (500000) doubles, half filled;
 *   3. for depth d = kMinTreeDepth (4), 6, ..., kMaxTreeDepth (16): build NumIters(d) temporary trees top-down
 *      (Populate, assigning children into an existing node), then NumIters(d) bottom-up (MakeTree), dropping each.
 * Node is {left, right, i, j} (24 bytes on LP64). As in the original, top-down nodes come from calloc (zeroed) and
 * bottom-up interior nodes from malloc with only left/right initialized; the GC variants' allocations are zeroed.
 *
 * Differences from the original, none of which changes the work done:
 *   - time is read from CLOCK_MONOTONIC (the original used gettimeofday), and reported with 0.1 ms resolution;
 *   - argv[1] optionally repeats the whole benchmark (steps 1-3) N times; the reported wall time is the total.
 *     The manual variants free the long-lived tree and array at the end of each repetition (the original simply
 *     exited); for the GC variants they become garbage when the next repetition replaces them;
 *   - the last line is machine readable:
 *       RESULT allocator=<name> wall_ms=<total> maxrss_kib=<peak RSS> gcs=<collections> gc_pause_ms=<total> repeats=<N>
 *     maxrss_kib is getrusage(RUSAGE_SELF).ru_maxrss (KiB on Linux) for the whole process lifetime; gcs is
 *     pgc_stats.num_gc or GC_get_gc_no(); gc_pause_ms is pgc_stats.pause_total_ns or GC_get_full_gc_total_time()
 *     (whole milliseconds in bdwgc); both are 0 for the manual variants.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#if (defined(GCBENCH_PACEGC) + defined(GCBENCH_BDWGC) + defined(GCBENCH_MIMALLOC) + defined(GCBENCH_GLIBC)) != 1
#error "define exactly one of GCBENCH_PACEGC, GCBENCH_BDWGC, GCBENCH_MIMALLOC, GCBENCH_GLIBC"
#endif

#if defined(GCBENCH_PACEGC)
#include <pacegc/pacegc.h>
#define ALLOCATOR_NAME "pacegc"
#define GC_VARIANT 1
#define NEW_NODE() ((Node)pgc_malloc(sizeof(Node0)))
#define NEW_ZEROED_NODE() ((Node)pgc_malloc(sizeof(Node0)))
#define NEW_ARRAY(bytes) ((double *)pgc_malloc_atomic(bytes))
#elif defined(GCBENCH_BDWGC)
#include <gc/gc.h>
#define ALLOCATOR_NAME "bdwgc"
#define GC_VARIANT 1
#define NEW_NODE() ((Node)GC_MALLOC(sizeof(Node0)))
#define NEW_ZEROED_NODE() ((Node)GC_MALLOC(sizeof(Node0)))
#define NEW_ARRAY(bytes) ((double *)GC_MALLOC_ATOMIC(bytes))
#elif defined(GCBENCH_MIMALLOC)
#include <mimalloc.h>
#define ALLOCATOR_NAME "mimalloc"
#define GC_VARIANT 0
#define NEW_NODE() ((Node)mi_malloc(sizeof(Node0)))
#define NEW_ZEROED_NODE() ((Node)mi_calloc(1, sizeof(Node0)))
#define NEW_ARRAY(bytes) ((double *)mi_malloc(bytes))
#define FREE(p) mi_free(p)
#else /* GCBENCH_GLIBC */
#define ALLOCATOR_NAME "glibc"
#define GC_VARIANT 0
#define NEW_NODE() ((Node)malloc(sizeof(Node0)))
#define NEW_ZEROED_NODE() ((Node)calloc(1, sizeof(Node0)))
#define NEW_ARRAY(bytes) ((double *)malloc(bytes))
#define FREE(p) free(p)
#endif

static const int kStretchTreeDepth = 18;   /* about 16 MB */
static const int kLongLivedTreeDepth = 16; /* about 4 MB */
static const int kArraySize = 500000;      /* about 4 MB */
static const int kMinTreeDepth = 4;
static const int kMaxTreeDepth = 16;

typedef struct Node0_struct {
  struct Node0_struct *left;
  struct Node0_struct *right;
  int i, j;
} Node0;

typedef Node0 *Node;

static double NowMs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *CheckedAlloc(void *p) {
  if (p == NULL) {
    fprintf(stderr, "gcbench (%s): out of memory\n", ALLOCATOR_NAME);
    exit(2);
  }
  return p;
}

static void init_Node(Node me, Node l, Node r) {
  me->left = l;
  me->right = r;
}

#if !GC_VARIANT
static void destroy_Node(Node me) {
  if (me->left) destroy_Node(me->left);
  if (me->right) destroy_Node(me->right);
  FREE(me);
}
#endif

/* Nodes used by a tree of a given size. */
static int TreeSize(int i) { return ((1 << (i + 1)) - 1); }

/* Number of iterations to use for a given tree depth. */
static int NumIters(int i) { return 2 * TreeSize(kStretchTreeDepth) / TreeSize(i); }

/* Build tree top down, assigning to older objects. */
static void Populate(int iDepth, Node thisNode) {
  if (iDepth <= 0) {
    return;
  } else {
    iDepth--;
    thisNode->left = CheckedAlloc(NEW_ZEROED_NODE());
    thisNode->right = CheckedAlloc(NEW_ZEROED_NODE());
    Populate(iDepth, thisNode->left);
    Populate(iDepth, thisNode->right);
  }
}

/* Build tree bottom-up. */
static Node MakeTree(int iDepth) {
  Node result;
  if (iDepth <= 0) {
    result = CheckedAlloc(NEW_ZEROED_NODE());
    /* result is implicitly initialized in both cases. */
    return result;
  } else {
    Node left = MakeTree(iDepth - 1);
    Node right = MakeTree(iDepth - 1);
    result = CheckedAlloc(NEW_NODE());
    init_Node(result, left, right);
    return result;
  }
}

static void TimeConstruction(int depth) {
  double tStart, tFinish;
  int iNumIters = NumIters(depth);
  Node tempTree;
  int i;

  printf("Creating %d trees of depth %d\n", iNumIters, depth);

  tStart = NowMs();
  for (i = 0; i < iNumIters; ++i) {
    tempTree = CheckedAlloc(NEW_ZEROED_NODE());
    Populate(depth, tempTree);
#if !GC_VARIANT
    destroy_Node(tempTree);
#endif
    tempTree = 0;
  }
  tFinish = NowMs();
  printf("\tTop down construction took %.1f msec\n", tFinish - tStart);

  tStart = NowMs();
  for (i = 0; i < iNumIters; ++i) {
    tempTree = MakeTree(depth);
#if !GC_VARIANT
    destroy_Node(tempTree);
#endif
    tempTree = 0;
  }
  tFinish = NowMs();
  printf("\tBottom up construction took %.1f msec\n", tFinish - tStart);
  (void)tempTree;
}

/* One complete run of the original main(). Returns 0 on success. */
static int RunOnce(void) {
  Node longLivedTree;
  Node tempTree;
  double tStart, tFinish;
  int i, d, failed = 0;
  double *array;

  printf("Garbage Collector Test\n");
  printf(" Live storage will peak at %zu bytes.\n\n",
         2 * sizeof(Node0) * (size_t)TreeSize(kLongLivedTreeDepth) + sizeof(double) * (size_t)kArraySize);
  printf(" Stretching memory with a binary tree of depth %d\n", kStretchTreeDepth);

  tStart = NowMs();

  /* Stretch the memory space quickly. */
  tempTree = MakeTree(kStretchTreeDepth);
#if !GC_VARIANT
  destroy_Node(tempTree);
#endif
  tempTree = 0;
  (void)tempTree;

  /* Create a long lived object. */
  printf(" Creating a long-lived binary tree of depth %d\n", kLongLivedTreeDepth);
  longLivedTree = CheckedAlloc(NEW_ZEROED_NODE());
  Populate(kLongLivedTreeDepth, longLivedTree);

  /* Create long-lived array, filling half of it. */
  printf(" Creating a long-lived array of %d doubles\n", kArraySize);
  array = CheckedAlloc(NEW_ARRAY(sizeof(double) * (size_t)kArraySize));
  for (i = 0; i < kArraySize / 2; ++i) {
    array[i] = 1.0 / i;
  }

  for (d = kMinTreeDepth; d <= kMaxTreeDepth; d += 2) {
    TimeConstruction(d);
  }

  /* Fake reference to longLivedTree and array to keep them from being optimized away (and, for the collectors,
   * to check that neither was reclaimed while live). */
  if (longLivedTree == 0 || array[1000] != 1.0 / 1000) {
    fprintf(stderr, "Failed\n");
    failed = 1;
  }

  tFinish = NowMs();
  printf("Completed in %.1f msec\n", tFinish - tStart);

#if !GC_VARIANT
  destroy_Node(longLivedTree);
  FREE(array);
#endif
  return failed;
}

int main(int argc, char **argv) {
  int repeats = 1, r, failed = 0;
  double tStart, wall_ms;
  unsigned long long gcs = 0;
  double gc_pause_ms = 0.0;
  struct rusage ru;

  if (argc > 1) {
    char *end;
    long v = strtol(argv[1], &end, 10);
    if (*argv[1] == '\0' || *end != '\0' || v < 1 || v > 1000000) {
      fprintf(stderr, "usage: %s [repeats]   (repeats: a positive integer, got '%s')\n", argv[0], argv[1]);
      return 2;
    }
    repeats = (int)v;
  }

#if defined(GCBENCH_BDWGC)
  GC_INIT();
  GC_start_performance_measurement();
#endif

  tStart = NowMs();
  for (r = 0; r < repeats; ++r) failed |= RunOnce();
  wall_ms = NowMs() - tStart;

#if defined(GCBENCH_PACEGC)
  {
    pgc_stats st;
    st.size = sizeof st;
    pgc_read_stats(&st);
    gcs = st.num_gc;
    gc_pause_ms = (double)st.pause_total_ns / 1e6;
    printf("Completed %llu collections\n", gcs);
    printf("Heap size is %llu\n", (unsigned long long)st.heap_mapped_bytes);
  }
#elif defined(GCBENCH_BDWGC)
  gcs = (unsigned long long)GC_get_gc_no();
  gc_pause_ms = (double)GC_get_full_gc_total_time();
  printf("Completed %llu collections\n", gcs);
  printf("Heap size is %zu\n", GC_get_heap_size());
#endif

  if (getrusage(RUSAGE_SELF, &ru) != 0) {
    perror("getrusage");
    return 2;
  }
  printf("Total wall time %.1f msec (%d repeat%s)\n", wall_ms, repeats, repeats == 1 ? "" : "s");
  printf("RESULT allocator=%s wall_ms=%.1f maxrss_kib=%ld gcs=%llu gc_pause_ms=%.1f repeats=%d\n", ALLOCATOR_NAME,
         wall_ms, ru.ru_maxrss, gcs, gc_pause_ms, repeats);
  return failed ? 1 : 0;
}
