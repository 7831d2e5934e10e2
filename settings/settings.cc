// settings/settings.cc — see settings.h. The table below is the one list of pacegc's environment variables.
#include "settings/settings.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "base/check.h"

namespace pacegc::settings {
namespace {

using std::string;
using std::string_view;

// The switches' accepted values, shared by their rows.
#define PACEGC_SWITCH_VALUES "`on`/`off`, `yes`/`no`, `true`/`false`, `1`/`0`"

// One entry per variable, in reading order: name, accepted values, default, meaning (Markdown, shown as is in the
// README), parser. Keep each parser a call of a pacer/config.h parser that stores into fields of Values.
constexpr Entry kTable[] = {
    {"GOGC",
     "`off`, or a whole number of percent that fits in 32 bits, optional sign; negative means off (`-0` is 0, as "
     "in Go)",
     "`100`",
     "how far the heap may grow past the live data (plus the stacks and globals scanned) before the next "
     "collection, in percent; `off` leaves collections to the memory limit. `pgc_set_gc_percent` changes it at run "
     "time",
     [](string_view v, Values *s, string *e) { return pacer::ParseGogc(v, &s->gc_percent, e); }},
    {"GOMEMLIMIT",
     "`off` (no limit), a number of bytes, or a whole number with `B`, `KiB`, `MiB`, `GiB`, `TiB` (powers of two, "
     "case-sensitive), at most 2^63−1 bytes; empty is unset, as in Go",
     "unset: see `PACEGC_AUTOMEMLIMIT`",
     "the soft memory limit: collections come earlier as the memory pacegc holds nears it. Set (`off` included), it "
     "wins over the limit derived from the cgroup; `pgc_set_memory_limit` changes it at run time",
     [](string_view v, Values *s, string *e) {
       s->memory_limit_set = !v.empty();  // empty: unset, as in Go
       return pacer::ParseGomemlimit(v, &s->memory_limit_bytes, e);
     }},
    {"PACEGC_AUTOMEMLIMIT",
     "`off`, or a fraction `RATIO` with 0 < RATIO ≤ 1 (`0.9`, `1`, `.5`: digits and one `.`)",
     "`0.9`",
     "while `GOMEMLIMIT` is unset and no `pgc_set_memory_limit` was made, the soft limit is RATIO × the lowest "
     "cgroup memory limit of the process's cgroup and its ancestors (re-read every second); no cgroup limit means "
     "no soft limit. An explicit `GOMEMLIMIT` (`off` included) always wins",
     [](string_view v, Values *s, string *e) { return pacer::ParseAutomemlimit(v, &s->auto_memory_limit_ratio, e); }},
    {"PACEGC_HARD_MEMLIMIT",
     "`off` (no hard limit), a number of bytes, or a whole number with `B`, `KiB`, `MiB`, `GiB`, `TiB` (as "
     "`GOMEMLIMIT`); empty is refused",
     "`off`",
     "the hard memory limit: what the soft limit counts never passes it. An allocation that would pass it collects, "
     "returns free pages to the OS and retries once, then fails (the OOM handler, then `NULL` with `ENOMEM`; C++: "
     "`std::bad_alloc`). Pacing aims at the lower of the two limits. `pgc_set_hard_memory_limit` changes it at run "
     "time",
     [](string_view v, Values *s, string *e) {
       if (v.empty()) {
         *e = "malformed PACEGC_HARD_MEMLIMIT=\"\": empty; want \"off\", a number of bytes, or a whole number with "
              "one of the suffixes B, KiB, MiB, GiB, TiB (e.g. PACEGC_HARD_MEMLIMIT=512MiB)";
         return false;
       }
       return pacer::ParseMemorySize("PACEGC_HARD_MEMLIMIT", v, &s->hard_memory_limit_bytes, e);
     }},
    {"PACEGC_SUSPEND_SIGNAL",
     "a signal with no meaning of its own: a real-time signal from SIGRTMIN to SIGRTMAX (34 to 64 with glibc), or "
     "SIGUSR1 (10) or SIGUSR2 (12); empty is the default",
     "`SIGRTMIN+5` (39 with glibc)",
     "the signal that stops threads for a collection. SIGINT, SIGTERM, SIGCHLD, SIGPIPE, ... and glibc's own 32 "
     "and 33 are refused, and so is a signal whose handler cannot be installed",
     [](string_view v, Values *s, string *e) {
       return pacer::ParseSuspendSignal(v, SIGRTMIN, SIGRTMAX, &s->suspend_signal, e);
     }},
    {"GODEBUG",
     "comma-separated `key=value`; pacegc reads `gctrace`, `gcpacertrace`, `scavtrace` (a whole number: `0` off, "
     "anything else on) and ignores other keys (Go's) and entries without `=`",
     "all off",
     "trace lines on stderr: one per collection (`gctrace`), the pacer's (`gcpacertrace`), the scavenger's "
     "(`scavtrace`); see docs/OBSERVABILITY.md. A known key whose value is not a whole number is refused",
     [](string_view v, Values *s, string *e) { return pacer::ParseGodebug(v, &s->godebug, e); }},
    {"PACEGC_TRACE",
     "the path of a file (not empty)",
     "off",
     "Chrome trace-event JSON of every cycle's phases, written to that file, truncated at start-up "
     "(docs/OBSERVABILITY.md, \"Traces\"); a path that cannot be opened for writing is refused",
     [](string_view v, Values *s, string *e) {
       if (v.empty()) *e = "PACEGC_TRACE is empty: want the path of the file to write the Chrome trace-event JSON to";
       s->trace_path = v.data();  // the lookup's NUL-terminated string
       return !v.empty();
     }},
    {"PACEGC_ABORT_ON_MISUSE",
     PACEGC_SWITCH_VALUES,
     "`off` (verify builds always abort)",
     "API misuse (a pointer pacegc did not allocate, or already freed, given to `pgc_free`, ...) aborts the "
     "process after its message instead of being reported and ignored",
     [](string_view v, Values *s, string *e) {
       return pacer::ParseSwitch("PACEGC_ABORT_ON_MISUSE", v, &s->abort_on_misuse, e);
     }},
    {"PACEGC_CPU_LIMITER",
     PACEGC_SWITCH_VALUES,
     "`on`",
     "`off` disables the GC CPU limiter (for experiments: a limit below the live heap then collects at every "
     "allocation slow path)",
     [](string_view v, Values *s, string *e) { return pacer::ParseSwitch("PACEGC_CPU_LIMITER", v, &s->cpu_limiter, e); }},
    {"PACEGC_CONCURRENT",
     "`off`, `on` or `always`; empty is the default",
     "`on`",
     "`on`: mostly-concurrent marking (a short pause to scan the roots, marking while the program runs, a final "
     "pause for what it wrote meanwhile) for cycles expected to mark at least 16 MiB (what the last cycle marked; "
     "before the first, what is in use: below that a stop-the-world cycle is a pause of a few ms) while the program "
     "may use 2 CPUs or more (its affinity mask and cgroup CPU quota: with less, the marking would take the CPU the "
     "program runs on), where the kernel "
     "has userfaultfd write-protection with `PAGEMAP_SCAN` (Linux >= 6.7); elsewhere a one-line notice under `GODEBUG=gctrace=1` and stop-the-world "
     "cycles. `always`: the same for every cycle (tests, experiments). `off`: every cycle is one stop-the-world pause",
     [](string_view v, Values *s, string *e) {
       if (v == "off") {
         s->concurrent = Values::Concurrent::kOff;
       } else if (v.empty() || v == "on") {
         s->concurrent = Values::Concurrent::kOn;
       } else if (v == "always") {
         s->concurrent = Values::Concurrent::kAlways;
       } else {
         *e = "malformed PACEGC_CONCURRENT=" + pacer::QuoteSetting(v) +
              ": accepted values are \"off\" (stop-the-world cycles), \"on\" (the default: concurrent marking "
              "for heaps of 16 MiB and more, with 2 CPUs or more to use) and \"always\" (concurrent marking for every cycle)";
         return false;
       }
       return true;
     }},
    {"PACEGC_FINALIZERS",
     "`thread` or `on-demand`; empty is the default",
     "`thread`",
     "`thread`: finalizers run on one dedicated thread, `pacegc-fin` (Go's model); `on-demand`: they run only when "
     "the program calls `pgc_run_finalizers()`, on its thread",
     [](string_view v, Values *s, string *e) {
       if (v.empty() || v == "thread") {
         s->finalizers_on_demand = false;
       } else if (v == "on-demand") {
         s->finalizers_on_demand = true;
       } else {
         *e = "malformed PACEGC_FINALIZERS=" + pacer::QuoteSetting(v) +
              ": accepted values are \"thread\" (the default: finalizers run on a dedicated thread) and "
              "\"on-demand\" (they run only in pgc_run_finalizers)";
         return false;
       }
       return true;
     }},
    {"PACEGC_MALLOC",
     "`manual`, `collect` or `find-leak`; empty is the default",
     "`manual`",
     "the mode of `libpacegc-malloc.so`, the drop-in allocator (docs/MALLOC.md); read only there. `manual`: "
     "blocks are freed by `free`, scanned for pointers to collected objects, and counted under `GOMEMLIMIT`. "
     "`collect`: `malloc` returns collected memory; `free` is honoured, and blocks nothing points to are "
     "reclaimed. `find-leak`: as `manual`, and sampled blocks that become unreachable without being freed are "
     "reported on stderr by allocation site, at each collection and at exit (`PACEGC_LEAK_SAMPLE`)",
     [](string_view v, Values *s, string *e) {
       if (v.empty() || v == "manual") {
         s->malloc_mode = Values::MallocMode::kManual;
         return true;
       }
       if (v == "collect") {
         s->malloc_mode = Values::MallocMode::kCollect;
         return true;
       }
       if (v == "find-leak") {
         s->malloc_mode = Values::MallocMode::kFindLeak;
         return true;
       }
       *e = "malformed PACEGC_MALLOC=" + pacer::QuoteSetting(v) +
            ": accepted values are \"manual\" (the default), \"collect\" and \"find-leak\"";
       return false;
     }},
    {"PACEGC_LEAK_SAMPLE",
     "a number of bytes, at least 1, or a whole number with `B`, `KiB`, `MiB`, `GiB` (as `GOMEMLIMIT`); empty is the "
     "default",
     "`512KiB`",
     "`PACEGC_MALLOC=find-leak` only: one allocation is sampled per this many bytes allocated, on average (a "
     "Poisson process over bytes, as Go's `MemProfileRate`); `1` samples every allocation. Sampled blocks cost a "
     "stack trace and a collected block each",
     [](string_view v, Values *s, string *e) {
       if (v.empty()) return true;
       uint64_t bytes = 0;
       const char *why = pacer::ParseByteSize(v, &bytes);
       if (why == nullptr && bytes == 0) why = "zero";
       if (why != nullptr) {
         *e = "malformed PACEGC_LEAK_SAMPLE=" + pacer::QuoteSetting(v) + ": " + why +
              "; want a number of bytes of at least 1, or a whole number with one of the suffixes B, KiB, MiB, GiB "
              "(e.g. PACEGC_LEAK_SAMPLE=512KiB; 1 samples every allocation)";
         return false;
       }
       s->leak_sample_bytes = static_cast<int64_t>(bytes);
       return true;
     }},
    {"PACEGC_METRICS_LOG",
     "a Go duration of at least 1ms (`500ms`, `10s`, `1m`, `1m30s`), or `off`; empty is off",
     "off",
     "every metric of the go-metrics registry printed to stderr at that interval by a logger thread "
     "(docs/OBSERVABILITY.md)",
     [](string_view v, Values *s, string *e) {
       return pacer::ParseMetricsLogInterval(v, &s->metrics_log_interval_ns, e);
     }},
};

#undef PACEGC_SWITCH_VALUES

Values g_values;  // written once by ReadEnvironment (g_once), read-only afterwards
pthread_once_t g_once = PTHREAD_ONCE_INIT;

void ReadEnvironment() {
  string error;
  if (!Read([](const char *name) -> const char * { return getenv(name); }, &g_values, &error)) {
    internal::ExitMalformedSetting("%s", error.c_str());
  }
}

}  // namespace

std::span<const Entry> Table() { return kTable; }

bool Read(const char *(*lookup)(const char *name), Values *values, string *error) {
  if (values->suspend_signal == 0) values->suspend_signal = pacer::DefaultSuspendSignal(SIGRTMIN);
  for (const Entry &entry : kTable) {
    const char *value = lookup(entry.name);
    if (value != nullptr && !entry.parse(value, values, error)) return false;
  }
  return true;
}

const Values &Get() {
  pthread_once(&g_once, ReadEnvironment);
  return g_values;
}

}  // namespace pacegc::settings
