/*
 * pacegc — a garbage-collected memory allocator for C and C++ with a Go-style pacer.
 *
 * This is the public C API. Everything a program may rely on is declared here; nothing under gc/ or pacer/
 * is part of the interface.
 *
 * Memory from pgc_malloc / pgc_malloc_atomic is reclaimed by a mark-sweep collector once no pointer to it
 * (or into it: interior pointers count) remains in
 *   - the stack or registers of a registered thread (the main thread and every thread made with pthread_create
 *     are registered from their start: see pgc_register_thread),
 *   - the data and bss segments of the executable and of every loaded shared object,
 *   - a range registered with pgc_add_roots, or
 *   - another collected object that is itself reachable and was allocated with pgc_malloc (scanned).
 * Memory from the system malloc, thread-local variables and pgc_malloc_atomic objects are NOT scanned: a pointer
 * kept only there does not keep an object alive. (Under the drop-in allocator, libpacegc-malloc.so, every writable
 * private mapping of the process is a root, malloc'd blocks and thread-local storage included: docs/MALLOC.md.)
 *
 * Thread safety: every function may be called from any thread. Functions that allocate may run a collection,
 * which briefly stops every registered thread (see docs/ARCHITECTURE.md, "Stopping the world").
 */
#ifndef PACEGC_PACEGC_H
#define PACEGC_PACEGC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PACEGC_API __attribute__((visibility("default")))
#define PACEGC_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define PACEGC_API
#define PACEGC_MALLOC_ATTR
#endif

#define PACEGC_VERSION_MAJOR 0
#define PACEGC_VERSION_MINOR 1
#define PACEGC_VERSION_PATCH 0

/* ---- Allocation --------------------------------------------------------------------------------------------- */

/* A collected object of at least `size` bytes, zeroed, aligned to 16 bytes. Its contents are scanned
 * conservatively: any word that looks like a pointer into the collected heap keeps that object alive.
 * pgc_malloc(0) returns a unique pointer. Returns NULL, with errno set to ENOMEM, only when the OS refuses memory
 * even after a collection (or the size cannot be served at all) and the OOM handler (if any) returned NULL. */
PACEGC_API PACEGC_MALLOC_ATTR void *pgc_malloc(size_t size);

/* A collected object whose contents are never scanned (pointer-free data: strings, numbers, pixels).
 * Not necessarily zeroed. */
PACEGC_API PACEGC_MALLOC_ATTR void *pgc_malloc_atomic(size_t size);

/* Optional explicit free of an object from pgc_malloc / pgc_malloc_atomic (and pgc_realloc, pgc_strdup,
 * pgc_strndup); the only way to free a block from pgc_malloc_uncollectable. pgc_free(NULL) does nothing.
 * A finalizer registered for the object is dropped without running, also one already queued to run.
 * Misuse detected: a pointer pacegc did not return (stack, static, system malloc, ...), an interior pointer, and a
 * free of an object whose slot is free now (freed before and not handed out again, or a large object freed before).
 * It prints one line naming the call, the pointer and the problem to stderr ("pacegc: pgc_free(0x...): ...
 * (ignored)") and is ignored, or aborts the process when the library was built with PACEGC_VERIFY_HEAP or the
 * environment has PACEGC_ABORT_ON_MISUSE=1.
 * NOT detected: a second free after the slot was handed out again. The stale pointer then equals the new object's,
 * and pgc_free frees the new object (no allocator can tell them apart without tagged pointers). Builds with
 * PACEGC_VERIFY_HEAP narrow the gap: a freed object is filled with 0xDF and quarantined (not handed out again)
 * until the next collection, or until 64 MiB are quarantined, so a second free within that window is detected. */
PACEGC_API void pgc_free(void *p);

/* Resizes a collected object, as realloc does: NULL p is pgc_malloc(size); size 0 frees p (as pgc_free) and
 * returns NULL. Otherwise returns an object of at least `size` bytes of the same kind (scanned, or atomic for an
 * object from pgc_malloc_atomic / pgc_strdup) holding the first min(pgc_size(p), size) bytes of p: p itself when
 * size fits in it and uses at least half of it, else a new object, and p is then freed as by pgc_free (a
 * finalizer registered for p is dropped, and p must not be used again). Bytes past the copied ones are zero in a
 * scanned object, unspecified in an atomic one. NULL (errno ENOMEM) when no memory can be had, p untouched.
 * p must be the start of a live collected object; anything else (foreign, interior, freed, an uncollectable
 * block) is misuse, reported as for pgc_free, and returns NULL (errno EINVAL). */
PACEGC_API void *pgc_realloc(void *p, size_t size);

/* A copy of the string s (pgc_strndup: of at most its first n bytes), NUL-terminated, in an atomic collected
 * object (never scanned; freed by the collector or pgc_free). s == NULL is misuse: NULL, errno EINVAL. NULL
 * (errno ENOMEM) when out of memory. */
PACEGC_API PACEGC_MALLOC_ATTR char *pgc_strdup(const char *s);
PACEGC_API PACEGC_MALLOC_ATTR char *pgc_strndup(const char *s, size_t n);

/* The start of the live collected object containing p (interior pointers included, as the collector sees them),
 * or NULL when p points into none: NULL, foreign memory, a free slot, manual memory and uncollectable blocks.
 * Like bdwgc's GC_base. A query: no misuse is reported. */
