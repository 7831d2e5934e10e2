// bench/oomsim/usage_error.h — the one error type of the command line: malformed input the user can fix.
// main() prints what() as one line on stderr, prefixed with "pacegc-oomsim: ", and exits with status 2.
#ifndef PACEGC_BENCH_OOMSIM_USAGE_ERROR_H_
#define PACEGC_BENCH_OOMSIM_USAGE_ERROR_H_

#include <stdexcept>
#include <string>

namespace pacegc::oomsim {

class UsageError : public std::runtime_error {
 public:
  explicit UsageError(const std::string &message) : std::runtime_error(message) {}
};

}  // namespace pacegc::oomsim

#endif  // PACEGC_BENCH_OOMSIM_USAGE_ERROR_H_
