// pacer/config.cc — see config.h.
#include "pacer/config.h"

#include <climits>

namespace pacegc::pacer {

std::string QuoteSetting(std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char c : value) {
    auto b = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (b >= 0x20 && b < 0x7f) {
          out += c;
        } else {
          out += "\\x";
          out += kHex[b >> 4];
          out += kHex[b & 15];
        }
    }
  }
  out += '"';
  return out;
}

bool ParseGogc(std::string_view value, int *percent, std::string *error) {
  if (value == "off") {
    *percent = -1;
    return true;
  }
  std::string_view digits = value;
  bool negative = false;
  if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) {
    negative = digits[0] == '-';
    digits.remove_prefix(1);
  }
  int64_t v = 0;
  bool ok = !digits.empty();
  for (char c : digits) {
    if (c < '0' || c > '9') {
      ok = false;
      break;
    }
    v = v * 10 + (c - '0');
    if (v > int64_t{INT_MAX} + (negative ? 1 : 0)) {
      ok = false;
      break;
    }
  }
  if (!ok) {
    *error = "malformed GOGC=" + QuoteSetting(value) +
             ": want \"off\" or a whole number of percent that fits in 32 bits (e.g. GOGC=100, GOGC=50, GOGC=off)";
    return false;
  }
  *percent = negative && v != 0 ? -1 : static_cast<int>(v);  // "-0" is 0, as in Go
  return true;
}

const char *ParseByteSize(std::string_view text, uint64_t *bytes) {
  size_t n = 0;
  while (n < text.size() && text[n] >= '0' && text[n] <= '9') ++n;
  if (n == 0) return "it does not start with a digit";
  std::string_view suffix = text.substr(n);
  int shift;
  if (suffix.empty() || suffix == "B") {
    shift = 0;
  } else if (suffix == "KiB") {
    shift = 10;
  } else if (suffix == "MiB") {
    shift = 20;
  } else if (suffix == "GiB") {
    shift = 30;
  } else if (suffix == "TiB") {
    shift = 40;
  } else {
    return "unknown unit";
  }
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t d = static_cast<uint64_t>(text[i] - '0');
    if (v > (uint64_t{INT64_MAX} - d) / 10) return "more than 2^63-1 bytes";
    v = v * 10 + d;
  }
  if (shift != 0 && v > (uint64_t{INT64_MAX} >> shift)) return "more than 2^63-1 bytes";
  *bytes = v << shift;
  return nullptr;
}

bool ParseGomemlimit(std::string_view value, int64_t *bytes, std::string *error) {
  if (value.empty() || value == "off") {
    *bytes = INT64_MAX;
    return true;
  }
  uint64_t v = 0;
  if (const char *why = ParseByteSize(value, &v); why != nullptr) {
    *error = "malformed GOMEMLIMIT=" + QuoteSetting(value) + ": " + why +
             "; want \"off\", a number of bytes, or a whole number with one of the suffixes B, KiB, MiB, GiB, TiB "
             "(e.g. GOMEMLIMIT=460MiB, GOMEMLIMIT=2GiB)";
    return false;
  }
  *bytes = static_cast<int64_t>(v);
  return true;
}

bool ParseAutomemlimit(std::string_view value, double *ratio, std::string *error) {
  if (value == "off") {
    *ratio = 0.0;
    return true;
  }
  // [0-9]*(.[0-9]*)? with at least one digit, parsed exactly enough: at most 18 significant digits.
  double v = 0.0, scale = 1.0;
  bool digit = false, dot = false, ok = !value.empty() && value.size() <= 20;
  for (char c : value) {
    if (!ok) break;
    if (c == '.' && !dot) {
      dot = true;
    } else if (c >= '0' && c <= '9') {
      digit = true;
      if (dot) {
        scale /= 10;
        v += (c - '0') * scale;
      } else {
        v = v * 10 + (c - '0');
      }
    } else {
      ok = false;
    }
  }
  if (!ok || !digit || !(v > 0.0) || v > 1.0) {
    *error = "malformed PACEGC_AUTOMEMLIMIT=" + QuoteSetting(value) +
             ": want \"off\" or a fraction of the cgroup memory limit greater than 0 and at most 1 "
             "(e.g. PACEGC_AUTOMEMLIMIT=0.9, the default; PACEGC_AUTOMEMLIMIT=off)";
    return false;
  }
  *ratio = v;
  return true;
}

int64_t AutoMemoryLimit(uint64_t cgroup_bytes, double ratio) {
  if (cgroup_bytes == 0 || !(ratio > 0)) return INT64_MAX;
  double bytes = static_cast<double>(cgroup_bytes) * (ratio < 1 ? ratio : 1.0);
  if (bytes >= 9.2e18) return INT64_MAX - 1;  // a limit, even if no machine has that much
  return bytes < 1 ? 1 : static_cast<int64_t>(bytes);
}

bool ParseGodebug(std::string_view value, GodebugSettings *settings, std::string *error) {
  GodebugSettings parsed = *settings;
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view entry = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;  // not key=value: Go skips it too
    std::string_view key = entry.substr(0, eq);
    std::string_view v = entry.substr(eq + 1);
    int *slot = key == "gctrace"        ? &parsed.gctrace
                : key == "gcpacertrace" ? &parsed.gcpacertrace
                : key == "scavtrace"    ? &parsed.scavtrace
                                        : nullptr;
    if (slot == nullptr) continue;  // a key for Go or for a later version
    int64_t n = 0;
    bool ok = !v.empty();
    for (char c : v) {
      if (c < '0' || c > '9' || (n = n * 10 + (c - '0')) > INT_MAX) {
        ok = false;
        break;
      }
    }
    if (!ok) {
      std::string k(key);
      *error = "malformed GODEBUG: " + k + "=" + QuoteSetting(v) + " is not a non-negative integer; want " + k +
               "=0 (off) or " + k +
               "=1 (on), in a comma-separated list of key=value (e.g. GODEBUG=gctrace=1,scavtrace=1)";
      return false;
    }
    *slot = static_cast<int>(n);
  }
  *settings = parsed;
  return true;
}

}  // namespace pacegc::pacer