PACEGC_API void *pgc_base(const void *p);

/* The usable size of the live collected object containing p (its size class, at least what was asked for; all of
 * it may be used), or 0 when p points into none (as pgc_base). Like bdwgc's GC_size, but interior pointers
 * are accepted. */
PACEGC_API size_t pgc_size(const void *p);

/* Keeps p reachable up to this call, like Go's runtime.KeepAlive: an object is collected once no pointer to it is
 * left in a register, on a stack or in a root, and an optimising compiler may drop the last copy of a pointer
 * before the program's last use of memory derived from it (a field handed to a system call, a finalizer that
 * closes what the object owns). Call pgc_keep_alive(p) after that last use. Costs a call; does nothing else. */
PACEGC_API void pgc_keep_alive(const void *p);

/* A block that is scanned like a root and never collected (bdwgc's GC_MALLOC_UNCOLLECTABLE): a collected object
 * whose only pointer is stored here stays alive. Zeroed, aligned to 16 bytes, freed only with pgc_free. It is
 * manual memory: counted in pgc_stats.manual_bytes (and so under the soft limit); its bytes are scanned at every
 * collection (counted in last_globals_scan_bytes). Meant for long-lived tables; each block costs a root-table
 * entry. pgc_malloc_uncollectable(0) returns a unique pointer. NULL (errno ENOMEM) when out of memory.
 * pgc_manual_free / pgc_manual_realloc / pgc_realloc of such a block is misuse (see pgc_free). */
PACEGC_API PACEGC_MALLOC_ATTR void *pgc_malloc_uncollectable(size_t size);

/* ---- Manual (non-collected) memory ------------------------------------------------------------------------- */

/* malloc/calloc/realloc/free for memory the program manages itself, served by pacegc's private mimalloc. These
 * bytes count against the soft memory limit (pgc_stats.manual_bytes is part of total_bytes), so a service's
 * non-collected memory is under the same limit as its collected heap. They are NOT scanned: a pointer to a
 * collected object stored only here does not keep it alive (use pgc_add_roots for that). Alignment 16.
 * NULL (errno ENOMEM) when the OS refuses memory even after pgc_free_os_memory() released what it could.
 * pgc_manual_free(NULL) does nothing; freeing anything else than a live pointer from these functions is
 * undefined behaviour, like free(); a collected object passed to pgc_manual_free is detected as misuse. */
PACEGC_API PACEGC_MALLOC_ATTR void *pgc_manual_malloc(size_t size);
PACEGC_API PACEGC_MALLOC_ATTR void *pgc_manual_calloc(size_t count, size_t size);
PACEGC_API void *pgc_manual_realloc(void *p, size_t size);
PACEGC_API void pgc_manual_free(void *p);
/* The usable size of a manual allocation (at least what was asked for). */
PACEGC_API size_t pgc_manual_usable_size(const void *p);

/* ---- Collection and settings -------------------------------------------------------------------------------- */

/* A full, blocking ("forced") collection. Finalizers of objects found unreachable have run when it returns:
 * it waits (without delaying other collections) until the finalizer thread has run every finalizer queued up to
 * the end of this collection. So do not call it while holding a lock your finalizers take. Exceptions: called from
 * a finalizer it does not wait (it would wait for itself), and with PACEGC_FINALIZERS=on-demand finalizers run
 * only in pgc_run_finalizers. */
PACEGC_API void pgc_collect(void);

/* A forced collection, then every free heap page is returned to the OS (madvise DONTNEED), like Go's
 * debug.FreeOSMemory; under the drop-in allocator (libpacegc-malloc) the free pages of its malloc'd blocks too.
 * Returns the bytes released by this call. */
PACEGC_API size_t pgc_free_os_memory(void);

/* Sets GOGC. Returns the previous value; a negative value turns the GOGC goal off (reads back as -1). */
PACEGC_API int pgc_set_gc_percent(int percent);

/* Sets the soft memory limit in bytes. Returns the previous value; a negative input only queries.
 * INT64_MAX means no limit. The default: GOMEMLIMIT if set; else, inside a memory cgroup with a limit (v2
 * memory.max, v1 memory.limit_in_bytes; the lowest over the cgroup and its ancestors), PACEGC_AUTOMEMLIMIT (a
 * fraction, default 0.9; "off" for none) of that limit, re-read every second from the first collection on, so a resized container moves it;
 * else none. A limit set here (bytes >= 0) always wins: the cgroup no longer moves it
 * (pgc_stats.memory_limit_source says which applies). */
PACEGC_API int64_t pgc_set_memory_limit(int64_t bytes);

/* Sets the optional hard memory limit in bytes: what the soft limit counts (pgc_stats.total_bytes: heap pages
 * held, collector metadata and manual memory) never passes it. Returns the previous value; a negative input only
 * queries; INT64_MAX means none (the default, or PACEGC_HARD_MEMLIMIT from the environment).
 * An allocation that would take total_bytes past it first collects (a forced collection) and returns free heap
 * pages to the OS, then tries once more. If that is not enough:
 *   pgc_malloc, pgc_malloc_atomic, pgc_realloc, pgc_strdup, pgc_strndup: the OOM handler (pgc_set_oom_handler) is
 *     called, and its result returned; without one, NULL with errno ENOMEM (the C++ API throws std::bad_alloc);
 *   pgc_manual_malloc and friends, pgc_malloc_uncollectable: NULL with errno ENOMEM (the OOM handler returns
 *     collected memory, which is no answer to a manual request).
 * Collector metadata is refused at the cap like anything else (the library handles that), so a program near the
 * cap may see a registration or a finalizer/weak-link registration fail with ENOMEM too.
 * The soft limit stays the pacing signal, but pacing never aims above the hard cap: collections are paced against
 * min(soft limit, hard limit), so a soft limit above the cap (or none) is clamped for pacing. Both are reported as
 * set (pgc_stats.memory_limit_bytes, hard_memory_limit_bytes). A cap below the current total refuses all growth
 * until frees, collections or released pages bring the total under it. Each allocation at the cap counts in
 * pgc_stats.hard_limit_gc (saved by the collection) or hard_limit_failures, and raises PGC_EVENT_HARD_LIMIT. */
