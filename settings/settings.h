// settings/settings.h — the settings table: every environment variable pacegc reads, declared once with its name,
// its parser, its default and its documented meaning (mimalloc's options.c, Go's GOGC/GOMEMLIMIT/GODEBUG).
//
// Rules:
//   - The environment is read at one point: the first call of Get(), which library initialisation makes (the
//     collector's load-time constructor, gc/api.cc, and the metrics registry's, metrics/registry.cc, whichever runs
//     first). Every entry of kTable is read then, in table order, and never again: setting a variable later with
//     setenv has no effect (the C API's setters change what may change at run time).
//   - A malformed value is never a silent default: the first malformed entry, in table order, prints one line
//     ("pacegc: malformed <VARIABLE>=<quoted value>: ... <accepted forms>") and the process exits with status 2
//     (ExitMalformedSetting). A few settings can only be refused by the mechanism that uses them (PACEGC_TRACE: a
//     path that cannot be opened; PACEGC_SUSPEND_SIGNAL: a handler that cannot be installed); they exit 2 the same
//     way from there.
//   - The parsers are pacer/config.h's (pure); this file adds only the environment and where each value goes.
//   - This is the only file of the library that calls getenv.
//
// Adding a variable: one field in Values (with its default), one entry in kTable (settings.cc), one row in the
// README's environment table (tests/unit/settings_test.cc fails until the README shows the table as it is), and
// malformed and valid cases in tests/unit/env_test.cc (it fails for an entry without them).
//
// Layer: below gc/ and metrics/ (both read it), above pacer/ (the parsers) and base/ (the exit message).
#ifndef PACEGC_SETTINGS_SETTINGS_H_
#define PACEGC_SETTINGS_SETTINGS_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "pacer/config.h"

namespace pacegc::settings {

// The values the library starts with: each field's initialiser is the documented default. Written once, by the
// first Get() (under a pthread_once), read-only afterwards.
struct Values {
  int gc_percent = 100;                    // GOGC; -1 = off
  int64_t memory_limit_bytes = INT64_MAX;  // GOMEMLIMIT; INT64_MAX = no limit
  bool memory_limit_set = false;           // GOMEMLIMIT was set and not empty ("off" included): it wins over the cgroup
  double auto_memory_limit_ratio = pacer::kDefaultAutoMemoryLimitRatio;  // PACEGC_AUTOMEMLIMIT; 0 = off
  int64_t hard_memory_limit_bytes = INT64_MAX;  // PACEGC_HARD_MEMLIMIT; INT64_MAX = none
  int suspend_signal = 0;                  // PACEGC_SUSPEND_SIGNAL; 0 until read, then SIGRTMIN+5 unless set
  pacer::GodebugSettings godebug;          // GODEBUG's gctrace, gcpacertrace, scavtrace; 0 = off
  const char *trace_path = nullptr;        // PACEGC_TRACE; nullptr = off. Points into the environment block.
  bool abort_on_misuse = false;            // PACEGC_ABORT_ON_MISUSE (verify builds abort on misuse regardless)
  bool cpu_limiter = true;                 // PACEGC_CPU_LIMITER
  enum class Concurrent { kOff, kOn, kAlways } concurrent = Concurrent::kOn;  // PACEGC_CONCURRENT
  int64_t metrics_log_interval_ns = 0;     // PACEGC_METRICS_LOG; 0 = off
  bool finalizers_on_demand = false;       // PACEGC_FINALIZERS=on-demand (default: thread)
  // PACEGC_MALLOC: the drop-in allocator's mode (malloc/malloc.cc); read only under it.
  enum class MallocMode { kManual, kCollect, kFindLeak } malloc_mode = MallocMode::kManual;
  // PACEGC_LEAK_SAMPLE: find-leak mode samples one allocation per this many bytes allocated, on average.
  int64_t leak_sample_bytes = 512 * 1024;
};

// One environment variable. The three text fields are Markdown: the README's environment table is these rows.
struct Entry {
  const char *name;
  const char *accepted;      // the accepted values
  const char *default_text;  // the default, as documented (Values' initialiser says it in code)
  const char *meaning;       // what it does
  // Parses a value that is set (possibly empty) into *values; false with the one-line message in *error.
  bool (*parse)(std::string_view value, Values *values, std::string *error);
};

// Every variable, in reading order.
std::span<const Entry> Table();

// Reads the table with `lookup` in place of getenv (nullptr = unset). Returns true, or false with the first
// malformed entry's message in *error (*values then holds the entries read before it). Pure apart from lookup.
bool Read(const char *(*lookup)(const char *name), Values *values, std::string *error);

// The settings from the environment: read on the first call (a malformed value exits 2 there), the same values
// on every later call. Thread-safe; cheap after the first call (a pthread_once check).
const Values &Get();

}  // namespace pacegc::settings

#endif  // PACEGC_SETTINGS_SETTINGS_H_
