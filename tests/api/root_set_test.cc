// tests/api/root_set_test.cc — which data segments the collector scans (gc/roots.h): every writable PT_LOAD segment
// of every loaded object, less the pages the loader made read-only after relocation (PT_GNU_RELRO), less the
// sanitizer runtimes and the private mimalloc that serves the manual API. A process of its own: nothing else
// registers root ranges or uncollectable blocks, so the globals the last collection scanned are exactly these.
// Public API only.
#include <pacegc/pacegc.h>

#include <catch2/catch.hpp>

#include <link.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

namespace {

struct Segments {
  uint64_t scanned = 0;     // bytes the collector should scan
  uint64_t relro = 0;       // writable bytes left out as read-only after relocation
  uint64_t mimalloc = 0;    // writable bytes of the private mimalloc
  bool saw_mimalloc = false;
};

bool Contains(const char *path, const char *part) { return path != nullptr && strstr(path, part) != nullptr; }

int Visit(struct dl_phdr_info *info, size_t, void *arg) {
  auto *out = static_cast<Segments *>(arg);
  for (const char *runtime : {"libtsan.so", "libasan.so", "libubsan.so", "liblsan.so"}) {
    if (Contains(info->dlpi_name, runtime)) return 0;
  }
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t relro_lo = 0, relro_hi = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr) &ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_GNU_RELRO) continue;
    relro_lo = (info->dlpi_addr + ph.p_vaddr) & ~(page - 1);
    relro_hi = (info->dlpi_addr + ph.p_vaddr + ph.p_memsz) & ~(page - 1);
  }
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr) &ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) == 0) continue;
    uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    uintptr_t hi = lo + ph.p_memsz;
    if (Contains(info->dlpi_name, "libmimalloc")) {
      out->saw_mimalloc = true;
      out->mimalloc += hi - lo;
      continue;
    }
    // [lo, hi) less [relro_lo, relro_hi), each piece from its first aligned word.
    auto add = [&](uintptr_t a, uintptr_t b) {
      a = (a + sizeof(void *) - 1) & ~(sizeof(void *) - 1);
      if (a < b) out->scanned += b - a;
    };
    if (relro_hi <= lo || relro_lo >= hi) {
      add(lo, hi);
      continue;
    }
    out->relro += (relro_hi < hi ? relro_hi : hi) - (relro_lo > lo ? relro_lo : lo);
    if (lo < relro_lo) add(lo, relro_lo);
    if (relro_hi < hi) add(relro_hi, hi);
  }
  return 0;
}

}  // namespace

TEST_CASE("the data roots are the writable segments less RELRO pages and the private mimalloc", "[roots]") {
  // The manual API loads mimalloc (it is loaded at start-up in any case; this makes sure it is in use).
  void *manual = pgc_manual_malloc(64);
  REQUIRE(manual != nullptr);
  pgc_manual_free(manual);
  pgc_collect();

  Segments seg;
  dl_iterate_phdr(Visit, &seg);
  pgc_stats stats{};
  stats.size = sizeof(stats);
  pgc_read_stats(&stats);

  CHECK(seg.saw_mimalloc);
  CHECK(seg.mimalloc > 0);
  CHECK(seg.relro > 0);  // libstdc++ and libc are linked with -z relro on Debian
  CHECK(stats.last_globals_scan_bytes == seg.scanned);
}