PACEGC_API int64_t pgc_set_hard_memory_limit(int64_t bytes);

/* ---- Limit events ------------------------------------------------------------------------------------------- */

/* pgc_event.kind */
#define PGC_EVENT_LIMITER_ON 1    /* the GC CPU limiter turned on: collections are being postponed (GC would take
                                   * more than ~50% of the CPU); the heap grows past its goal, maybe past the soft
                                   * limit. A signal to shed load. */
#define PGC_EVENT_LIMITER_OFF 2   /* after LIMITER_ON: the limiter has stayed off for a second */
#define PGC_EVENT_OVER_LIMIT 3    /* total_bytes went above the soft memory limit */
#define PGC_EVENT_UNDER_LIMIT 4   /* after OVER_LIMIT: total_bytes has stayed at or below 95% of the soft limit for
                                   * a second (or the limit was removed) */
#define PGC_EVENT_HARD_LIMIT 5    /* an allocation hit the hard limit: refused, or saved only by a forced
                                   * collection (pgc_stats.hard_limit_failures / hard_limit_gc say which, and how
                                   * many: hits within a second of the last event make one more event, none lost) */

#define PGC_EVENT_VERSION 1

/* One event, as passed to the callback. Versioned: size is sizeof(pgc_event) of the library that filled it, so a
 * program built against a later header reads fields past size as absent. */
typedef struct pgc_event {
  size_t size;                     /* sizeof(pgc_event) in the library */
  uint32_t version;                /* PGC_EVENT_VERSION of the library */
  uint32_t kind;                   /* PGC_EVENT_* */
  uint64_t num_gc;                 /* completed collections when the event was delivered */
  uint64_t total_bytes;            /* what the limits count, then (pgc_stats.total_bytes) */
  int64_t memory_limit_bytes;      /* the soft limit then; INT64_MAX = none */
  double gc_cpu_fraction;          /* pgc_stats.gc_cpu_fraction then */
  int64_t hard_memory_limit_bytes; /* the hard limit then; INT64_MAX = none */
} pgc_event;

/* Calls fn(ev, data) for every limit event from now on; fn == NULL stops events. Events are edge-triggered: each
 * kind says a state was entered, once per crossing, with hysteresis (LIMITER_OFF and UNDER_LIMIT only after the
 * state has held for a second, HARD_LIMIT at most once a second), so a state that flaps does not make a storm.
 * A new callback starts from "nothing told": a state that already holds (over the limit, limiter on) is
 * reported by its edge event. fn runs on pacegc's background thread ("pacegc-bg"), after the decision, with no
 * pacegc lock held, one event at a time, usually within a second of the crossing; it is registered for the
 * call, so it may call any pacegc function: raise the limit, collect, allocate, free, read stats, even set
 * another callback. It must return (the background thread also releases memory and runs periodic collections).
 * When pgc_set_event_callback returns, no call of the callback it replaced is running any more (it waits for one
 * in flight, without delaying collections; called from the callback itself it does not wait), so fn's data may be
 * freed then. So do not call it while holding a lock the callback takes. */
PACEGC_API void pgc_set_event_callback(void (*fn)(const pgc_event *ev, void *data), void *data);

/* Validates a GOGC value with the syntax of the GOGC environment variable ("off" or a whole number of percent;
 * negative means off; "-0" is 0, as in Go). On success stores it in *percent (-1 for off) and returns 0. Otherwise returns EINVAL and,
 * if error is not NULL, writes one NUL-terminated line naming the value and the accepted forms (truncated to
 * error_size bytes). The library itself refuses a malformed GOGC at start-up with that line and exit status 2. */
PACEGC_API int pgc_parse_gc_percent(const char *text, int *percent, char *error, size_t error_size);

/* Validates a size with the syntax of GOMEMLIMIT: "off" (INT64_MAX), a number of bytes, or a whole number with
 * one of the suffixes B, KiB, MiB, GiB, TiB. Same contract as pgc_parse_gc_percent (EINVAL on malformed input,
 * including more than INT64_MAX bytes). */
PACEGC_API int pgc_parse_memory_limit(const char *text, int64_t *bytes, char *error, size_t error_size);

/* ---- Finalization ------------------------------------------------------------------------------------------- */

