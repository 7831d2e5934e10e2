// pacer/config.h — parsing the settings users give in the environment, with Go's syntax, and refusing anything
// else clearly. Pure: the caller reads the environment and decides what to do with an error.
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

}  // namespace pacegc::pacer

#endif  // PACEGC_PACER_CONFIG_H_
