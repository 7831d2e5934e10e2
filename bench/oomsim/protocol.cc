// bench/oomsim/protocol.cc — see protocol.h.
#include "protocol.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace pacegc::oomsim {

std::optional<Line> ParseLine(std::string_view text) {
  while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
  size_t pos = 0;
  auto next_token = [&]() -> std::string_view {
    while (pos < text.size() && text[pos] == ' ') ++pos;
    size_t start = pos;
    while (pos < text.size() && text[pos] != ' ') ++pos;
    return text.substr(start, pos - start);
  };
  std::string_view event = next_token();
  if (event.empty()) return std::nullopt;
  for (char c : event) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return std::nullopt;
  }
  Line line;
  line.event = std::string(event);
  for (std::string_view tok = next_token(); !tok.empty(); tok = next_token()) {
    size_t eq = tok.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    line.fields[std::string(tok.substr(0, eq))] = std::string(tok.substr(eq + 1));
  }
  return line;
}

std::optional<std::string> Line::Text(const std::string &key) const {
  auto it = fields.find(key);
  if (it == fields.end() || it->second == "na") return std::nullopt;
  return it->second;
}

std::optional<uint64_t> Line::U64(const std::string &key) const {
  auto t = Text(key);
  if (!t || t->empty() || (*t)[0] < '0' || (*t)[0] > '9') return std::nullopt;
  errno = 0;
  char *end = nullptr;
  unsigned long long v = strtoull(t->c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return std::nullopt;
  return static_cast<uint64_t>(v);
}

std::optional<double> Line::Double(const std::string &key) const {
  auto t = Text(key);
  if (!t || t->empty()) return std::nullopt;
  char *end = nullptr;
  double v = strtod(t->c_str(), &end);
  if (*end != '\0' || !std::isfinite(v)) return std::nullopt;
  return v;
}

}  // namespace pacegc::oomsim