/* Runs fn(obj, data) once, some time after obj has become unreachable, never inside a collection pause, never
 * inside an allocation and never with a pacegc lock held. Where (PACEGC_FINALIZERS, read at start-up):
 *   thread     (the default, Go's model) on one dedicated thread, "pacegc-fin", one finalizer at a time in the
 *              order they were found. Finalizers may take locks the program's threads hold while allocating.
 *   on-demand  only when the program calls pgc_run_finalizers, on the calling thread (bdwgc's finalize-on-demand).
 * Any other value stops the program at start-up with one line naming the variable and exit status 2.
 * obj must be the start of an allocated object from pgc_malloc /
 * pgc_malloc_atomic: NULL, foreign, interior and freed pointers are misuse (see pgc_free for the rule). A second
 * registration replaces the first; fn == NULL removes the registration (either way, also a run already queued
 * for an object found unreachable is then skipped). If the finalizer table cannot grow (out of
 * memory) a line says so and the finalizer is not registered. Objects reachable from a finalizable
 * object stay alive until its finalizer has run. The finalizer may allocate and may resurrect obj by storing it. */
PACEGC_API void pgc_register_finalizer(void *obj, void (*fn)(void *obj, void *data), void *data);

/* With PACEGC_FINALIZERS=on-demand: runs every queued finalizer on the calling thread (including those queued by
 * collections the finalizers cause) and returns how many ran; a call from inside a finalizer returns 0 at once.
 * In the default thread mode: waits until the finalizers queued at the call have run on the finalizer thread, and
 * returns 0. */
PACEGC_API size_t pgc_run_finalizers(void);

/* ---- Weak links --------------------------------------------------------------------------------------------- */

/* Makes *link a weak reference to obj: it does not keep obj alive, and it is cleared when obj becomes unreachable
 * (at the collection that finds it so, before obj's finalizer runs) or is freed with pgc_free (bdwgc's disappearing
 * links; Go's weak.Pointer). The link is a pointer-sized, pointer-aligned word anywhere: a global, a stack slot,
 * a field of a collected object (it dies with that object). While registered it holds obj's address in a hidden
 * form the conservative scan ignores: read it only with pgc_weak_get, never directly. Registering a link again
 * points it at the new object. A link outside the collected heap must be unregistered before its memory goes
 * away (a stack frame returns, a block is freed): the collector writes to it when it clears it.
 * Returns 0, EINVAL (link NULL or misaligned, obj not an object from pgc_malloc: printed as misuse) or ENOMEM.
 * While any weak link was ever registered, pgc_free takes the heap lock (it clears links). */
PACEGC_API int pgc_register_weak_link(void **link, const void *obj);
/* Stops *link being a weak link (its word is left as it is). 0, or ENOENT if it was not registered. */
PACEGC_API int pgc_unregister_weak_link(void **link);
/* The object *link refers to, or NULL once cleared. Safe at any time, from any thread, including while another
 * thread collects: the result, held by a registered thread, keeps the object alive as any pointer does. */
PACEGC_API void *pgc_weak_get(void *const *link);

/* ---- Threads and roots -------------------------------------------------------------------------------------- */

/* Registers the calling thread so its stack and registers are scanned. Every thread that holds collected
 * pointers must be registered. Automatic: the main thread, and every thread made with pthread_create (pacegc
 * interposes pthread_create, in the shared and the static library alike, so the new thread is registered before
 * its start routine runs; pthread_create returns once it is). Call pgc_register_thread for threads made by other
 * means (clone, a runtime's own threads), threads that existed before libpacegc.so was loaded with dlopen, and
 * threads created with pacegc's suspend signal blocked (PACEGC_SUSPEND_SIGNAL; such threads are not registered
 * automatically, since they could not be stopped). A thread that is not registered is still registered on its
 * first allocation. A fully static executable (-static) is not supported.
 * Registration is counted: each pgc_register_thread needs one pgc_unregister_thread (the automatic registrations
 * count once). Returns 0 on success, an errno value otherwise. A thread that exits while registered (returning
 * from its start routine, pthread_exit, cancellation) is unregistered automatically, after its cleanup handlers
 * and thread_local destructors; pgc_unregister_thread on a thread that is not registered prints a message. */
PACEGC_API int pgc_register_thread(void);
PACEGC_API void pgc_unregister_thread(void);

/* Runs fn(arg) with the calling thread in a blocking region and returns fn's result, like bdwgc's GC_do_blocking.
 * Meant for calls that may block for long: poll, epoll_wait, accept, read on a socket, sem_wait, ...
 * In a blocking region the thread is never sent the suspend signal and never delays a collection: it counts as
 * stopped, and its stack up to this call, with the registers as they were at this call, is still scanned. So
 * collected objects the caller holds stay alive, and the calls in fn see no EINTR caused by pacegc.
 * fn must not touch collected objects (no reads or writes of them, no pointer to one kept only in fn's own
 * variables) and must not call pacegc functions, except pgc_do_blocking itself (regions nest). fn may run during a
 * collection. The thread leaves the region when fn returns or unwinds (pthread_exit, cancellation, a C++
 * exception); if a collection is under way then, it waits until the world restarts. On a thread that is not
 * registered, fn is simply called. fn == NULL is misuse (see pgc_free for the rule) and returns NULL.
 * Outside a region, a collection interrupts every registered thread with the suspend signal (installed with
 * SA_RESTART): calls that restart (read, write, accept, connect, wait, futex waits, pthread_mutex_lock,
 * pthread_cond_wait, sem_wait, ...) are resumed transparently, but calls Linux never restarts after a signal
 * handler fail with EINTR as for any signal (signal(7)): poll, ppoll, select, pselect, epoll_wait, epoll_pwait,
 * nanosleep, clock_nanosleep, usleep, sleep (returns early), io_getevents, sigtimedwait, msgrcv/msgsnd/semop, and
 * socket reads and writes with a timeout set (SO_RCVTIMEO / SO_SNDTIMEO). Call those in a region, or retry. */
