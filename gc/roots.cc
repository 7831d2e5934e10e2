// gc/roots.cc — see roots.h.
#include "gc/roots.h"

#include <elf.h>
#include <errno.h>
#include <link.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <new>
#include <unordered_map>
#include <vector>

#include "base/check.h"
#include "base/meta.h"
#include "base/os.h"
#include "gc/alloc.h"
#include "gc/collector.h"

namespace pacegc::internal::roots {
namespace {

using RangeVector = std::vector<RootRange, meta::StlAllocator<RootRange>>;
RangeVector *g_segments = nullptr;    // heap lock
RangeVector *g_registered = nullptr;  // heap lock

// Uncollectable blocks (heap lock): the ranges the marker walks, and each block's index in them.
using IndexMap = std::unordered_map<uintptr_t, size_t, std::hash<uintptr_t>, std::equal_to<uintptr_t>,
                                    meta::StlAllocator<std::pair<const uintptr_t, size_t>>>;
RangeVector *g_uncollectable = nullptr;
IndexMap *g_uncollectable_index = nullptr;
std::atomic<size_t> g_uncollectable_count{0};  // g_uncollectable->size(), readable without the lock

template <typename T>
T &Table(T *&table) {
  if (table == nullptr) {
    void *mem = meta::Malloc(sizeof(T));
    if (mem == nullptr) throw std::bad_alloc();
    table = new (mem) T();
  }
  return *table;
}

RangeVector &RegisteredRanges() { return Table(g_registered); }

// A sanitizer runtime loaded as a shared library (GCC's default): its writable segments hold the sanitizer's own
// tables, tens of MiB of bss (libtsan 48 MiB, libasan and libubsan 6 MiB), and never the only reference to an object
// of ours. Scanning them made each collection of a ThreadSanitizer build take ~300 ms and its GC CPU fraction 60-90%.
bool IsSanitizerRuntime(const char *path) {
  if (path == nullptr) return false;
  const char *base = strrchr(path, '/');
  base = base == nullptr ? path : base + 1;
  for (const char *prefix : {"libtsan.so", "libasan.so", "libubsan.so", "liblsan.so"}) {
    if (strncmp(base, prefix, strlen(prefix)) == 0) return true;
  }
  return false;
}

// [lo, hi) less [a, b).
template <typename F>
void Outside(uintptr_t lo, uintptr_t hi, uintptr_t a, uintptr_t b, F &&next) {
  if (b <= lo || a >= hi) {
    next(lo, hi);
    return;
  }
  if (lo < a) next(lo, a);
  if (b < hi) next(b, hi);
}

// The part of an object's PT_GNU_RELRO segment the loader made read-only once it had relocated the object (before
// any of its constructors ran): whole pages, from the page holding its start to the page boundary below its end
// (the rest of the last page stays writable, as glibc's _dl_protect_relro leaves it). Nothing the program computes
// can be stored there, so it cannot hold the only reference to an object: libstdc++'s vtables and typeinfo, ~50 KiB.
// bdwgc leaves RELRO out of its roots too; the drop-in's mapping scan skips it as a read-only mapping.
void ReadOnlyAfterRelocation(const struct dl_phdr_info *info, uintptr_t *lo, uintptr_t *hi) {
  *lo = *hi = 0;
  const uintptr_t page = os::OsPageSize();
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr) &ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_GNU_RELRO) continue;
    const uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    *lo = start & ~(page - 1);
    *hi = (start + ph.p_memsz) & ~(page - 1);
    if (*lo >= *hi) *lo = *hi = 0;
    return;
  }
}

// A dl_iterate_phdr callback: every writable PT_LOAD segment, less its read-only-after-relocation pages. Out of
// memory stops the iteration (returns 1): no exception may cross the loader's C frames.
int CollectSegment(struct dl_phdr_info *info, size_t, void *arg) {
  auto *out = static_cast<RangeVector *>(arg);
  if (IsSanitizerRuntime(info->dlpi_name)) return 0;
  // The manual API's private mimalloc: its data holds only its own state (base/meta.h, PrivateAllocatorBase).
  if (info->dlpi_addr != 0 && info->dlpi_addr == meta::PrivateAllocatorBase()) return 0;
  uintptr_t relro_lo = 0, relro_hi = 0;
  ReadOnlyAfterRelocation(info, &relro_lo, &relro_hi);
  bool full = false;
  for (int i = 0; i < info->dlpi_phnum && !full; ++i) {
    const ElfW(Phdr) &ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) == 0) continue;
    uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    uintptr_t hi = lo + ph.p_memsz;
    Outside(lo, hi, relro_lo, relro_hi, [&](uintptr_t a, uintptr_t b) {
      a = (a + sizeof(void *) - 1) & ~(sizeof(void *) - 1);
      if (a >= b || full) return;
      try {
        out->push_back(RootRange{a, b, RootKind::kGlobals});
      } catch (const std::bad_alloc &) {
        full = true;
      }
    });
  }
  return full ? 1 : 0;
}

