// gc/weak.h — weak links (pgc_register_weak_link): pointers that do not keep their object alive and are cleared
// when it becomes unreachable (bdwgc's disappearing links, Go 1.24's weak.Pointer).
//
// Representation
//   A link is a word in the program's memory (a global, a stack slot, a field of a collected object). While
//   registered it holds the object's address complemented (~addr), so the conservative scan never takes it for a
//   pointer; 0 once cleared. The program reads it only through pgc_weak_get, which complements it back. A table in
//   metadata (never scanned) maps each link to its object, and each object to its links (so pgc_free can clear them
//   before the slot is reused).
//
// Clearing (during a cycle, world stopped, after marking and before finalizer discovery)
//   A link whose object is unmarked is set to 0 and dropped: the object is unreachable, and its finalizer (if any)
//   runs later, with the link already cleared, as Go orders weak pointers before finalizers. A link that lives
//   inside a collected object that is itself unmarked is dropped without being written (its memory is being freed).
//   pgc_free of an object clears its links at once.
//
// Reading (pgc_weak_get) never races with clearing: a registered thread reads the link inside an allocation
// critical section (threads.h), so a collection sees it either before the read (and the object is cleared, NULL is
// returned) or after (the address is in the thread's registers or stack, so the object is marked and survives).
// A thread that is not registered reads under the heap lock, which the collector holds for the whole cycle.
//
// Locking: the tables are guarded by the heap lock (registration, pgc_free's locked path, the cycle).
#ifndef PACEGC_GC_WEAK_H_
#define PACEGC_GC_WEAK_H_

#include <cstddef>
#include <cstdint>

namespace pacegc::internal {

class Marker;

namespace weak {

// Heap lock held. 0, or an errno value: EINVAL (link NULL or misaligned, obj not the start of a live object — the
// reason is printed as misuse), ENOMEM (no metadata for the table). Registering a link again moves it to obj.
int Register(void **link, uintptr_t obj);
// Heap lock held. 0, or ENOENT if link is not registered. The link's word is left as it is.
int Unregister(void **link);
// pgc_weak_get: the object, or nullptr once cleared. Any thread, any lock state but the heap lock held.
void *Get(void *const *link);
// World stopped, after marking: clears the links of unmarked objects. Returns the number cleared.
size_t ClearUnreachable();
// Heap lock held: the object is being freed with pgc_free; its links are cleared.
void ClearLinksTo(uintptr_t obj);
// Heap lock held: an object at [start, start + size) is being freed; links that live inside it are dropped.
void DropLinksInside(uintptr_t start, size_t size);
// True once any link was registered (relaxed): pgc_free then takes the heap lock, to clear links.
bool AnyRegistered();
// Links registered now (heap lock).
size_t Count();

}  // namespace weak
}  // namespace pacegc::internal

#endif  // PACEGC_GC_WEAK_H_