PACEGC_API void *pgc_do_blocking(void *(*fn)(void *arg), void *arg);

/* The two halves of pgc_do_blocking, for the C++ RAII form (pacegc::BlockingRegion in pacegc.hpp): the code
 * between them is the region, with the same rules as fn above. Registers and the stack pointer are recorded at
 * pgc_enter_blocking, so call it from the function the region belongs to (not through a wrapper function, whose
 * frame is gone when it returns), and a collected pointer the caller needs afterwards must be held at that point
 * and not moved in between; prefer pgc_do_blocking in C. Each pgc_enter_blocking needs one pgc_leave_blocking on
 * the same thread. */
PACEGC_API void pgc_enter_blocking(void);
PACEGC_API void pgc_leave_blocking(void);

/* An extra root range [begin, end), scanned conservatively at every collection. The range must be mapped
 * readable for as long as it is registered: one that is not (checked against /proc/self/maps when it is added)
 * is misuse (see pgc_free for the rule) and is not added; unmapping a range before removing it is undefined. */
PACEGC_API void pgc_add_roots(void *begin, void *end);
/* Removes a range added with exactly these bounds; anything else is misuse (see pgc_free for the rule). */
PACEGC_API void pgc_remove_roots(void *begin, void *end);

/* Called when the OS refuses memory even after a collection. It may free memory and return a retry result
 * (any non-NULL pointer it returns is returned to the caller as is: return pgc_malloc(size) to retry), or return
 * NULL to make the allocation fail (errno ENOMEM). The handler is not called again for an allocation that fails
 * inside it on the same thread: that allocation returns NULL (errno ENOMEM) at once, so the retry idiom retries
 * exactly once, also for a size no retry can serve. NULL handler restores the default (return NULL). */
PACEGC_API void pgc_set_oom_handler(void *(*handler)(size_t size));

/* ---- Statistics --------------------------------------------------------------------------------------------- */

#define PGC_STATS_VERSION 6
#define PGC_PAUSE_HIST_BUCKETS 32 /* pgc_stats.pause_hist: upper bounds 1 us, 2 us, 4 us, ..., 2^31 us */

