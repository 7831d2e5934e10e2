// base/meta.h — the allocator for collector metadata (spans, arenas' page tables, mark stack, finalizer and root
// tables). Metadata never lives in the collected heap: it is never scanned, so a pointer kept only in metadata does
// not keep an object alive (the finalizer table relies on this).
//
// Metadata comes from one reserved region pacegc owns (power-of-two classes, one lock; meta.cc says why and how),
// so that a scan of every writable mapping of the process (the drop-in allocator's roots) can leave it out. Every
// byte is counted (metadata_bytes, part of what the memory limit counts), by block size.
//
// Safe to call while the world is stopped: the region's lock is held inside a section in which a registered thread
// defers its suspension (SetLockHooks), so no suspended thread holds it. glibc malloc (and so operator new) is NOT
// used anywhere in gc/.
//
// The manual API (pgc_manual_malloc and friends) is served by mimalloc, loaded privately with dlopen(RTLD_LOCAL):
// linking libmimalloc.so would make its malloc replace the application's malloc for the whole process, which a
// library must not do silently.
#ifndef PACEGC_BASE_META_H_
#define PACEGC_BASE_META_H_

#include <cstddef>
#include <cstdint>
#include <new>

namespace pacegc::internal::meta {

// Reserves the metadata region and loads mimalloc (for the manual API); on failure prints why and aborts (the
// library cannot run without them). Idempotent.
void Init();

// The metadata region: every block of Malloc/Calloc lies in [RegionLo(), RegionHi()) (0, 0 before Init). The
// drop-in allocator's scan of the process's mappings leaves it out (gc/roots.h).
uintptr_t RegionLo();
uintptr_t RegionHi();

// The load address (link_map::l_addr, which dl_iterate_phdr reports as dlpi_addr) of the mimalloc loaded for the
// manual API, or 0 before Init. Its writable segments hold mimalloc's own state (heaps, page queues, options,
// statistics: ~290 KiB of data and bss), which points only into mimalloc's memory, so the root scan leaves them out
// (gc/roots.h): with a small heap, scanning them was half of every collection's marking.
uintptr_t PrivateAllocatorBase();

// nullptr when the OS refuses memory. Memory is zeroed for Calloc only.
void *Malloc(size_t bytes);
void *Calloc(size_t count, size_t bytes);
void Free(void *p);

// The stop-the-world handshake, from gc/ (base/ cannot see threads): `enter` starts a section in which the calling
// thread defers a suspension and returns true, or returns false when none is needed (an unregistered thread, one
// already in a section, the heap lock's holder: the collector itself); `leave` ends the section, and the thread
// parks there if a stop arrived meanwhile. The region's lock is taken and released inside the section. Installed
// once, at initialisation, before any thread is registered.
void SetLockHooks(bool (*enter)(), void (*leave)());

// Failure injection for tests (testing::FailNextMetaAllocs): the next `count` Malloc/Calloc calls return nullptr
// as if the OS had refused memory. Manual allocations are not affected. 0 cancels.
void FailNextAllocs(int count);

// Bytes of metadata currently allocated (usable sizes).
uint64_t AllocatedBytes();

// Manual (non-collected) allocations made by the program through pgc_manual_malloc and friends: the same
// allocator, counted separately (manual_bytes), and part of what the memory limit counts.
void *ManualMalloc(size_t bytes);
void *ManualCalloc(size_t count, size_t bytes);
void *ManualRealloc(void *p, size_t bytes);
void ManualFree(void *p);
size_t ManualUsableSize(const void *p);
// manual_bytes: the above; under the drop-in allocator (libpacegc-malloc, malloc/), all that mimalloc has committed
// instead (the manual API's blocks, the program's malloc'd blocks, and mimalloc's free pages not yet returned).
uint64_t ManualBytes();
// The drop-in allocator serves malloc from this same mimalloc and installs, once at load, the function that reads
// mimalloc's committed bytes (it keeps the malloc path free of accounting), and the one that makes mimalloc
// return its free pages to the OS (the scavenger calls it: gc/pacing.cc). nullptr: not under the drop-in.
void SetManualMemory(uint64_t (*committed_bytes)(), void (*release)());
// Asks the drop-in's allocator to return its free pages to the OS. False (and nothing done) without the drop-in.
bool ReleaseManualMemory();

// A std-compatible allocator over meta::Malloc for internal containers. Throws std::bad_alloc on failure.
template <typename T>
struct StlAllocator {
  using value_type = T;
  StlAllocator() noexcept = default;
  template <typename U>
  StlAllocator(const StlAllocator<U> &) noexcept {}
  T *allocate(size_t n) {
    void *p = Malloc(n * sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T *>(p);
  }
  void deallocate(T *p, size_t) noexcept { Free(p); }
  template <typename U>
  bool operator==(const StlAllocator<U> &) const noexcept {
    return true;
  }
  template <typename U>
  bool operator!=(const StlAllocator<U> &) const noexcept {
    return false;
  }
};

}  // namespace pacegc::internal::meta

#endif  // PACEGC_BASE_META_H_
