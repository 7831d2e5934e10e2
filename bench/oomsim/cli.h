// bench/oomsim/cli.h — the command line of pacegc-oomsim.
//
//   pacegc-oomsim [--scenario NAME] [--cap SIZE] [--policy P]... [--runtime LIST] [--runs N]
//                 [--csv FILE] [--json FILE] [--svg FILE] [--set KEY=VALUE]... [--enforce auto|cgroup|watchdog]
//                 [--worker-dir DIR] [--timeout SEC] [--cgroup-root DIR] [--cpu QUOTA] [--cpu-cgroup-root DIR]
//                 [--quiet] [--list] [--help]
//
// Every option also takes the --name=value form. Policies and runtimes may be repeated or comma-separated.
// Malformed input: one line on stderr naming the option, the value and what is accepted, and exit status 2.
#ifndef PACEGC_BENCH_OOMSIM_CLI_H_
#define PACEGC_BENCH_OOMSIM_CLI_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy.h"

namespace pacegc::oomsim {

enum class EnforceMode { kAuto, kCgroup, kWatchdog };

struct Options {
  std::string scenario = "step";
  std::optional<uint64_t> cap_bytes;  // default: the scenario's
  std::vector<PolicySpec> policies;   // default: gogc, limit, off-limit, ballast
  std::vector<Runtime> runtimes{Runtime::kPacegc};
  unsigned runs = 1;
  std::string csv_path, json_path, svg_path;  // empty: not written
  std::vector<std::string> sets;              // KEY=VALUE scenario overrides
  EnforceMode enforce = EnforceMode::kAuto;
  std::string worker_dir;   // empty: next to the executable (see main.cc)
  std::string cgroup_root;  // empty: /sys/fs/cgroup/memory
  // --cpu: the CFS quota of every run, in microseconds of CPU time per kCpuPeriodUs (cgroup.h); nullopt: none.
  std::optional<uint64_t> cpu_quota_us;
  std::string cpu_cgroup_root;  // empty: /sys/fs/cgroup/cpu
  double timeout_s = 900;       // per run; 0: none
  bool quiet = false;           // no progress on stderr
  bool list = false;
  bool help = false;
};

// The value of --cpu: a percentage of one CPU ("30%", "150%") or a number of CPUs ("0.3", "1.5"), decimal digits
// with at most one point, no sign, no spaces. Returns cfs_quota_us for a period of kCpuPeriodUs (rounded to the
// microsecond), or nullopt with *error set to a one-line reason naming the text (without the option's name) when
// it is malformed, below the kernel's minimum quota (1 ms, i.e. 1% of a 100 ms period) or above 1024 CPUs.
std::optional<uint64_t> ParseCpuQuota(std::string_view text, std::string *error);

// Parses argv[1..]. Throws UsageError.
Options ParseOptions(const std::vector<std::string> &args);

std::string UsageText();

}  // namespace pacegc::oomsim

#endif  // PACEGC_BENCH_OOMSIM_CLI_H_
