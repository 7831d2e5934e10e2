// bench/oomsim/size.h — sizes in GOMEMLIMIT syntax for the OOM simulator's command line and worker arguments.
//
// The syntax is pacegc's (and Go's) GOMEMLIMIT: a whole number of bytes, or a whole number with one of the suffixes
// B, KiB, MiB, GiB, TiB. The parent implements it itself instead of calling pgc_parse_memory_limit: linking the
// collector into the parent would start a collector there at load time (pacegc initialises from a constructor and
// exits on a malformed GOGC in the environment), and the parent must stay a plain process that only forks and
// watches. tests/oomsim/parse_test.cc checks that both parsers agree on a table of inputs.
#ifndef PACEGC_BENCH_OOMSIM_SIZE_H_
#define PACEGC_BENCH_OOMSIM_SIZE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pacegc::oomsim {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

// Parses a size ("off" is refused: every size here is finite). Returns nullopt and sets *error to a one-line
// reason (without the name of the argument) on malformed input.
std::optional<uint64_t> ParseSize(std::string_view text, std::string *error);

// The exact size in the largest unit that divides it: 536870912 → "512MiB", 1000 → "1000B". Parses back to itself.
std::string FormatSize(uint64_t bytes);

// Human-readable MiB with one decimal when needed: "460", "12.5".
std::string FormatMiB(uint64_t bytes);

// A whole number in [lo, hi]; nullopt when malformed or out of range.
std::optional<uint64_t> ParseCount(std::string_view text, uint64_t lo, uint64_t hi);

}  // namespace pacegc::oomsim

#endif  // PACEGC_BENCH_OOMSIM_SIZE_H_