typedef struct pgc_stats {
  size_t size;                         /* set by the caller to sizeof(pgc_stats); fields past it are not written */
  uint32_t version;                    /* written: PGC_STATS_VERSION of the library */
  uint32_t reserved0;
  uint64_t num_gc;                     /* completed collections, forced ones included */
  uint64_t num_forced_gc;              /* completed collections started by pgc_collect */
  uint64_t heap_live_bytes;            /* bytes in objects marked by the last collection */
  uint64_t heap_goal_bytes;            /* heap_alloc_bytes at which the next collection starts */
  uint64_t heap_alloc_bytes;           /* bytes in objects allocated and not yet freed (size-class rounded) */
  uint64_t heap_objects;               /* objects allocated and not yet freed */
  uint64_t total_bytes;                /* memory the limit counts: heap_mapped + metadata + manual */
  uint64_t heap_mapped_bytes;          /* heap pages committed (mapped read-write) and not released */
  uint64_t heap_released_bytes;        /* free heap pages returned to the OS (kept mapped, not resident) */
  uint64_t released_bytes;             /* alias of heap_released_bytes, the name the API documents */
  uint64_t metadata_bytes;             /* collector metadata (spans, page map, mark stack, tables) */
  uint64_t total_alloc_bytes;          /* cumulative bytes allocated */
  uint64_t total_alloc_objects;        /* cumulative objects allocated */
  uint64_t total_free_bytes;           /* cumulative bytes reclaimed (sweep and pgc_free) */
  uint64_t total_free_objects;
  uint64_t pause_total_ns;             /* wall time the world was stopped, summed */
  uint64_t pause_last_ns;              /* wall time of the last pause */
  uint64_t pause_max_ns;
  uint64_t gc_cpu_ns;                  /* GC CPU time as Go counts it: each stop-the-world pause counts
                                        * pause × cpu_capacity (Go: pause × GOMAXPROCS) */
  double gc_cpu_fraction;              /* GC CPU / (wall since init × cpu_capacity), like Go's GCCPUFraction */
  uint64_t last_stack_scan_bytes;      /* stack bytes scanned by the last collection */
  uint64_t last_globals_scan_bytes;    /* data/bss and registered-range bytes scanned by the last collection */
  uint64_t last_heap_scan_bytes;       /* object bytes scanned by the last collection */
  uint64_t limiter_last_enabled_cycle; /* cycle in which the GC CPU limiter last turned on; 0 = never */
  uint64_t finalizers_run;
  int64_t gc_percent;                  /* GOGC; -1 = off */
  int64_t memory_limit_bytes;          /* INT64_MAX = no limit */
  uint64_t num_threads;                /* registered threads */
  uint64_t limiter_enabled;            /* 1 while the GC CPU limiter is on (collections are postponed), else 0 */
  uint64_t limiter_enabled_ns;         /* total wall time the GC CPU limiter has been on */
  uint64_t manual_bytes;               /* bytes in live manual allocations (pgc_manual_malloc and friends) */
  uint64_t scavenge_cpu_ns;            /* CPU time spent returning memory to the OS */
  uint64_t pause_ns[256];              /* the last 256 pauses, circular like Go's MemStats.PauseNs: the pause of
                                        * cycle n (counting from 1) is pause_ns[(n + 255) % 256] */
  uint64_t heap_in_use_bytes;          /* heap pages in spans that hold objects */
  uint64_t heap_free_bytes;            /* free heap pages still resident, empty spans kept for their size class
                                          included (heap_mapped = in_use + free) */
  uint64_t num_periodic_gc;            /* automatic collections started because 2 minutes passed without one */
  uint64_t limiter_postponed;          /* times a due collection was postponed by the GC CPU limiter */
  uint64_t pause_hist[PGC_PAUSE_HIST_BUCKETS]; /* every pause ever, by duration: bucket i counts pauses of at most
                                        * 2^i microseconds (and more than 2^(i-1) for i > 0); the last bucket also
                                        * counts every longer pause */
  /* Version 2. */
  double cpu_capacity;                 /* CPUs the program may use: cpu_affinity lowered by a cgroup CPU quota
                                        * (fractional: 0.3 = 30% of one core). The GC CPU limiter's capacity, the
                                        * scavenger's 1% budget and gc_cpu_fraction count this many cores. Read at
                                        * start-up, then every second from the first collection on, by the
                                        * background thread (a resized container is followed). */
  double cpu_quota;                    /* the lowest cgroup CPU quota over the process's cgroup and its ancestors,
                                        * in CPUs (quota / period); 0 = none found */
  uint32_t cpu_affinity;               /* CPUs in the affinity mask (sched_getaffinity) */
  uint32_t cpu_capacity_source;        /* what set cpu_capacity: PGC_CPU_AFFINITY, PGC_CPU_CGROUP_V1, PGC_CPU_CGROUP_V2 */
  /* Version 3. */
  uint32_t memory_limit_source;        /* who set memory_limit_bytes: PGC_MEMORY_LIMIT_NONE, _ENV, _API, _CGROUP */
  uint32_t cgroup_memory_hierarchy;    /* where cgroup_memory_limit_bytes was found: 0 none, PGC_CPU_CGROUP_V1
                                        * (memory.limit_in_bytes), PGC_CPU_CGROUP_V2 (memory.max) */
  uint64_t cgroup_memory_limit_bytes;  /* the lowest memory limit over the process's cgroup and its ancestors;
                                        * 0 = none found. Read at start-up, then every second (with cpu_quota),
                                        * whatever the limit's source */
  double automemlimit_ratio;           /* PACEGC_AUTOMEMLIMIT: the fraction of cgroup_memory_limit_bytes the limit
                                        * defaults to (0.9 unless set); 0 = off */
  /* Version 4. */
  int64_t hard_memory_limit_bytes;     /* the hard cap on total_bytes (pgc_set_hard_memory_limit); INT64_MAX = none */
  uint64_t hard_limit_gc;              /* allocations at the hard cap saved by a forced collection */
  uint64_t hard_limit_failures;        /* allocations refused at the hard cap (NULL / ENOMEM, std::bad_alloc) */
  /* Version 5. */
  uint64_t num_concurrent_gc;          /* completed collections that marked while the program ran
                                        * (PACEGC_CONCURRENT=on): each made two pauses, a short one to scan the
                                        * roots and a final one; the others made one. pause_hist and the pause
                                        * totals count pauses; pause_ns holds each cycle's pauses summed */
  /* Version 6. */
  uint64_t num_runway_gc;              /* of those, the collections started below the goal (Go's trigger: the
                                        * program allocated slowly enough for a background marker to finish first)
                                        * and marked by pacegc's background thread while every thread allocated on,
                                        * assisting; the others started at the goal */
  uint64_t assist_cpu_ns;              /* CPU time the program's threads spent marking for them (mark assists);
                                        * counted in gc_cpu_ns */
} pgc_stats;

/* pgc_stats.cpu_capacity_source */
#define PGC_CPU_AFFINITY 0  /* no CPU quota below the affinity mask */
#define PGC_CPU_CGROUP_V1 1 /* cgroup v1 cpu.cfs_quota_us / cpu.cfs_period_us */
#define PGC_CPU_CGROUP_V2 2 /* cgroup v2 cpu.max */

/* pgc_stats.memory_limit_source */
#define PGC_MEMORY_LIMIT_NONE 0   /* no soft limit: GOMEMLIMIT unset and no cgroup memory limit (or AUTOMEMLIMIT off) */
#define PGC_MEMORY_LIMIT_ENV 1    /* GOMEMLIMIT (set and not empty; GOMEMLIMIT=off too: an explicit "no limit") */
#define PGC_MEMORY_LIMIT_API 2    /* pgc_set_memory_limit: from then on the cgroup no longer moves the limit */
#define PGC_MEMORY_LIMIT_CGROUP 3 /* automemlimit_ratio x cgroup_memory_limit_bytes, followed as the cgroup is
                                   * resized */

/* Fills *out with a snapshot. out->size must be set first (older callers with a shorter struct are served). */
PACEGC_API void pgc_read_stats(pgc_stats *out);

