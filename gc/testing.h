// gc/testing.h — hooks for pacegc's own test suite. Internal: never installed, never used by the library itself.
#ifndef PACEGC_GC_TESTING_H_
#define PACEGC_GC_TESTING_H_

#include <cstddef>
#include <cstdint>

namespace pacegc::internal::testing {

// The next `count` requests to the OS for heap memory (arena reservations and commits) fail as if the OS had
// refused them (ENOMEM). count 0 cancels pending failures.
void FailNextOsMaps(int count);

// Number of OS heap-memory requests that were refused (injected or real) since start.
uint64_t OsMapFailures();

// The next `count` returns of free heap pages to the OS (madvise DONTNEED) fail: the pages stay resident and
// counted as such, and a line says so once. 0 cancels.
void FailNextOsReleases(int count);

// The next `count` collector-metadata allocations (span records, thread records, finalizer and root tables, the
// mark stack, the verifier's sets ...) fail as if the OS had refused them. 0 cancels.
void FailNextMetaAllocs(int count);

// Runs a collection with heap verification forced on: after marking, every object reachable from the roots is
// re-walked and checked to be marked, and the marked byte count is compared with the live-bytes statistic.
// Returns the number of problems found (0 = heap consistent). Problems are also printed to stderr.
size_t CollectAndVerify();

// Every collection from now on verifies the heap, as CollectAndVerify's does (automatic ones included: a release
// build's test of cycles the program starts), until called with false. VerifyProblemsTotal: the problems all
// verifications found since start-up.
void SetVerifyEveryCycle(bool on);
size_t VerifyProblemsTotal();

// Makes the next verification see a corrupted mark state (one reachable object's mark bit cleared after
// marking), so the verifier itself can be tested. If no root points at a marked object, nothing is corrupted and
// the verification finds no problem.
void CorruptNextMarkForTesting();

// Makes the next CollectAndVerify see a parked thread's stack change during the pause (one word of the park frame of
// the first parked thread whose state it records flipped, and put back before the world restarts), so that its check
// that the marker and the verifier read the same words can be seen to fail. With no such thread parked (only the
// main thread and threads made with pthread_create are recorded), nothing changes and no problem is found.
void DisturbNextParkedFrame();

// Replaces the mark stack with one of `entries` entries (tiny values force overflow and its recovery path).
// 0 restores the default. Takes effect at the next collection.
void SetMarkStackEntries(size_t entries);

// Pauses in which a parked thread may help or the mark thread was woken give them up to `ns` to join before the
// collector claims the stacks and work they would take (gc/mark.h, "Helpers"): on a loaded machine they may
// otherwise not get a core during a short pause. 0 (the default) restores no waiting.
void SetHelperWaitNs(uint64_t ns);

// Verify builds quarantine freed objects, which sends every pgc_free through the heap lock. false: no quarantine,
// so pgc_free by registered threads takes its lock-free path (filling freed objects with 0xDF as verify builds do)
// and the sanitizer builds test it. No effect in other builds (no quarantine, lock-free path always).
void SetFreeQuarantine(bool on);

// nullptr if p is the start of an object the collector holds allocated (small objects: its slot's allocation bit,
// read without the heap lock), else why not, as pgc_free's misuse line would say it ("a free slot" ...). For stress
// tests to notice an object they hold that the collector freed, before their own pgc_free of it aborts.
const char *WhyNotHeld(const void *p);

// Misuse reports (the "pacegc: pgc_free(0x...): ..." lines, alloc.h Misuse) since the process started, aborting ones
// included: a test that frees only what it holds checks that none was reported.
uint64_t MisuseReports();

// Mark-stack overflows during the last collection (0 = the stack never filled).
uint64_t LastCycleMarkOverflows();

// Stacks that parked threads marked from themselves during the last collection (gc/mark.h, "Helpers").
uint64_t LastCycleHelpedStacks();

// Mark-stack entries the markers of the last collection's pause passed to each other (gc/mark.h, "Shared
// draining"; a concurrent cycle's: its final pause). Nonzero only if a helper took part of the collector's drain.
uint64_t LastCycleSharedEntries();

// Heap bytes the mark thread scanned in the last cycle's concurrent marking (gc/mark.h, "Background sharing"; 0 for
// a stop-the-world cycle, or if the cycle did not use the mark thread).
uint64_t LastCycleBackgroundThreadBytes();

// Concurrent cycles pre-clean (re-scan written pages, and track the spans filled during the cycle, with the world
// running) only once this many bytes are marked (64 MiB by default: gc/collector.cc). 0 pre-cleans every concurrent
// cycle; UINT64_MAX restores the default.
void SetPrecleanMinMarkedBytes(uint64_t bytes);

// Spans filled during the last concurrent cycle that its pre-cleaning protected and re-scanned (0 for others).
uint64_t LastCyclePrecleanedSpans();

// Large spans the program was writing that runway cycles left writable (flagged, re-scanned later) rather than
// protecting them at their start, since the process began (gc/concurrent.cc, RangeBatch).
uint64_t LiftedWrittenSpans();

// Sets the period of the background thread's periodic collection (Go's 2 minutes by default; 0 restores it) and
// wakes the thread so the new period applies at once. The thread exists once a first collection has run.
void SetPeriodicGcNs(uint64_t period_ns);

}  // namespace pacegc::internal::testing

#endif  // PACEGC_GC_TESTING_H_