// The drop-in allocator's roots: the process's mappings (roots.h).
std::atomic<bool> g_mappings_on{false};
int g_maps_fd = -1;
pid_t g_mappings_pid = 0;  // the process that opened it

struct MappingScan {
  void (*visit)(const RootRange &, void *);
  void *arg;
  int pagemap_fd;  // os::SelfPagemap(): -1 scans whole mappings
};

void VisitRun(uintptr_t lo, uintptr_t hi, void *arg) {
  auto *scan = static_cast<MappingScan *>(arg);
  scan->visit(RootRange{lo, hi, RootKind::kGlobals}, scan->arg);
}

// [lo, hi) less the heap's arenas (kArenaSize-aligned granules), its populated pages only.
void VisitOutsideArenas(uintptr_t lo, uintptr_t hi, MappingScan *scan) {
  uintptr_t at = lo;
  while (at < hi) {
    const uintptr_t granule_end = (at | (kArenaSize - 1)) + 1;
    const uintptr_t next = granule_end > hi || granule_end == 0 ? hi : granule_end;
    if (g_heap.InArena(at)) {
      at = next;
      continue;
    }
    uintptr_t run_end = next;
    while (run_end < hi && !g_heap.InArena(run_end)) {
      const uintptr_t e = run_end + kArenaSize;
      run_end = e > hi || e < run_end ? hi : e;
    }
    os::ForEachPopulatedRun(scan->pagemap_fd, at, run_end, VisitRun, scan);
    at = run_end;
  }
}

void VisitMapping(const os::Mapping &m, void *arg) {
  if (!m.readable || !m.writable || m.shared) return;
  if (strncmp(m.path, "/dev/", 5) == 0 || strcmp(m.path, "[vvar]") == 0 || strcmp(m.path, "[vsyscall]") == 0 ||
      strcmp(m.path, "[vdso]") == 0) {
    return;
  }
  auto *scan = static_cast<MappingScan *>(arg);
  uintptr_t map_lo = 0, map_hi = 0;
  g_heap.PageMapRange(&map_lo, &map_hi);
  Outside(m.lo, m.hi, meta::RegionLo(), meta::RegionHi(), [&](uintptr_t lo, uintptr_t hi) {
    Outside(lo, hi, map_lo, map_hi, [&](uintptr_t lo2, uintptr_t hi2) { VisitOutsideArenas(lo2, hi2, scan); });
  });
}

bool OpenProcessFiles() {
  const int maps = os::OpenProcSelf("maps");
  if (maps < 0) return false;
  if (g_maps_fd >= 0) close(g_maps_fd);
  g_maps_fd = maps;
  g_mappings_pid = getpid();
  return true;
}
}  // namespace

bool EnableProcessMappings() {
  LockHeap();
  const bool ok = g_mappings_on.load(std::memory_order_relaxed) || OpenProcessFiles();
  if (ok) g_mappings_on.store(true, std::memory_order_release);
  UnlockHeap();
  return ok;
}

bool ProcessMappingsEnabled() { return g_mappings_on.load(std::memory_order_acquire); }

void ForEachProcessMapping(void (*visit)(const RootRange &range, void *arg), void *arg) {
  if (g_mappings_pid != getpid() && !OpenProcessFiles()) {
    Fatal("cannot open /proc/self/maps in this fork child (%s): the drop-in allocator's roots are unknown, and "
          "collecting without them would free memory the program uses", strerror(errno));
  }
  MappingScan scan{visit, arg, os::SelfPagemap()};
  if (!os::ForEachMapping(g_maps_fd, VisitMapping, &scan)) {
    Fatal("cannot read /proc/self/maps (%s): the drop-in allocator's roots are unknown, and collecting without "
          "them would free memory the program uses", strerror(errno));
  }
}

