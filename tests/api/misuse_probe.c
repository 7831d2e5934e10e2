/* misuse_probe <case> — one API misuse, then a collection (issue 16, item 2). A program of its own because misuse
 * aborts in verify builds (and with PACEGC_ABORT_ON_MISUSE=1), and because the old failure mode was a crash in
 * the collection after the misuse, not in the call itself. Prints "misuse probe ok" if it got through. */
#include <pacegc/pacegc.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int g_finalized;
static void Finalizer(void *obj, void *data) {
  (void)obj;
  (void)data;
  ++g_finalized;
}

static char g_static[64];

static void *Mapping(size_t bytes, int prot) {
  void *p = mmap(NULL, bytes, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("misuse probe: mmap");
    exit(3);
  }
  return p;
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  const char *c = argv[1];
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  char *obj = pgc_malloc(64);
  char *big = pgc_malloc(100 * 1024);
  int local = 0;
  if (strcmp(c, "finalizer-null") == 0) {
    pgc_register_finalizer(NULL, Finalizer, NULL);
  } else if (strcmp(c, "finalizer-stack") == 0) {
    pgc_register_finalizer(&local, Finalizer, NULL);
  } else if (strcmp(c, "finalizer-static") == 0) {
    pgc_register_finalizer(g_static, Finalizer, NULL);
  } else if (strcmp(c, "finalizer-malloc") == 0) {
    void *m = malloc(64);
    pgc_register_finalizer(m, Finalizer, NULL);
    free(m);
  } else if (strcmp(c, "finalizer-interior") == 0) {
    pgc_register_finalizer(obj + 16, Finalizer, NULL);
  } else if (strcmp(c, "finalizer-interior-large") == 0) {
    pgc_register_finalizer(big + 8192, Finalizer, NULL);
  } else if (strcmp(c, "finalizer-freed") == 0) {
    pgc_free(obj);
    pgc_register_finalizer(obj, Finalizer, NULL);
  } else if (strcmp(c, "finalizer-freed-large") == 0) {
    pgc_free(big);
    pgc_register_finalizer(big, Finalizer, NULL);
  } else if (strcmp(c, "weak-interior") == 0) {
    void *link = NULL;
    fprintf(stderr, "misuse probe rc %d\n", pgc_register_weak_link(&link, obj + 16));
  } else if (strcmp(c, "weak-stack") == 0) {
    void *link = NULL;
    fprintf(stderr, "misuse probe rc %d\n", pgc_register_weak_link(&link, &local));
  } else if (strcmp(c, "weak-misaligned") == 0) {
    static char raw[16];
    fprintf(stderr, "misuse probe rc %d\n", pgc_register_weak_link((void **)(raw + 1), obj));
  } else if (strcmp(c, "free-stack") == 0) {
    pgc_free(&local);
  } else if (strcmp(c, "free-interior") == 0) {
    pgc_free(obj + 8);
  } else if (strcmp(c, "free-twice") == 0) {
    pgc_free(obj);
    pgc_free(obj);
  } else if (strcmp(c, "free-twice-large") == 0) {
    pgc_free(big);
    pgc_free(big);
  } else if (strcmp(c, "free-twice-after-reuse") == 0) {
    /* Without a collection in between (GOGC off), allocate objects of the same size until one lands where the
     * freed one was (a normal build reuses the slot), then free the stale pointer again. */
    pgc_set_gc_percent(-1);
    pgc_free(obj);
    enum { kObjects = 20000 };
    void **keep = pgc_malloc(kObjects * sizeof(void *));
    int reused = 0;
    for (int i = 0; i < kObjects && !reused; ++i) {
      keep[i] = pgc_malloc(64);
      reused = keep[i] == (void *)obj;
    }
    fprintf(stderr, "misuse probe: slot %s\n", reused ? "reused" : "not reused");
    pgc_free(obj); /* a double free: of a slot that is free now, or of the object that now lives there */
    fprintf(stderr, "misuse probe: second free returned\n");
    return 0;
  } else if (strcmp(c, "realloc-stack") == 0) {
    if (pgc_realloc(&local, 128) != NULL) return 4;
  } else if (strcmp(c, "realloc-interior") == 0) {
    if (pgc_realloc(obj + 8, 128) != NULL) return 4;
  } else if (strcmp(c, "realloc-freed") == 0) {
    pgc_free(obj);
    if (pgc_realloc(obj, 128) != NULL) return 4;
  } else if (strcmp(c, "realloc-uncollectable") == 0) {
    void *u = pgc_malloc_uncollectable(32);
    if (pgc_realloc(u, 128) != NULL) return 4;
    pgc_free(u);
  } else if (strcmp(c, "strdup-null") == 0) {
    if (pgc_strdup(NULL) != NULL || pgc_strndup(NULL, 3) != NULL) return 4;
  } else if (strcmp(c, "manual-free-uncollectable") == 0) {
    /* Freed through the manual API it would stay registered and be scanned after mimalloc reused it. */
    void *u = pgc_malloc_uncollectable(32);
    pgc_manual_free(u);
    if (pgc_manual_realloc(u, 64) != NULL) return 4;
    pgc_free(u);
  } else if (strcmp(c, "roots-unmapped") == 0) {
    char *m = Mapping(4 * page, PROT_READ | PROT_WRITE);
    munmap(m, 4 * page);
    pgc_add_roots(m, m + 4 * page);
  } else if (strcmp(c, "roots-prot-none") == 0) {
    char *m = Mapping(4 * page, PROT_NONE);
    pgc_add_roots(m, m + 4 * page);
  } else if (strcmp(c, "roots-partly-mapped") == 0) {
    char *m = Mapping(4 * page, PROT_READ | PROT_WRITE);
    munmap(m + 2 * page, 2 * page);
    pgc_add_roots(m, m + 4 * page);
  } else if (strcmp(c, "roots-ok") == 0) {  /* not misuse: spans two mappings with different protections */
    char *m = Mapping(4 * page, PROT_READ | PROT_WRITE);
    mprotect(m + 2 * page, 2 * page, PROT_READ);
    pgc_add_roots(m, m + 4 * page);
  } else {
    fprintf(stderr, "misuse probe: unknown case %s\n", c);
    return 2;
  }
  for (int i = 0; i < 3; ++i) pgc_collect();
  void *after = pgc_malloc(64);
  fprintf(stderr, "misuse probe ok %d %d\n", after != NULL, g_finalized);
  return after != NULL ? 0 : 1;
}