/* ==== Metrics registry (go-metrics style) ===================================================================== */
/* Named counters, gauges, meters, histograms and timers in one process-wide registry, for the program and for
 * pacegc itself (in the style of rcrowley/go-metrics).
 *
 * Names: 1-255 bytes, no spaces, control characters or DEL (e.g. "requests", "/gc/heap/goal:bytes").
 * pgc_<kind>_get(name) returns the metric registered under name, registering a new one if there is none. It
 * returns NULL and sets errno on misuse, after printing one line naming the call and the problem on stderr:
 *   EINVAL  name is NULL or breaks the naming rule;  EEXIST  name is registered as another kind;  ENOMEM.
 * A handle stays valid for the life of the process, even after pgc_metrics_unregister (registering the name again
 * with the same kind returns the same metric, reset). Update functions given a NULL handle do nothing, so a failed
 * get degrades to not counting. Every function is thread-safe; counters and gauges are lock-free.
 * The registry lives in collector metadata memory (counted in pgc_stats.metadata_bytes), never in the
 * collected heap: a pointer stored in a metric does not keep an object alive.
 *
 * Meters count events and keep 1-, 5- and 15-minute exponentially weighted moving average rates, ticked every 5 s
 * (alpha = 1 - exp(-5/60/minutes); the first tick sets the rate to that interval's rate) and the mean rate since
 * registration; rates are events per second. Histograms keep a bounded, exponentially decaying sample (1028
 * values, alpha 0.015/s, favouring the last ~5 minutes): count is every update ever; min, max, mean, stddev
 * (population) and percentiles (pos = p * (n + 1), linear between neighbours) describe the sample. A timer is a
 * histogram of durations in nanoseconds plus a meter of how many were recorded.
 *
 * Logging: PACEGC_METRICS_LOG=<duration> (Go syntax, at least 1ms, e.g. 500ms, 10s, 1m; "off" disables) prints
 * one block of lines ("metrics: <kind> <name> key=value ...") per interval to stderr from a detached background
 * thread; a malformed value stops the process at start-up with one line and exit status 2, like GOGC. */

typedef struct pgc_counter pgc_counter;
typedef struct pgc_gauge pgc_gauge;
typedef struct pgc_gauge_float pgc_gauge_float;
typedef struct pgc_meter pgc_meter;
typedef struct pgc_histogram pgc_histogram;
typedef struct pgc_timer pgc_timer;

typedef enum pgc_metric_kind {
  PGC_METRIC_COUNTER = 1,
  PGC_METRIC_GAUGE = 2,
  PGC_METRIC_GAUGE_FLOAT = 3,
  PGC_METRIC_METER = 4,
  PGC_METRIC_HISTOGRAM = 5,
  PGC_METRIC_TIMER = 6
} pgc_metric_kind;

#define PGC_METRIC_VALUES_VERSION 1

/* A histogram's (or a timer's durations') statistics. Versioned like pgc_stats: set size = sizeof first. */
typedef struct pgc_histogram_values {
  size_t size;          /* set by the caller to sizeof(pgc_histogram_values); fields past it are not written */
  uint32_t version;     /* written: PGC_METRIC_VALUES_VERSION */
  uint32_t reserved0;
  int64_t count;        /* updates ever recorded (since registration or the last clear) */
  uint64_t sample_size; /* values in the sample the fields below describe (at most 1028); all 0 when empty */
  int64_t min;
  int64_t max;
  double mean;
  double stddev;        /* population standard deviation */
  double p50;
  double p75;
  double p95;
  double p99;
  double p999;
} pgc_histogram_values;

/* A meter's (or a timer's) count and rates. Versioned like pgc_stats. */
typedef struct pgc_meter_values {
  size_t size;          /* set by the caller to sizeof(pgc_meter_values) */
  uint32_t version;     /* written: PGC_METRIC_VALUES_VERSION */
  uint32_t reserved0;
  int64_t count;        /* events marked */
  double rate1;         /* events per second, 1-minute moving average */
  double rate5;
  double rate15;
  double rate_mean;     /* count / seconds since registration */
} pgc_meter_values;

PACEGC_API pgc_counter *pgc_counter_get(const char *name);
PACEGC_API void pgc_counter_inc(pgc_counter *c, int64_t n);
PACEGC_API void pgc_counter_dec(pgc_counter *c, int64_t n);
PACEGC_API int64_t pgc_counter_count(const pgc_counter *c); /* 0 for NULL */
PACEGC_API void pgc_counter_clear(pgc_counter *c);

PACEGC_API pgc_gauge *pgc_gauge_get(const char *name);
PACEGC_API void pgc_gauge_update(pgc_gauge *g, int64_t value);
PACEGC_API int64_t pgc_gauge_value(const pgc_gauge *g);

PACEGC_API pgc_gauge_float *pgc_gauge_float_get(const char *name);
PACEGC_API void pgc_gauge_float_update(pgc_gauge_float *g, double value);
PACEGC_API double pgc_gauge_float_value(const pgc_gauge_float *g);

PACEGC_API pgc_meter *pgc_meter_get(const char *name);
PACEGC_API void pgc_meter_mark(pgc_meter *m, int64_t n);
/* 0, or EINVAL (m or out NULL, out->size too small for the version field). */
PACEGC_API int pgc_meter_snapshot(pgc_meter *m, pgc_meter_values *out);

