// bench/oomsim/protocol.h — parsing the workers' output lines (bench/oomsim/PROTOCOL.md): an event word followed by
// `key=value` fields separated by single spaces. Unknown keys are kept and ignored by the consumers, so a worker may
// add fields; `na` (a value the runtime cannot report) reads as "absent".
#ifndef PACEGC_BENCH_OOMSIM_PROTOCOL_H_
#define PACEGC_BENCH_OOMSIM_PROTOCOL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace pacegc::oomsim {

struct Line {
  std::string event;  // start, phase, sample, phasedone, result (or anything else)
  std::map<std::string, std::string> fields;

  std::optional<uint64_t> U64(const std::string &key) const;
  std::optional<double> Double(const std::string &key) const;
  std::optional<std::string> Text(const std::string &key) const;
};

// Parses one line (without its '\n'). Returns nullopt for an empty line or a word that is not a plain identifier;
// tokens without '=' after the event word are ignored.
std::optional<Line> ParseLine(std::string_view text);

}  // namespace pacegc::oomsim

#endif  // PACEGC_BENCH_OOMSIM_PROTOCOL_H_
