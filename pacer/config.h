// pacer/config.h — parsing the settings users give in the environment, with Go's syntax, and refusing anything
// else clearly. Pure: the settings table (settings/settings.cc) reads the environment, calls these parsers and
// decides what to do with an error (exit 2); pgc_parse_gc_percent and pgc_parse_memory_limit reuse them.
//
//   GOGC        "off" → -1; otherwise a base-10 integer (optional sign) that fits in 32 bits; negative → -1 (off);
//               "-0" is 0, as in Go (strconv.Atoi gives 0, and only a negative percent turns the collector off).
//               Go silently treats a malformed GOGC as 100; pacegc refuses it (a typo should not change pacing).
//   GOMEMLIMIT  "off" or empty → no limit (INT64_MAX); otherwise ^[0-9]+(([KMGT]i)?B)?$: bytes, or an integer with
//               B, KiB, MiB, GiB or TiB (powers of two, case-sensitive). Anything else, or more than INT64_MAX
//               bytes, is refused — exactly Go's rule (Go makes it fatal at start-up, and so does pacegc).
//   PACEGC_AUTOMEMLIMIT  "off" → 0 (no limit from the cgroup); otherwise a decimal fraction RATIO with
//               0 < RATIO <= 1 (digits, at most one '.', no sign or exponent: "0.9", "1", ".5"): the soft limit
//               defaults to RATIO × the cgroup memory limit when GOMEMLIMIT is unset. Default 0.9.
//   GODEBUG     a comma-separated list of key=value, shared with Go programs. pacegc reads gctrace, gcpacertrace
//               and scavtrace, each a base-10 integer from 0 to 2^31-1 (0 = off, anything else on); the last
//               setting of a key wins. Other keys, and entries without '=', are ignored (they may be Go's), as Go
//               ignores keys it does not know. A known key with any other value (empty, signed, not a number) is
//               refused: Go would silently leave such a trace off.
//   switches    PACEGC_ABORT_ON_MISUSE, PACEGC_CPU_LIMITER: on/off, yes/no, true/false, 1/0 (lower case); anything
//               else, the empty value included, is refused (before issue 11 PACEGC_ABORT_ON_MISUSE=yes meant off).
//   PACEGC_SUSPEND_SIGNAL  a signal with no meaning of its own: a real-time signal SIGRTMIN..SIGRTMAX, or SIGUSR1 /
//               SIGUSR2, as a base-10 number (strtol's syntax); empty → the default SIGRTMIN+5. Everything else is
//               refused: SIGINT, SIGTERM, SIGCHLD, SIGPIPE, SIGALRM ... have meanings a program (or its terminal, or
//               the kernel) relies on, and SIGKILL, SIGSTOP, SIGSEGV and SIGBUS cannot or must not be taken over.
//               glibc's own 32 and 33 lie below SIGRTMIN and are refused too. SIGRTMIN and SIGRTMAX are run-time
//               values in glibc, so the caller passes them in.
//   PACEGC_METRICS_LOG  "off" or empty → 0 (no logger); otherwise a duration in a subset of Go's
//               time.ParseDuration syntax: one or more <decimal number><unit> terms, unit ns, us, µs, ms, s, m or h
//               (500ms, 10s, 1m30s, 1.5h), at least 1ms and at most 2^63-1 ns; no sign.
// Every message is one line: "malformed <VARIABLE>=<quoted value>: <what is wrong>; <accepted forms>".
#ifndef PACEGC_PACER_CONFIG_H_
#define PACEGC_PACER_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace pacegc::pacer {

// A setting's value as error messages show it: in double quotes, with \" \\ \n \r \t and \xNN for every other byte
// outside printable ASCII, so a value with a newline or a terminal escape cannot break or forge the one-line
// message (Go's %q does the same). Every "malformed <VARIABLE>=..." message uses it.
std::string QuoteSetting(std::string_view value);

// On success stores the value and returns true; otherwise fills *error with one line naming the variable, the
// value and the accepted forms, and returns false.
bool ParseGogc(std::string_view value, int *percent, std::string *error);
bool ParseGomemlimit(std::string_view value, int64_t *bytes, std::string *error);
// GOMEMLIMIT's syntax for another variable (PACEGC_HARD_MEMLIMIT): the message names `name`. Empty is off here too;
// a caller that refuses an empty value checks first.
bool ParseMemorySize(std::string_view name, std::string_view value, int64_t *bytes, std::string *error);
constexpr double kDefaultAutoMemoryLimitRatio = 0.9;
bool ParseAutomemlimit(std::string_view value, double *ratio, std::string *error);

// The soft limit derived from a cgroup memory limit: ratio × cgroup_bytes rounded down, at least 1 byte; INT64_MAX
// (no limit) when cgroup_bytes is 0 (no cgroup limit) or ratio is 0 (PACEGC_AUTOMEMLIMIT=off).
int64_t AutoMemoryLimit(uint64_t cgroup_bytes, double ratio);

// The size syntax of GOMEMLIMIT without "off": ^[0-9]+(([KMGT]i)?B)?$, at most INT64_MAX bytes. Returns nullptr
// and stores the bytes, or returns why the text is not such a size (a short phrase, for the caller's message).
// Shared with the OOM simulator's own options (bench/oomsim/size.cc), so both accept exactly the same sizes.
const char *ParseByteSize(std::string_view text, uint64_t *bytes);

// The GODEBUG keys pacegc knows; 0 = off.
struct GodebugSettings {
  int gctrace = 0;
  int gcpacertrace = 0;
  int scavtrace = 0;
};
// On success updates the known keys present in value (others keep their value) and returns true; on a malformed
// known key leaves *settings untouched, fills *error (one line: GODEBUG, the key, the value, the accepted form).
bool ParseGodebug(std::string_view value, GodebugSettings *settings, std::string *error);

// A switch named `name` (the variable, for the message): on/yes/true/1 → true, off/no/false/0 → false.
bool ParseSwitch(std::string_view name, std::string_view value, bool *on, std::string *error);

// PACEGC_SUSPEND_SIGNAL. rtmin and rtmax are SIGRTMIN and SIGRTMAX of the running C library; the default, for an
// empty value, is rtmin + 5.
int DefaultSuspendSignal(int rtmin);
bool ParseSuspendSignal(std::string_view value, int rtmin, int rtmax, int *signal, std::string *error);

// PACEGC_METRICS_LOG: the metrics logger's interval in ns, 0 = off.
constexpr int64_t kMinMetricsLogIntervalNs = 1'000'000;  // 1 ms: a shorter interval would flood stderr
bool ParseMetricsLogInterval(std::string_view value, int64_t *interval_ns, std::string *error);

}  // namespace pacegc::pacer

#endif  // PACEGC_PACER_CONFIG_H_
