// base/os.h — the only interface to the operating system: address-space reservation, commit and release of heap
// memory, clocks, thread ids, futexes and thread signals. Everything platform-specific lives in os.cc.
//
// Heap memory goes through three states:
//   reserved  mapped PROT_NONE: address space only, costs no memory, touching it faults.
//   committed mprotect'ed read-write: counts against overcommit; pages become resident when touched.
//   released  madvise(MADV_DONTNEED) on committed pages: still read-write, not resident, read back as zero.
//             (MADV_FREE is not used: it lowers RSS only under pressure, so a cgroup cap would still see it.)
// The portable layer (heap.cc) counts every byte in each state; this file only performs the calls.
//
// Failure injection for tests: FailNextMaps(n) makes the next n Reserve/Commit calls fail with ENOMEM.
#ifndef PACEGC_BASE_OS_H_
#define PACEGC_BASE_OS_H_

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace pacegc::internal::os {

// Reserves `bytes` of address space aligned to `alignment` (a power of two, >= the OS page size). nullptr when
// the OS refuses (or a failure was injected).
void *Reserve(size_t bytes, size_t alignment);
// Returns reserved address space to the OS.
void Unreserve(void *p, size_t bytes);
// Makes [p, p+bytes) of a reservation read-write. false when the OS refuses (or a failure was injected).
bool Commit(void *p, size_t bytes);
// Drops the physical pages of committed memory; they stay mapped read-write and read back as zero. false if the OS
// refused (or a failure was injected with FailNextReleases): the pages are still resident and must stay counted so.
bool Release(void *p, size_t bytes);

// The metadata region (base/meta): `bytes` of address space reserved PROT_NONE, made read-write in steps with
// CommitRegion, and pages dropped with DropPages. Unlike Reserve/Commit/Release these are never failed by the test
// hooks (FailNextMaps/FailNextReleases aim at the heap). nullptr / false when the OS refuses.
void *ReserveRegion(size_t bytes);
bool CommitRegion(void *p, size_t bytes);
void DropPages(void *p, size_t bytes);

// Anonymous zeroed read-write mapping for sparse metadata tables (the page map's top level). nullptr on failure.
void *MapSparse(size_t bytes);

// Whether every byte of [lo, hi) lies in a readable mapping of this process, from /proc/self/maps (read with
// open/read into a stack buffer: no allocation, no stdio). 1 yes, 0 no, -1 unknown (/proc unavailable).
// Costs one pass over the maps file: for validating arguments (pgc_add_roots), not for hot paths.
int RangeReadable(uintptr_t lo, uintptr_t hi);

// One line of /proc/self/maps.
struct Mapping {
  uintptr_t lo, hi;
  bool readable, writable, shared;
  const char *path;  // NUL-terminated, "" for an anonymous mapping; valid during the callback only
};
// Opens /proc/self/<name> read-only (close-on-exec): the descriptor or -1 (errno set). A descriptor of /proc/self
// names the process that opened it: a fork child must open its own.
int OpenProcSelf(const char *name);
// This process's /proc/self/pagemap, opened at the first call and kept (opened again in a fork child, whose
// inherited descriptor would describe its parent); -1 when it cannot be opened (tried again at the next call), which
// ForEachPopulatedRun takes as "everything populated". Not thread-safe: its callers (gc/roots.cc, gc/untouched.cc)
// hold the heap lock.
int SelfPagemap();
// Calls visit(mapping, arg) for every mapping of this process, in address order, reading maps_fd (from
// OpenProcSelf("maps")) from its start with pread into a stack buffer (no allocation, no stdio: callable with the
// world stopped). false (errno set) when it cannot be read; visit may then have seen part of it.
bool ForEachMapping(int maps_fd, void (*visit)(const Mapping &mapping, void *arg), void *arg);
// Calls visit(lo, hi, arg) for each maximal run of pages of [lo, hi) (page-aligned) that hold data: present in
// memory or swapped out, read from pagemap_fd (OpenProcSelf("pagemap")). Pages never touched (or dropped with
// MADV_DONTNEED) read as zero and are left out. A range pagemap cannot describe is visited whole.
void ForEachPopulatedRun(int pagemap_fd, uintptr_t lo, uintptr_t hi,
                         void (*visit)(uintptr_t lo, uintptr_t hi, void *arg), void *arg);

void FailNextMaps(int count);
void FailNextReleases(int count);
uint64_t MapFailures();

size_t OsPageSize();
int NumCpus();

uint64_t MonotonicNs();
uint64_t ThreadCpuNs();
uint64_t ProcessCpuNs();  // CPU time of all threads of the process

pid_t CurrentTid();
// Sends `sig` to thread `tid` of this process. Returns 0 or an errno value (ESRCH: the thread is gone).
int SignalThread(pid_t tid, int sig);
// 0 if thread `tid` of this process still exists, ESRCH if not.
int ThreadAlive(pid_t tid);

// Futex wait/wake on a 32-bit atomic. Async-signal-safe (raw system calls). Wait returns when *word != expected,
// on a wake-up, on a signal or after timeout_ns (0 = no timeout); callers re-check their condition.
void FutexWait(std::atomic<uint32_t> *word, uint32_t expected, uint64_t timeout_ns);
void FutexWakeAll(std::atomic<uint32_t> *word);
void FutexWakeOne(std::atomic<uint32_t> *word);

// Bounds [lo, hi) of the calling thread's stack (pthread_getattr_np). false if unknown.
bool CurrentThreadStack(uintptr_t *lo, uintptr_t *hi);

}  // namespace pacegc::internal::os

#endif  // PACEGC_BASE_OS_H_
