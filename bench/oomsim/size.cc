// bench/oomsim/size.cc — see size.h.
#include "size.h"

#include <cstdio>

#include "pacer/config.h"

namespace pacegc::oomsim {

std::optional<uint64_t> ParseSize(std::string_view text, std::string *error) {
  auto fail = [&](const char *why) -> std::optional<uint64_t> {
    *error = "'" + std::string(text) + "' is not a size (" + why +
             "); want a number of bytes or a whole number with B, KiB, MiB, GiB or TiB (e.g. 460MiB, 2GiB)";
    return std::nullopt;
  };
  if (text == "off") return fail("\"off\" is not allowed here");
  uint64_t bytes = 0;
  if (const char *why = pacer::ParseByteSize(text, &bytes); why != nullptr) return fail(why);
  return bytes;
}

std::string FormatSize(uint64_t bytes) {
  static const char *const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (unit < 4 && bytes != 0 && (bytes & 1023) == 0) {
    bytes >>= 10;
    ++unit;
  }
  return std::to_string(bytes) + kUnits[unit];
}

std::string FormatMiB(uint64_t bytes) {
  char buf[32];
  if (bytes % kMiB == 0) {
    snprintf(buf, sizeof(buf), "%llu", static_cast<unsigned long long>(bytes / kMiB));
  } else {
    snprintf(buf, sizeof(buf), "%.1f", static_cast<double>(bytes) / static_cast<double>(kMiB));
  }
  return buf;
}

std::optional<uint64_t> ParseCount(std::string_view text, uint64_t lo, uint64_t hi) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v < lo || v > hi) return std::nullopt;
  return v;
}

}  // namespace pacegc::oomsim
