// pacer/config.cc — see config.h.
#include "pacer/config.h"

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>

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
  return ParseMemorySize("GOMEMLIMIT", value, bytes, error);
}

bool ParseMemorySize(std::string_view name, std::string_view value, int64_t *bytes, std::string *error) {
  if (value.empty() || value == "off") {
    *bytes = INT64_MAX;
    return true;
  }
  uint64_t v = 0;
  if (const char *why = ParseByteSize(value, &v); why != nullptr) {
    const std::string n(name);
    *error = "malformed " + n + "=" + QuoteSetting(value) + ": " + why +
             "; want \"off\", a number of bytes, or a whole number with one of the suffixes B, KiB, MiB, GiB, TiB "
             "(e.g. " + n + "=460MiB, " + n + "=2GiB)";
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

bool ParseSwitch(std::string_view name, std::string_view value, bool *on, std::string *error) {
  if (value == "on" || value == "yes" || value == "true" || value == "1") {
    *on = true;
    return true;
  }
  if (value == "off" || value == "no" || value == "false" || value == "0") {
    *on = false;
    return true;
  }
  *error = "malformed " + std::string(name) + "=" + QuoteSetting(value) +
           ": want \"on\" or \"off\" (also accepted: yes/no, true/false, 1/0)";
  return false;
}

int DefaultSuspendSignal(int rtmin) { return rtmin + 5; }

bool ParseSuspendSignal(std::string_view value, int rtmin, int rtmax, int *signal, std::string *error) {
  const int def = DefaultSuspendSignal(rtmin);
  if (value.empty()) {
    *signal = def;
    return true;
  }
  std::string text(value);  // strtol needs a terminated string
  char *end = nullptr;
  errno = 0;
  long v = strtol(text.c_str(), &end, 10);
  bool number = errno == 0 && end != text.c_str() && *end == '\0';
  if (!number || !((v >= rtmin && v <= rtmax) || v == SIGUSR1 || v == SIGUSR2)) {
    char tail[256];
    snprintf(tail, sizeof(tail),
             ": want a signal with no meaning of its own, a real-time signal from %d to %d (SIGRTMIN..SIGRTMAX) or "
             "SIGUSR1 (%d) or SIGUSR2 (%d); default %d (SIGRTMIN+5)",
             rtmin, rtmax, SIGUSR1, SIGUSR2, def);
    *error = "malformed PACEGC_SUSPEND_SIGNAL=" + QuoteSetting(value) + tail;
    return false;
  }
  *signal = static_cast<int>(v);
  return true;
}

bool ParseMetricsLogInterval(std::string_view value, int64_t *interval_ns, std::string *error) {
  if (value.empty() || value == "off") {
    *interval_ns = 0;
    return true;
  }
  auto fail = [&](const char *why) {
    *error = "malformed PACEGC_METRICS_LOG=" + QuoteSetting(value) + ": " + why +
             "; want \"off\" or a duration of at least 1ms in Go's syntax: one or more decimal numbers each with a "
             "unit ns, us, ms, s, m or h (e.g. PACEGC_METRICS_LOG=500ms, PACEGC_METRICS_LOG=10s, "
             "PACEGC_METRICS_LOG=1m, PACEGC_METRICS_LOG=1m30s)";
    return false;
  };
  struct Unit {
    std::string_view name;
    int64_t ns;
  };
  static constexpr Unit kUnits[] = {{"ns", 1},
                                    {"us", 1'000},
                                    {"\xC2\xB5s", 1'000},  // U+00B5 micro sign
                                    {"\xCE\xBCs", 1'000},  // U+03BC Greek small letter mu
                                    {"ms", 1'000'000},
                                    {"s", 1'000'000'000},
                                    {"m", 60'000'000'000},
                                    {"h", 3'600'000'000'000}};
  // Exact integer arithmetic (Go's rule): a term is whole × unit + fraction × unit, the fraction's digits kept
  // as numerator / 10^k (digits past the 18th cannot change a value ≥ 1 ns and are ignored).
  constexpr unsigned __int128 kMaxNs = INT64_MAX;
  unsigned __int128 total_ns = 0;
  size_t i = 0;
  while (i < value.size()) {
    unsigned __int128 whole = 0;
    uint64_t frac = 0;
    uint64_t frac_scale = 1;
    size_t digits = 0;
    while (i < value.size() && value[i] >= '0' && value[i] <= '9') {
      whole = whole * 10 + static_cast<unsigned>(value[i] - '0');
      if (whole > kMaxNs) return fail("longer than 2^63-1 ns");
      ++i;
      ++digits;
    }
    if (i < value.size() && value[i] == '.') {
      ++i;
      while (i < value.size() && value[i] >= '0' && value[i] <= '9') {
        if (frac_scale < 1'000'000'000'000'000'000ull) {
          frac = frac * 10 + static_cast<uint64_t>(value[i] - '0');
          frac_scale *= 10;
        }
        ++i;
        ++digits;
      }
    }
    if (digits == 0) {
      return fail(i == 0 && (value[0] == '-' || value[0] == '+') ? "a sign is not accepted" : "expected a number");
    }
    // A unit: the longest known name that follows ("ms" before "m").
    size_t unit_len = 0;
    int64_t unit_ns = 0;
    for (const Unit &u : kUnits) {
      if (value.substr(i, u.name.size()) == u.name && u.name.size() > unit_len) {
        unit_len = u.name.size();
        unit_ns = u.ns;
      }
    }
    if (unit_len == 0) return fail(i == value.size() ? "missing unit" : "unknown unit");
    i += unit_len;
    auto unit = static_cast<unsigned __int128>(unit_ns);
    total_ns += whole * unit + static_cast<unsigned __int128>(frac) * unit / frac_scale;
    if (total_ns > kMaxNs) return fail("longer than 2^63-1 ns");
  }
  if (total_ns < static_cast<unsigned __int128>(kMinMetricsLogIntervalNs)) return fail("shorter than 1ms");
  *interval_ns = static_cast<int64_t>(total_ns);
  return true;
}

}  // namespace pacegc::pacer
