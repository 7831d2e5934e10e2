/*
 * hello.c — pacegc's C API in one page.
 *
 * Builds a linked list of collected items (each with a pointer-free name string), drops every other item, forces
 * a collection, and shows what the collector did through pgc_read_stats. The dropped items carry a finalizer,
 * which runs after each of them became unreachable. Also shows the one rule to remember: memory from the system
 * malloc is not scanned, so collected pointers kept there need pgc_add_roots.
 *
 * Exits 1 if any live item was damaged, or if a finalizer ran for an item that was still reachable.
 */
#include <pacegc/pacegc.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kItems = 10000, kNameBytes = 32, kTableSlots = 64 };

typedef struct Item {
  struct Item *next; /* scanned: the Item came from pgc_malloc */
  int id;
  char *name;        /* pgc_malloc_atomic: characters only, never scanned */
} Item;

/* Finalizers run on the thread that ran the collection (here always main), outside the pause. */
static int g_finalized;
/* Finalizers that saw an object they were not registered for, or a damaged one: must stay 0. */
static int g_finalized_bad;

static void OnItemUnreachable(void *obj, void *data) {
  const Item *item = obj;
  (void)data;
  /* The object is still intact here, and so is everything it points to (its name). */
  if (item->id % 2 == 0 || strncmp(item->name, "item-", 5) != 0) g_finalized_bad++;
  g_finalized++;
}

static void PrintStats(const char *when) {
  pgc_stats st;
  memset(&st, 0, sizeof st);
  st.size = sizeof st; /* tells the library which fields this program knows */
  pgc_read_stats(&st);
  printf("%-22s gc=%" PRIu64 " live=%.2f MiB goal=%.2f MiB allocated=%.2f MiB in %" PRIu64
         " objects, pauses %.3f ms total (max %.3f ms), finalizers run %" PRIu64 "\n",
         when, st.num_gc, st.heap_live_bytes / 1048576.0, st.heap_goal_bytes / 1048576.0,
         st.heap_alloc_bytes / 1048576.0, st.heap_objects, st.pause_total_ns / 1e6, st.pause_max_ns / 1e6,
         st.finalizers_run);
}

static Item *NewItem(int id) {
  Item *item = pgc_malloc(sizeof *item); /* zeroed, scanned */
  char *name = pgc_malloc_atomic(kNameBytes); /* not zeroed, not scanned */
  if (item == NULL || name == NULL) {
    fprintf(stderr, "hello: out of memory\n");
    exit(1);
  }
  snprintf(name, kNameBytes, "item-%d", id);
  item->id = id;
  item->name = name;
  return item;
}

int main(void) {
  /* The list head is a local of main: the main thread's stack is scanned, so the whole list is reachable. */
  Item *head = NULL;
  Item **tail = &head;
  for (int id = 0; id < kItems; id++) {
    Item *item = NewItem(id);
    if (id % 2 == 1) pgc_register_finalizer(item, OnItemUnreachable, NULL);
    *tail = item;
    tail = &item->next;
  }
  PrintStats("after building:");

  /* Drop the odd items. Clearing a dropped item's own next pointer is not required; it just keeps a stale
   * reference to a dropped item (a conservative scanner may see one) from retaining anything else. */
  for (Item *item = head; item != NULL && item->next != NULL; item = item->next) {
    Item *dropped = item->next;
    item->next = dropped->next;
    dropped->next = NULL;
  }

  /* A table in system-malloc memory is invisible to the collector: register it as a root range. */
  Item **table = calloc(kTableSlots, sizeof *table);
  if (table == NULL) return 1;
  pgc_add_roots(table, table + kTableSlots);
  for (int i = 0; i < kTableSlots; i++) table[i] = NewItem(kItems + 2 * i); /* only the table points at these */

  pgc_collect(); /* finalizers of the items found unreachable have run when this returns */
  PrintStats("after pgc_collect:");

  int damaged = 0, count = 0;
  char want[kNameBytes];
  for (const Item *item = head; item != NULL; item = item->next, count++) {
    snprintf(want, sizeof want, "item-%d", 2 * count);
    if (item->id != 2 * count || strcmp(item->name, want) != 0) damaged++;
  }
  for (int i = 0; i < kTableSlots; i++) {
    snprintf(want, sizeof want, "item-%d", kItems + 2 * i);
    if (strcmp(table[i]->name, want) != 0) damaged++;
  }
  pgc_remove_roots(table, table + kTableSlots);
  free(table);

  printf("kept %d of %d items; finalized %d of the %d dropped (a conservative collector may keep a few a while)\n",
         count, kItems, g_finalized, kItems / 2);
  if (damaged != 0 || count != kItems / 2 || g_finalized_bad != 0) {
    fprintf(stderr, "hello: FAILED: %d damaged items, %d live items (expected %d), %d finalizers saw a wrong object\n",
            damaged, count, kItems / 2, g_finalized_bad);
    return 1;
  }
  printf("hello: OK\n");
  return 0;
}
