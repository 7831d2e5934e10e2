// gc/roots.cc — see roots.h.
#include "gc/roots.h"

#include <elf.h>
#include <link.h>
#include <string.h>

#include <vector>

#include "gc/alloc.h"
#include "gc/check.h"
#include "gc/meta.h"

namespace pacegc::internal::roots {
namespace {

using RangeVector = std::vector<RootRange, meta::StlAllocator<RootRange>>;
RangeVector *g_segments = nullptr;    // heap lock
RangeVector *g_registered = nullptr;  // heap lock

RangeVector &Segments() {
  if (g_segments == nullptr) g_segments = new (meta::Malloc(sizeof(RangeVector))) RangeVector();
  return *g_segments;
}
RangeVector &RegisteredRanges() {
  if (g_registered == nullptr) g_registered = new (meta::Malloc(sizeof(RangeVector))) RangeVector();
  return *g_registered;
}

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

int CollectSegment(struct dl_phdr_info *info, size_t, void *arg) {
  auto *out = static_cast<RangeVector *>(arg);
  if (IsSanitizerRuntime(info->dlpi_name)) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr) &ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) == 0) continue;
    uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    uintptr_t hi = lo + ph.p_memsz;
    lo = (lo + sizeof(void *) - 1) & ~(sizeof(void *) - 1);
    if (lo < hi) out->push_back(RootRange{lo, hi, RootKind::kGlobals});
  }
  return 0;
}

}  // namespace

void Add(uintptr_t lo, uintptr_t hi) {
  if (lo >= hi) {
    Misuse("pgc_add_roots(%p, %p): empty or inverted range", reinterpret_cast<void *>(lo),
           reinterpret_cast<void *>(hi));
    return;
  }
  RegisteredRanges().push_back(RootRange{lo, hi, RootKind::kGlobals});
}

void Remove(uintptr_t lo, uintptr_t hi) {
  RangeVector &v = RegisteredRanges();
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i].lo == lo && v[i].hi == hi) {
      v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
      return;
    }
  }
  Misuse("pgc_remove_roots(%p, %p): no range was added with these bounds", reinterpret_cast<void *>(lo),
         reinterpret_cast<void *>(hi));
}

void SnapshotSegments() {
  RangeVector &v = Segments();
  v.clear();
  dl_iterate_phdr(CollectSegment, &v);
}

size_t NumSegments() { return g_segments == nullptr ? 0 : g_segments->size(); }
const RootRange &Segment(size_t i) { return (*g_segments)[i]; }
size_t NumRegistered() { return g_registered == nullptr ? 0 : g_registered->size(); }
const RootRange &Registered(size_t i) { return (*g_registered)[i]; }

}  // namespace pacegc::internal::roots
