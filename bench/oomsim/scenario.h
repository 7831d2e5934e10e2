// bench/oomsim/scenario.h — the OOM simulator's scenarios: named workload shapes expanded into phase lists.
//
// A worker knows nothing about scenarios (bench/oomsim/PROTOCOL.md): the parent turns a scenario, its cap and the
// user's --set overrides into `--phases LIVE:CHURN,...`, `--object-size` and `--sample-ms`. Each phase first grows
// or shrinks the live structure to LIVE bytes, then allocates CHURN bytes of short-lived garbage.
//
// Scenarios (defaults; every parameter can be overridden with --set KEY=VALUE; sizes in GOMEMLIMIT syntax, and the
// parameters marked "of cap" also take a percentage of the cap such as 75%):
//
//   step      cap 512MiB  live 64,128,192,256 MiB, 1 GiB churn each (SCENARIOS.md: the pacer-problem figure)
//             keys: live=LIST churn=SIZE
//   spiral    cap 2GiB, soft limit 460MiB (fixed, not 90% of the cap)  live 256,448,512,576 MiB, 1 GiB churn each:
//             the live heap passes the soft limit (the CPU limiter's death-spiral guard)
//             keys: live=LIST churn=SIZE
//   steady    cap 512MiB  live 25% of cap for `count` phases of `churn` each (count=4, churn=1GiB)
//             keys: live=SIZE|PCT churn=SIZE count=N
//   spike     cap 512MiB  base 12.5% of cap, then peak 75% of cap, then base twice; 512 MiB churn per phase
//             (does the heap give memory back after the spike?)
//             keys: base=SIZE|PCT peak=SIZE|PCT churn=SIZE
//   leak      cap 512MiB  live grows by step=6.25% of cap per phase with churn=128MiB per phase, for count phases
//             (count=auto: until live reaches 150% of the cap, so every policy ends by a kill)
//             keys: step=SIZE|PCT churn=SIZE count=N|auto
//   sawtooth  cap 512MiB  live alternates low=12.5% and high=50% of cap, count=4 periods, churn=256MiB per phase
//             keys: low=SIZE|PCT high=SIZE|PCT churn=SIZE count=N
//
// Keys every scenario takes:
//   phases=LIVE:CHURN,...   the phase list itself (replaces the scenario's own parameters)
//   object=BYTES            object size of live nodes and garbage (default 64)
//   limit=SIZE              the scenario's soft limit: the default of the limit and off-limit policies
//                           (default 90% of the cap rounded down to a MiB, unless the scenario fixes it)
//   sample_ms=N             sampling period of the worker's `sample` lines and of the parent's memory series (20)
//   limiter=on|off          the GC CPU limiter of every policy that does not say :limiter=on|off itself (on);
//                           off runs pacegc with PACEGC_CPU_LIMITER=off (policy.h)
#ifndef PACEGC_BENCH_OOMSIM_SCENARIO_H_
#define PACEGC_BENCH_OOMSIM_SCENARIO_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pacegc::oomsim {

struct Phase {
  uint64_t live_bytes = 0;   // live-structure size to reach at the start of the phase
  uint64_t churn_bytes = 0;  // garbage allocated after reaching it
};

// A scenario resolved against a cap and the user's overrides: everything a run needs.
struct Scenario {
  std::string name;
  uint64_t cap_bytes = 0;
  uint64_t limit_bytes = 0;  // the soft limit of the limit / off-limit policies by default
  uint64_t object_size = 64;
  unsigned sample_ms = 20;
  bool limiter_off = false;  // --set limiter=off: the default of every policy's :limiter= modifier
  std::vector<Phase> phases;
  std::vector<std::pair<std::string, std::string>> params;  // effective parameters, for the report
};

// The names of all scenarios, in documentation order.
std::vector<std::string> ScenarioNames();

// Resolves a scenario. cap overrides the scenario's default cap; sets are "KEY=VALUE" strings from --set.
// Throws UsageError (one line naming the offending input and what is accepted) on any malformed input.
Scenario ResolveScenario(const std::string &name, std::optional<uint64_t> cap, const std::vector<std::string> &sets);

// The `--phases` argument for a worker: "64MiB:1GiB,128MiB:1GiB".
std::string PhasesArgument(const std::vector<Phase> &phases);

// Multi-line description of every scenario with its defaults (for --list).
std::string DescribeScenarios();

}  // namespace pacegc::oomsim

#endif  // PACEGC_BENCH_OOMSIM_SCENARIO_H_
