// gc/weak.cc — see weak.h.
#include "gc/weak.h"

#include <errno.h>

#include <atomic>
#include <functional>
#include <map>
#include <new>
#include <unordered_map>

#include "gc/alloc.h"
#include "gc/collector.h"
#include "gc/mark.h"
#include "gc/meta.h"
#include "gc/threads.h"

namespace pacegc::internal::weak {
namespace {

// link address -> object address. Ordered: pgc_free drops the links that live inside the object it frees.
using LinkMap = std::map<uintptr_t, uintptr_t, std::less<uintptr_t>,
                         meta::StlAllocator<std::pair<const uintptr_t, uintptr_t>>>;
// object address -> its links.
using ObjectMap = std::unordered_multimap<uintptr_t, uintptr_t, std::hash<uintptr_t>, std::equal_to<uintptr_t>,
                                          meta::StlAllocator<std::pair<const uintptr_t, uintptr_t>>>;

LinkMap *g_links = nullptr;      // heap lock
ObjectMap *g_objects = nullptr;  // heap lock
std::atomic<bool> g_any{false};

uintptr_t Hide(uintptr_t obj) { return ~obj; }

void Store(uintptr_t link, uintptr_t value) {
  __atomic_store_n(reinterpret_cast<uintptr_t *>(link), value, __ATOMIC_RELAXED);
}

// Removes link -> obj from the object index.
void EraseFromObjects(uintptr_t link, uintptr_t obj) {
  auto range = g_objects->equal_range(obj);
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second == link) {
      g_objects->erase(it);
      return;
    }
  }
}

bool EnsureTables() {
  if (g_links != nullptr) return true;
  void *a = meta::Malloc(sizeof(LinkMap));
  void *b = meta::Malloc(sizeof(ObjectMap));
  if (a == nullptr || b == nullptr) {
    meta::Free(a);
    meta::Free(b);
    return false;
  }
  g_links = new (a) LinkMap();
  g_objects = new (b) ObjectMap();
  return true;
}

// Is the object containing addr (in the collected heap) marked? Also false when addr is in no live object.
bool Marked(uintptr_t addr) {
  Span *s = nullptr;
  uint32_t index = 0;
  return Marker::ObjectContaining(addr, &s, &index) != 0 && s->IsMarked(index);
}

}  // namespace

int Register(void **link, uintptr_t obj) {
  auto where = reinterpret_cast<uintptr_t>(link);
  if (link == nullptr || (where & (sizeof(void *) - 1)) != 0) {
    Misuse("pgc_register_weak_link(%p, %p): the link must be a non-NULL, pointer-aligned address",
           static_cast<void *>(link), reinterpret_cast<void *>(obj));
    return EINVAL;
  }
  Span *s = nullptr;
  uint32_t index = 0;
  if (const char *why = NotAnObject(obj, &s, &index); why != nullptr) {
    Misuse("pgc_register_weak_link(%p, %p): %s", static_cast<void *>(link), reinterpret_cast<void *>(obj), why);
    return EINVAL;
  }
  if (!EnsureTables()) return ENOMEM;
  try {
    auto it = g_links->find(where);
    if (it != g_links->end()) {
      EraseFromObjects(where, it->second);
      it->second = obj;
    } else {
      it = g_links->emplace(where, obj).first;
    }
    try {
      g_objects->emplace(obj, where);
    } catch (const std::bad_alloc &) {
      g_links->erase(it);
      throw;
    }
  } catch (const std::bad_alloc &) {
    return ENOMEM;
  }
  g_any.store(true, std::memory_order_relaxed);
  Store(where, Hide(obj));
  return 0;
}

int Unregister(void **link) {
  auto where = reinterpret_cast<uintptr_t>(link);
  if (g_links == nullptr) return ENOENT;
  auto it = g_links->find(where);
  if (it == g_links->end()) return ENOENT;
  EraseFromObjects(where, it->second);
  g_links->erase(it);
  return 0;
}

void *Get(void *const *link) {
  ThreadRecord *t = t_current;
  uintptr_t obj = 0;
  if (t != nullptr) {
    threads::EnterCritical(t);
    uintptr_t v = __atomic_load_n(reinterpret_cast<const uintptr_t *>(link), __ATOMIC_RELAXED);
    obj = v == 0 ? 0 : Hide(v);
    // Leaving may park this thread for a collection: obj must be where the collector looks (a register it saves or
    // this frame), not only in its hidden form, so the object it names is marked.
    __asm__ volatile("" : "+r"(obj));
    threads::LeaveCritical(t);
    __asm__ volatile("" : "+r"(obj));
  } else {
    LockHeap();
    uintptr_t v = __atomic_load_n(reinterpret_cast<const uintptr_t *>(link), __ATOMIC_RELAXED);
    obj = v == 0 ? 0 : Hide(v);
    UnlockHeap();
  }
  return reinterpret_cast<void *>(obj);
}

size_t ClearUnreachable() {
  if (g_links == nullptr || g_links->empty()) return 0;
  size_t cleared = 0;
  for (auto it = g_links->begin(); it != g_links->end();) {
    const uintptr_t link = it->first;
    const uintptr_t obj = it->second;
    // A link inside the collected heap lives in an object; if that object dies, so does the link (not written:
    // its memory is being freed).
    bool link_dies = g_heap.InArena(link) && !Marked(link);
    if (link_dies || !Marked(obj)) {
      if (!link_dies) {
        Store(link, 0);
        ++cleared;
      }
      EraseFromObjects(link, obj);
      it = g_links->erase(it);
    } else {
      ++it;
    }
  }
  return cleared;
}

void ClearLinksTo(uintptr_t obj) {
  if (g_links == nullptr) return;
  auto range = g_objects->equal_range(obj);
  for (auto it = range.first; it != range.second; ++it) {
    Store(it->second, 0);
    g_links->erase(it->second);
  }
  g_objects->erase(range.first, range.second);
}

void DropLinksInside(uintptr_t start, size_t size) {
  if (g_links == nullptr) return;
  for (auto it = g_links->lower_bound(start); it != g_links->end() && it->first < start + size;) {
    EraseFromObjects(it->first, it->second);
    it = g_links->erase(it);
  }
}

bool AnyRegistered() { return g_any.load(std::memory_order_relaxed); }

size_t Count() { return g_links == nullptr ? 0 : g_links->size(); }

}  // namespace pacegc::internal::weak