void Add(uintptr_t lo, uintptr_t hi) {
  if (lo >= hi) {
    Misuse("pgc_add_roots(%p, %p): empty or inverted range", reinterpret_cast<void *>(lo),
           reinterpret_cast<void *>(hi));
    return;
  }
  // Every collection reads the whole range with the world stopped: an unmapped or unreadable byte there would
  // crash it, far from this call. So the range is checked now (once, against /proc/self/maps; unknown if /proc is
  // not mounted). Unmapping a range while it is registered remains the caller's bug.
  if (os::RangeReadable(lo, hi) == 0) {
    Misuse("pgc_add_roots(%p, %p): the range is not entirely mapped readable", reinterpret_cast<void *>(lo),
           reinterpret_cast<void *>(hi));
    return;
  }
  try {
    RegisteredRanges().push_back(RootRange{lo, hi, RootKind::kGlobals});
  } catch (const std::bad_alloc &) {
    Message("pgc_add_roots(%p, %p): out of memory for the root table; the range is not added",
            reinterpret_cast<void *>(lo), reinterpret_cast<void *>(hi));
  }
}

void Remove(uintptr_t lo, uintptr_t hi) {
  for (size_t i = 0; g_registered != nullptr && i < g_registered->size(); ++i) {
    if ((*g_registered)[i].lo == lo && (*g_registered)[i].hi == hi) {
      g_registered->erase(g_registered->begin() + static_cast<std::ptrdiff_t>(i));
      return;
    }
  }
  Misuse("pgc_remove_roots(%p, %p): no range was added with these bounds", reinterpret_cast<void *>(lo),
         reinterpret_cast<void *>(hi));
}

bool AddUncollectable(uintptr_t start, size_t bytes) {
  try {
    RangeVector &ranges = Table(g_uncollectable);
    IndexMap &index = Table(g_uncollectable_index);
    ranges.push_back(RootRange{start, start + bytes, RootKind::kGlobals});
    try {
      index.emplace(start, ranges.size() - 1);
    } catch (const std::bad_alloc &) {
      ranges.pop_back();
      throw;
    }
  } catch (const std::bad_alloc &) {
    return false;
  }
  g_uncollectable_count.store(g_uncollectable->size(), std::memory_order_relaxed);
  return true;
}

bool RemoveUncollectable(uintptr_t start) {
  if (g_uncollectable_index == nullptr) return false;
  auto it = g_uncollectable_index->find(start);
  if (it == g_uncollectable_index->end()) return false;
  // Swap with the last range, and fix that one's index.
  size_t i = it->second;
  g_uncollectable_index->erase(it);
  RangeVector &ranges = *g_uncollectable;
  if (i != ranges.size() - 1) {
    ranges[i] = ranges.back();
    (*g_uncollectable_index)[ranges[i].lo] = i;  // an existing key: no allocation
  }
  ranges.pop_back();
  g_uncollectable_count.store(ranges.size(), std::memory_order_relaxed);
  return true;
}

bool IsUncollectable(uintptr_t start) {
  return g_uncollectable_index != nullptr && g_uncollectable_index->count(start) != 0;
}

bool AnyUncollectable() { return g_uncollectable_count.load(std::memory_order_relaxed) != 0; }

bool SnapshotSegments() {
  if (g_segments == nullptr) {
    void *mem = meta::Malloc(sizeof(RangeVector));
    if (mem == nullptr) return false;
    g_segments = new (mem) RangeVector();
  }
  g_segments->clear();
  if (dl_iterate_phdr(CollectSegment, g_segments) == 0) return true;
  g_segments->clear();  // incomplete: never scan a partial root set
  return false;
}

size_t NumSegments() { return g_segments == nullptr ? 0 : g_segments->size(); }
const RootRange &Segment(size_t i) { return (*g_segments)[i]; }
size_t NumRegistered() { return g_registered == nullptr ? 0 : g_registered->size(); }
const RootRange &Registered(size_t i) { return (*g_registered)[i]; }
size_t NumUncollectable() { return g_uncollectable == nullptr ? 0 : g_uncollectable->size(); }
const RootRange &Uncollectable(size_t i) { return (*g_uncollectable)[i]; }

}  // namespace pacegc::internal::roots
