// bench/oomsim/policy.h — pacing policies and runtimes, and how each (runtime, policy) pair becomes a worker
// invocation (arguments and environment).
//
// Policies (values in GOGC / GOMEMLIMIT syntax):
//   gogc[=N]           GOGC=N (default 100, "off" accepted), no memory limit
//   limit[=SIZE]       GOGC=100 + GOMEMLIMIT=SIZE (default: the scenario's soft limit, 90% of the cap)
//   off-limit[=SIZE]   GOGC=off + GOMEMLIMIT=SIZE (same default)
//   ballast[=SIZE]     GOGC=100 + a never-touched pointer-free object of SIZE kept alive (default half the cap)
//   tuner[=PCT]        GOGC=100 to start, then GOGC = (PCT% × cap − live) / live × 100 after every cycle,
//                      clamped to [10, 500] (Uber's dynamic GOGC; default 70)
// SIZE may also be a percentage of the cap ("limit=80%", "ballast=25%"), rounded down to a MiB. ballast=0 is a
// run with no ballast (GOGC=100), so a ballast sweep can start at 0.
//
// Modifier, after the policy and a colon (experiment 3, the death spiral without the limiter's guard):
//   :limiter=off       the worker runs with PACEGC_CPU_LIMITER=off, which the library reads to turn its GC CPU
//                      limiter off; :limiter=on (the default) leaves it unset. `--set limiter=off` makes off the
//                      default of every policy of the run. Go 1.19 has no such switch and bdwgc no limiter: those
//                      rows are n/a. A run with the limiter off whose limiter was on anyway (limiter_on_s > 0) gets
//                      a note under the table: that library build does not honour the variable.
//   e.g. --policy limit --policy limit:limiter=off --policy off-limit=80%:limiter=off
//
// Runtimes and their workers (PROTOCOL.md):
//   pacegc  pacegc-oomsim-worker  GOGC, GOMEMLIMIT from the environment; PACEGC_AUTOMEMLIMIT=off under the policies
//                                 without a limit (gogc, ballast, tuner), so they do not get one from the cgroup
//   go      oomsim-worker-go      GOGC, GOMEMLIMIT from the environment (Go reads them natively)
//   bdwgc   oomsim-worker-bdwgc   bdwgc has no GOGC and no soft limit; the nearest settings:
//             gogc[=N]        its default pacing, GC_FREE_SPACE_DIVISOR unset (bdwgc's default, 3: the heap grows
//                             when less than heap/3 would be free after a collection). N is not translated: there
//                             is no faithful mapping, and the row says so.
//             limit, off-limit GC_MAXIMUM_HEAP_SIZE=SIZE (a hard heap maximum: allocation fails or bdwgc warns
//                             "Out of Memory! Trying to continue..." instead of collecting harder)
//             ballast         --ballast SIZE with the default pacing
//             tuner           not applicable: the row says "n/a: bdwgc has no GOGC"
// The parent removes GOGC, GOMEMLIMIT, PACEGC_CPU_LIMITER, PACEGC_AUTOMEMLIMIT, GC_MAXIMUM_HEAP_SIZE and GC_FREE_SPACE_DIVISOR from the
// environment it passes on and sets only what the policy asks for, so the caller's shell does not leak into a run.
#ifndef PACEGC_BENCH_OOMSIM_POLICY_H_
#define PACEGC_BENCH_OOMSIM_POLICY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "scenario.h"

namespace pacegc::oomsim {

enum class PolicyKind { kGogc, kLimit, kOffLimit, kBallast, kTuner };

// A policy as the user wrote it; values left out take the scenario's defaults when resolved.
struct PolicySpec {
  PolicyKind kind = PolicyKind::kGogc;
  std::string text;              // as given, for messages
  int gogc = 100;                // kGogc: -1 for off
  std::optional<uint64_t> size;  // kLimit, kOffLimit, kBallast
  std::optional<double> size_pct;  // the same given as a percentage of the cap
  int tuner_pct = 70;              // kTuner
  std::optional<bool> limiter_off;  // the :limiter= modifier; unset: the scenario's default (--set limiter=)
};

// Parses one --policy value. Throws UsageError naming the value and the accepted forms.
PolicySpec ParsePolicy(const std::string &text);

enum class Runtime { kPacegc, kGo, kBdwgc };

// Parses a --runtime list ("pacegc,go,bdwgc"). Throws UsageError.
std::vector<Runtime> ParseRuntimes(const std::string &text);
const char *RuntimeName(Runtime r);
const char *WorkerName(Runtime r);

// A policy resolved against a scenario.
struct Policy {
  PolicySpec spec;
  int gogc = 100;            // -1: off
  uint64_t limit_bytes = 0;  // 0: no soft limit
  uint64_t ballast_bytes = 0;
  int tuner_pct = 0;  // 0: no tuner
  bool limiter_off = false;  // PACEGC_CPU_LIMITER=off
  std::string name;   // canonical: gogc=100, limit=460MiB, off-limit=460MiB, ballast=256MiB, tuner=70,
                      // with ":limiter=off" appended when the limiter is off
  std::string label;  // for tables and plots: "GOGC=100, GOMEMLIMIT=460MiB"
};

Policy ResolvePolicy(const PolicySpec &spec, const Scenario &scenario);

// How one (runtime, policy) pair is run. When !applicable, na_reason says why (the row shows it).
struct Invocation {
  bool applicable = true;
  std::string na_reason;
  std::vector<std::string> args;                         // after the worker path
  std::vector<std::pair<std::string, std::string>> env;  // variables to set
  std::string settings;                                  // what the worker was given, for the report
};

Invocation MakeInvocation(Runtime runtime, const Policy &policy, const Scenario &scenario);

// The library's switch for its GC CPU limiter, set to "off" by the :limiter=off modifier.
inline constexpr const char *kCpuLimiterVariable = "PACEGC_CPU_LIMITER";
// Set to "off" for pacegc under every policy without a memory limit (gogc, ballast, tuner), which would otherwise
// get 90% of the container's limit as a soft limit.
inline constexpr const char *kAutoMemLimitVariable = "PACEGC_AUTOMEMLIMIT";

// The variables the parent strips from the environment it passes to every worker.
const std::vector<std::string> &PacingEnvironmentVariables();

}  // namespace pacegc::oomsim

#endif  // PACEGC_BENCH_OOMSIM_POLICY_H_