PACEGC_API pgc_histogram *pgc_histogram_get(const char *name);
PACEGC_API void pgc_histogram_update(pgc_histogram *h, int64_t value);
PACEGC_API void pgc_histogram_clear(pgc_histogram *h);
/* 0, EINVAL (as pgc_meter_snapshot) or ENOMEM. */
PACEGC_API int pgc_histogram_snapshot(pgc_histogram *h, pgc_histogram_values *out);

PACEGC_API pgc_timer *pgc_timer_get(const char *name);
PACEGC_API void pgc_timer_update_ns(pgc_timer *t, int64_t duration_ns);
/* Either output may be NULL (not both). 0, EINVAL or ENOMEM. Durations are in nanoseconds. */
PACEGC_API int pgc_timer_snapshot(pgc_timer *t, pgc_histogram_values *durations_ns, pgc_meter_values *rates);

/* Removes name from the registry (handles stay valid; see above). 0, EINVAL (NULL name) or ENOENT. */
PACEGC_API int pgc_metrics_unregister(const char *name);

/* Calls fn(name, kind, metric, data) for every registered metric, in byte-wise name order; metric is the handle
 * of that kind (a pgc_counter * for PGC_METRIC_COUNTER, ...). fn runs without the registry lock and may use the
 * registry. 0, EINVAL (fn NULL) or ENOMEM. */
PACEGC_API int pgc_metrics_each(void (*fn)(const char *name, pgc_metric_kind kind, void *metric, void *data),
                                void *data);

/* Writes one log block for every registered metric to fd:
 *   metrics: t=<seconds since the registry started>s n=<metrics>
 *   metrics: <kind> <name> key=value ...        (one line per metric, in name order)
 * 0, or an errno value (from write(2), or ENOMEM). Written as pgc_write_metrics writes: EPIPE, never SIGPIPE. */
PACEGC_API int pgc_metrics_log(int fd);

/* Starts (or restarts with new settings) the background logger: one block to fd every interval_ns (at least
 * 1000000, i.e. 1 ms). The thread is detached and does not keep the process alive. 0, EINVAL, or EAGAIN/ENOMEM
 * when no thread can be created. */
PACEGC_API int pgc_metrics_log_start(int64_t interval_ns, int fd);
/* Stops the background logger and waits for its last write to finish (fd may be closed afterwards). */
PACEGC_API void pgc_metrics_log_stop(void);

/* ==== End of metrics registry ================================================================================= */

/* ---- Metrics exposition ------------------------------------------------------------------------------------- */

#define PGC_METRICS_PROMETHEUS 1 /* Prometheus text exposition format 0.0.4 */
#define PGC_METRICS_JSON 2       /* one JSON object */

/* Writes pacegc's named metrics to fd: first the runtime metrics, named like Go's runtime/metrics
 * ("/gc/heap/goal:bytes", "/gc/cycles/forced:gc-cycles", ...; docs/OBSERVABILITY.md lists each with its unit,
 * type and pgc_stats source), all taken from ONE pgc_read_stats snapshot; then every metric of the registry above.
 *   PGC_METRICS_PROMETHEUS  "# HELP" and "# TYPE" per family. A Go-style name maps to "pacegc_" + the name with
 *      the leading '/' dropped, every byte outside [a-zA-Z0-9_] replaced by '_' and runs of '_' collapsed
 *      ("/pacegc/..." names get the prefix once); counters end in "_total" like client_golang's Go collector:
 *      /gc/heap/goal:bytes -> pacegc_gc_heap_goal_bytes, /gc/cycles/total:gc-cycles ->
 *      pacegc_gc_cycles_total_gc_cycles_total. /sched/pauses/total/gc:seconds is a histogram from
 *      pgc_stats.pause_hist: cumulative buckets le = 2^i microseconds (in seconds) for i = 0 .. 30 and le="+Inf"
 *      (bucket 31 also counts every longer pause, so it has no finite bound); _sum is pause_total_ns; _count the
 *      pauses counted in pause_hist. Registry metrics keep their names as the label name="..." in the families
 *      pacegc_app_counter, pacegc_app_gauge, pacegc_app_meter_total, pacegc_app_meter_rate{window=...},
 *      pacegc_app_histogram and pacegc_app_timer_seconds (summaries: quantiles 0.5 .. 0.999, _count; no _sum) and
 *      pacegc_app_timer_rate.
 *   PGC_METRICS_JSON  {"<Go-style name>": number, ..., "/sched/pauses/total/gc:seconds": {"buckets": [{"le":
 *      seconds, "count": cumulative}, ..., {"le": "+Inf", "count": n}], "sum": seconds, "count": n}, ...,
 *      "registry": {"<name>": {"kind": "counter", "count": n}, ...}}.
 * Durations are exact decimal seconds; text is UTF-8 (name bytes that are not valid UTF-8 are written as U+FFFD).
 * The text is formatted in metadata memory first and then written with send(2) and MSG_NOSIGNAL on a socket, with
 * write(2) otherwise, SIGPIPE blocked in the calling thread for the write (a pending SIGPIPE it causes is consumed),
 * so a closed peer or a pipe without a reader gives EPIPE and never kills the process; partial writes and EINTR
 * are retried.
 * Returns 0, or EINVAL (unknown format, fd < 0), ENOMEM (nothing written) or the errno of the failed write
 * (EBADF, EPIPE, ...; some bytes may have been written). */
PACEGC_API int pgc_write_metrics(int fd, int format);

#ifdef __cplusplus
}
#endif

#endif /* PACEGC_PACEGC_H */
