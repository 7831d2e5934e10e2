// malloc/leak.h — PACEGC_MALLOC=find-leak: a leak detector that can run in production.
//
// Blocks are `manual` mode's (mimalloc's, freed by free), except a sample: about one allocation per
// PACEGC_LEAK_SAMPLE bytes allocated (default 512 KiB; a Poisson process over bytes, as Go's MemProfileRate and
// tcmalloc's heap sampling, so a site is sampled in proportion to the bytes it allocates). A sampled block is a
// collected block (pgc_malloc) with a finalizer, and its allocation site (the call stack, up to kMaxFrames return
// addresses from the first frame outside this library) is interned in a table of sites.
//
// Reachability is the collector's: the roots are the same as in manual mode (every writable mapping, mimalloc's
// blocks among them, gc/roots.h), so a sampled block that nothing points to — no stack, global, thread-local,
// malloc'd block, or reachable collected block — is unreachable, and its finalizer runs: that is a leak (the
// program can no longer free it). The finalizer counts it for its site and keeps the block (a table of reported
// blocks in mimalloc's memory, so scanned: the block stays reachable, never reported twice, never freed behind the
// program's back — this is manual mode, and a program that hid its pointer may still free it; free then drops it
// from the table and counts it as "freed after being reported").
//
// When: every collection finds what became unreachable since the last one. The collected heap holds only the
// sampled blocks, so it rarely reaches its own goal; find-leak asks the background thread for a collection
// (pacing::RequestCollection, never on the allocating thread: a malloc may run under any lock of the program) each
// time the program has allocated, by the samples' estimate, as many bytes as mimalloc had committed at the last
// check (at least 4 MiB: GOGC=100's proportion applied to the whole process), and at most once a second: a
// malloc/free pair recycles memory far faster than a scan of every mapping reads it (malloc_pairs requested a
// check every ~20,000 allocations and ran 3.6x slower). At exit (an atexit handler, so after main returns or exit
// is called, not after _exit or a fatal signal) one more collection, then the summary — unless nothing was sampled.
//
// Reports (stderr, through write(2), one line each):
//   after a collection whose finalizers found leaks (the finalizer thread, at the end of the batch):
//     pacegc: leak: N blocks (B bytes) unreachable, never freed, allocated at f (mod+0x..) <- g (mod+0x..) <- ...
//   at exit: a summary line, then one line per site (the 25 largest by estimated bytes) with the run's totals and
//   the estimate: sampled bytes scaled by each block's sampling probability, 1 - exp(-size/rate).
//
// Costs: outside the sample, a thread-local countdown per call; a sampled allocation costs a stack unwind
// (backtrace), a pgc_malloc and a finalizer registration (~10 µs, once per 512 KiB by default). The collections
// scan the process like collect mode's. Limits, in docs/MALLOC.md: a leaked block that an unsampled leaked block
// points to is not found (unsampled blocks are roots, live or dead); blocks reachable only from a reported block
// are not reported separately; aligned allocations above 8 KiB alignment, allocations of threads pacegc has not
// registered and allocations made under pacegc's heap lock are not sampled.
#ifndef PACEGC_MALLOC_LEAK_H_
#define PACEGC_MALLOC_LEAK_H_

#include <cstddef>
#include <cstdint>

namespace pacegc::internal::drop_in::leak {

// Start-up, find-leak mode only, after pacegc's initialisation: the sample rate, the finalizer hook, the unwinder
// loaded (its first use dlopens libgcc_s), the exit report registered.
void Start(int64_t sample_bytes);

// Bytes left until the calling thread's next sample (thread-local; 0 until its first allocation).
extern thread_local int64_t t_countdown __attribute__((tls_model("initial-exec")));
bool SampleSlow(size_t n);
// Whether this allocation of n bytes is to be sampled: the countdown (inline, the common case) and, when it runs
// out, whether this thread can sample here (registered, not inside pacegc's heap lock or this file's own work).
inline bool ShouldSample(size_t n) {
  t_countdown -= static_cast<int64_t>(n);
  if (__builtin_expect(t_countdown > 0, 1)) return false;
  return SampleSlow(n);
}

// A sampled block for a request of n bytes: a collected block of `size` bytes (n, or the size class that gives the
// alignment asked for: malloc.cc's CollectedAlignedSize), zeroed, watched. nullptr when it cannot be sampled (no
// memory; size 0: an alignment the collected heap cannot give): the caller then allocates as manual mode does.
void *SampledBlock(size_t n, size_t size);

// Whether the collected block p is a sampled one (watched, or already reported). Takes the heap lock: realloc of
// a collected block only.
bool IsSampled(void *p);

// free of a collected block: forgets it if it had been reported (and counts it). Before pgc_free.
void Freed(void *p);

}  // namespace pacegc::internal::drop_in::leak

#endif  // PACEGC_MALLOC_LEAK_H_
