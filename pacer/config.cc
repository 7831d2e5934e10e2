// pacer/config.cc — see config.h.
#include "pacer/config.h"

#include <climits>

namespace pacegc::pacer {

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
    *error = "malformed GOGC=\"" + std::string(value) +
             "\": want \"off\" or a whole number of percent that fits in 32 bits (e.g. GOGC=100, GOGC=50, GOGC=off)";
    return false;
  }
  *percent = negative ? -1 : static_cast<int>(v);
  return true;
}

bool ParseGomemlimit(std::string_view value, int64_t *bytes, std::string *error) {
  if (value.empty() || value == "off") {
    *bytes = INT64_MAX;
    return true;
  }
  auto fail = [&](const char *why) {
    *error = "malformed GOMEMLIMIT=\"" + std::string(value) + "\": " + why +
             "; want \"off\", a number of bytes, or a whole number with one of the suffixes B, KiB, MiB, GiB, TiB "
             "(e.g. GOMEMLIMIT=460MiB, GOMEMLIMIT=2GiB)";
    return false;
  };
  size_t n = 0;
  while (n < value.size() && value[n] >= '0' && value[n] <= '9') ++n;
  if (n == 0) return fail("it does not start with a digit");
  std::string_view suffix = value.substr(n);
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
    return fail("unknown unit");
  }
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (v > (uint64_t{INT64_MAX} - (value[i] - '0')) / 10) return fail("more than 2^63-1 bytes");
    v = v * 10 + static_cast<uint64_t>(value[i] - '0');
  }
  if (shift != 0 && v > (uint64_t{INT64_MAX} >> shift)) return fail("more than 2^63-1 bytes");
  *bytes = static_cast<int64_t>(v << shift);
  return true;
}

}  // namespace pacegc::pacer
