// bench/oomsim/report.h — what an experiment produced, and its reports: the table (stdout, markdown), the CSV (one
// row per runtime × policy), the JSON (everything, with the time series). The SVG plot is in svg.h.
//
// Figures per run (RunMetrics), from the worker's `result` line when it survived and from its last `sample` line
// and the parent's clock when it was killed:
//   peak_mib      the cap's own peak: cgroup memory.max_usage_in_bytes, or the highest VmHWM the watchdog saw
//   gc_cycles     completed collections (before the kill, for a killed run)
//   gc_cpu        the runtime's GC CPU fraction (pacegc: pgc_stats.gc_cpu_fraction; killed runs: the last sample's
//                 gc_cpu, where the worker reports one)
//   wall_s        the worker's own wall time when it survived; fork to death (parent clock) when it did not
//   churn_mib_s   mutator throughput: churn MiB of the completed phases / the seconds those churns took
//   pause_*_ms    pause p50 / p99 / max over all cycles, each cycle's stop-the-world pauses summed (Go's PauseNs; a
//                 concurrent cycle has two) (survivors only: the worker computes them at the end)
//   limiter_on_s  wall time the GC CPU limiter was on
// With --runs N every figure is the median of the N runs with its range [min–max].
#ifndef PACEGC_BENCH_OOMSIM_REPORT_H_
#define PACEGC_BENCH_OOMSIM_REPORT_H_

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "policy.h"
#include "runner.h"
#include "scenario.h"

namespace pacegc::oomsim {

// All runs of one (runtime, policy) pair.
struct Group {
  Runtime runtime = Runtime::kPacegc;
  Policy policy;
  Invocation invocation;  // !applicable: a row that only says invocation.na_reason
  std::vector<RunResult> runs;
};

struct Experiment {
  Scenario scenario;
  Enforcement enforcement = Enforcement::kCgroup;
  std::string enforcement_note;          // why this enforcement (e.g. the reason cgroups were not usable)
  std::string command;                   // the command line, for the record
  std::optional<uint64_t> cpu_quota_us;  // --cpu: cpu.cfs_quota_us of every run; nullopt: no quota
  uint64_t cpu_period_us = kCpuPeriodUs;
  std::vector<Group> groups;             // in the order of the table
  std::vector<std::string> notes;        // skipped runtimes and the like, printed under the table
};

struct RunMetrics {
  bool survived = false;
  std::string end_kind;   // EndKindName
  std::string end_short;  // "killed in phase 4 (live 256 MiB)", "exited with status 3", ...
  int killed_phase = 0;   // the phase it died of memory in (cap kill or heap-exhausted); 0 otherwise
  std::optional<double> peak_mib, gc_cycles, gc_cpu, wall_s, churn_mib_s, pause_p50_ms, pause_p99_ms, pause_max_ms,
      limiter_on_s;
};

RunMetrics ComputeMetrics(const RunResult &run);

// Median (the mean of the two middle values for an even count) and range of the values that are present.
struct Summary {
  std::optional<double> median, min, max;
  size_t count = 0;
};
Summary Summarize(const std::vector<std::optional<double>> &values);

// "30% of one CPU" style words for the quota ("" without one), and the quota in CPUs (0.3) for the CSV and JSON.
std::string CpuQuotaWords(const Experiment &e);
std::optional<double> CpuQuotaCpus(const Experiment &e);

void WriteTable(std::ostream &out, const Experiment &e);

// One warning per (runtime, policy) run with :limiter=off whose limiter was on all the same (the library did not
// honour PACEGC_CPU_LIMITER=off). WriteTable prints them under the table.
std::vector<std::string> LimiterNotes(const Experiment &e);
void WriteCsv(std::ostream &out, const Experiment &e);
void WriteJson(std::ostream &out, const Experiment &e);

// CSV field quoting (RFC 4180) and JSON string escaping, exposed for the tests.
std::string CsvField(const std::string &text);
std::string JsonString(const std::string &text);

}  // namespace pacegc::oomsim

#endif  // PACEGC_BENCH_OOMSIM_REPORT_H_
