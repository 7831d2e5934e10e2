// bench/oomsim/cli.cc — see cli.h.
#include "cli.h"

#include "cgroup.h"
#include "size.h"
#include "usage_error.h"

namespace pacegc::oomsim {

std::string UsageText() {
  return R"(usage: pacegc-oomsim [options]

Runs a workload shape (scenario) under a real hard memory cap once per (runtime, policy), each run a child process
in its own memory cgroup (or under an RSS watchdog where no cgroup is writable), and reports who survived, peak
memory, GC cycles, GC CPU, wall time, churn throughput, pauses and limiter time.

  --scenario NAME        step (default), spiral, steady, spike, leak, sawtooth (--list shows their parameters)
  --cap SIZE             the hard cap (default: the scenario's, 512MiB for step); GOMEMLIMIT syntax (512MiB, 2GiB)
  --policy P             repeatable or comma-separated; default gogc,limit,off-limit,ballast
                           gogc[=N|off]       GOGC=N (default 100)
                           limit[=SIZE]       GOGC=100 + GOMEMLIMIT (default: the scenario's limit, 90% of the cap)
                           off-limit[=SIZE]   GOGC=off + GOMEMLIMIT
                           ballast[=SIZE]     a never-touched pointer-free object kept alive (default half the cap)
                           tuner[=PCT]        GOGC = (PCT% x cap - live) / live x 100 after each cycle (default 70)
                         SIZE may be a percentage of the cap (limit=80%); ballast=0 is a run without ballast.
                         Append :limiter=off to run pacegc with its GC CPU limiter off (PACEGC_CPU_LIMITER=off;
                         n/a for go and bdwgc): --policy limit --policy limit:limiter=off
  --runtime LIST         pacegc (default), go, bdwgc; comma-separated or repeated. A missing peer worker is skipped
  --runs N               runs per (runtime, policy), round-robin; the report gives median [min-max]
  --set KEY=VALUE        scenario parameter, repeatable: phases=64MiB:1GiB,128MiB:1GiB  object=64  limit=460MiB
                         sample_ms=20  limiter=on|off (the default of :limiter=), and each scenario's own keys
                         (see --list)
  --csv FILE             one row per (runtime, policy)
  --json FILE            everything, with the memory time series of every run
  --svg FILE             memory over time per (runtime, policy), with heap goal, soft limit, cap and kills
  --enforce MODE         auto (default: cgroup v1 when writable, else the watchdog), cgroup, watchdog
  --worker-dir DIR       where the workers are (default: next to this program, then ../peers/{go,bdwgc} from there)
  --timeout SEC          kill a run after SEC seconds (default 900; 0: never)
  --cgroup-root DIR      the cgroup v1 memory hierarchy (default /sys/fs/cgroup/memory)
  --cpu QUOTA            run every worker (every runtime) under a CPU quota, like a CPU-limited container: a cgroup
                         v1 cpu cgroup per run with cpu.cfs_period_us=100000 and cpu.cfs_quota_us=QUOTA x 100000.
                         QUOTA is a percentage of one CPU (30%, 150%) or a number of CPUs (0.3, 1.5); at least 1%.
                         Without a writable cpu cgroup the command fails: a quota is never silently left out
  --cpu-cgroup-root DIR  the cgroup v1 cpu hierarchy (default /sys/fs/cgroup/cpu)
  --quiet                no progress on stderr
  --list                 describe the scenarios and their parameters, then exit
  --help                 this text

Exit status: 0 when every run ran (being killed by the cap, or the runtime running out of heap, is a result, not an
error); 1 when a run failed otherwise (worker error, crash, timeout) or nothing could run; 2 for malformed
arguments; 128+N after signal N.
)";
}

std::optional<uint64_t> ParseCpuQuota(std::string_view text, std::string *error) {
  const std::string quoted = "'" + std::string(text) + "'";
  const bool percent = !text.empty() && text.back() == '%';
  std::string_view number = percent ? text.substr(0, text.size() - 1) : text;
  // digits [. digits]: the value is mantissa / 10^decimals (exact: no floating point).
  uint64_t mantissa = 0, scale = 1;
  bool point = false, digits_before = false, digits_after = false;
  for (char c : number) {
    if (c == '.' && !point) {
      point = true;
      continue;
    }
    if (c < '0' || c > '9' || mantissa > 1'000'000'000'000ULL || (point && scale > 1'000'000'000ULL)) {
      mantissa = 0, digits_before = digits_after = false;
      break;
    }
    mantissa = mantissa * 10 + static_cast<uint64_t>(c - '0');
    (point ? digits_after : digits_before) = true;
    if (point) scale *= 10;
  }
  if (!digits_before || (point && !digits_after)) {
    *error = quoted +
             " is not a CPU quota (accepted: a percentage of one CPU such as 30% or 150%, or a number of "
             "CPUs such as 0.3 or 1.5)";
    return std::nullopt;
  }
  // quota_us = value x period (CPUs) or value / 100 x period (percent), rounded to the microsecond.
  const uint64_t per_unit = percent ? kCpuPeriodUs / 100 : kCpuPeriodUs;
  const unsigned __int128 scaled = static_cast<unsigned __int128>(mantissa) * per_unit;
  const unsigned __int128 quota = (scaled + scale / 2) / scale;
  if (quota < kCpuPeriodUs / 100) {
    *error = quoted + " is below the smallest CPU quota, 1% of one CPU (the kernel's minimum cfs_quota_us is 1000 " +
             "per 100000 of cfs_period_us)";
    return std::nullopt;
  }
  if (quota > 1024 * kCpuPeriodUs) {
    *error = quoted + " is above 1024 CPUs";
    return std::nullopt;
  }
  return static_cast<uint64_t>(quota);
}

Options ParseOptions(const std::vector<std::string> &args) {
  Options o;
  bool policies_given = false;
  bool runtimes_given = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    std::optional<std::string> inline_value;
    if (arg.rfind("--", 0) == 0) {
      size_t eq = arg.find('=');
      if (eq != std::string::npos) {
        inline_value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
      }
    }
    auto flag = [&]() {
      if (inline_value) throw UsageError(arg + " takes no value (got '" + *inline_value + "')");
    };
    auto value = [&]() -> std::string {
      if (inline_value) return *inline_value;
      if (i + 1 >= args.size()) throw UsageError(arg + " needs a value (see --help)");
      return args[++i];
    };
    if (arg == "--help" || arg == "-h") {
      flag();
      o.help = true;
    } else if (arg == "--list") {
      flag();
      o.list = true;
    } else if (arg == "--quiet") {
      flag();
      o.quiet = true;
    } else if (arg == "--scenario") {
      o.scenario = value();
    } else if (arg == "--cap") {
      std::string v = value(), error;
      auto bytes = ParseSize(v, &error);
      if (!bytes) throw UsageError("--cap: " + error);
      if (*bytes < kMiB) throw UsageError("--cap: '" + v + "' is below 1MiB; no worker fits in that");
      o.cap_bytes = *bytes;
    } else if (arg == "--policy") {
      std::string v = value();
      if (!policies_given) o.policies.clear();
      policies_given = true;
      size_t start = 0;
      for (;;) {
        size_t comma = v.find(',', start);
        o.policies.push_back(
            ParsePolicy(v.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else if (arg == "--runtime") {
      std::vector<Runtime> r = ParseRuntimes(value());
      if (!runtimes_given) o.runtimes.clear();
      runtimes_given = true;
      for (Runtime x : r) {
        for (Runtime seen : o.runtimes) {
          if (seen == x) throw UsageError(std::string("--runtime: '") + RuntimeName(x) + "' given twice");
        }
        o.runtimes.push_back(x);
      }
    } else if (arg == "--runs") {
      std::string v = value();
      auto n = ParseCount(v, 1, 1000);
      if (!n) throw UsageError("--runs: '" + v + "' is not a whole number in [1, 1000]");
      o.runs = static_cast<unsigned>(*n);
    } else if (arg == "--csv") {
      o.csv_path = value();
    } else if (arg == "--json") {
      o.json_path = value();
    } else if (arg == "--svg") {
      o.svg_path = value();
    } else if (arg == "--set") {
      o.sets.push_back(value());
    } else if (arg == "--enforce") {
      std::string v = value();
      if (v == "auto") {
        o.enforce = EnforceMode::kAuto;
      } else if (v == "cgroup") {
        o.enforce = EnforceMode::kCgroup;
      } else if (v == "watchdog") {
        o.enforce = EnforceMode::kWatchdog;
      } else {
        throw UsageError("--enforce: unknown mode '" + v + "' (accepted: auto, cgroup, watchdog)");
      }
    } else if (arg == "--worker-dir") {
      o.worker_dir = value();
      if (o.worker_dir.empty()) throw UsageError("--worker-dir: empty directory name");
    } else if (arg == "--cgroup-root") {
      o.cgroup_root = value();
      if (o.cgroup_root.empty()) throw UsageError("--cgroup-root: empty directory name");
    } else if (arg == "--cpu") {
      std::string error;
      o.cpu_quota_us = ParseCpuQuota(value(), &error);
      if (!o.cpu_quota_us) throw UsageError("--cpu: " + error);
    } else if (arg == "--cpu-cgroup-root") {
      o.cpu_cgroup_root = value();
      if (o.cpu_cgroup_root.empty()) throw UsageError("--cpu-cgroup-root: empty directory name");
    } else if (arg == "--timeout") {
      std::string v = value();
      auto n = ParseCount(v, 0, 86400);
      if (!n) throw UsageError("--timeout: '" + v + "' is not a whole number of seconds in [0, 86400]");
      o.timeout_s = static_cast<double>(*n);
    } else {
      throw UsageError("unknown argument '" + args[i] + "' (see --help)");
    }
  }
  if (!policies_given) {
    for (const char *p : {"gogc", "limit", "off-limit", "ballast"}) o.policies.push_back(ParsePolicy(p));
  }
  for (size_t i = 0; i < o.policies.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (o.policies[i].text == o.policies[j].text) {
        throw UsageError("--policy: '" + o.policies[i].text + "' given twice");
      }
    }
  }
  const std::string *paths[] = {&o.csv_path, &o.json_path, &o.svg_path};
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < i; ++j) {
      if (!paths[i]->empty() && *paths[i] == *paths[j]) {
        throw UsageError("--csv, --json and --svg must name different files ('" + *paths[i] + "' twice)");
      }
    }
  }
  return o;
}

}  // namespace pacegc::oomsim
