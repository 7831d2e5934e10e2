// bench/oomsim/runner.h — runs one worker under a hard memory cap and records what happened.
//
// One run, start to end:
//   1. Enforcement kCgroup: create the run's memory cgroup with the cap (cgroup.h). With a CPU quota, also its cpu
//      cgroup with the quota (of the same name; the cpu cgroup is made whatever the memory enforcement).
//   2. fork. The child asks for SIGKILL when the parent dies (PR_SET_PDEATHSIG), moves to its own process group (a
//      Ctrl-C at the terminal reaches only the parent, which then cleans up), resets its signal mask, points stdin at
//      /dev/null and stdout/stderr at two pipes, then blocks reading a third "go" pipe. Only async-signal-safe calls
//      happen between fork and exec: argv and envp are built before the fork.
//   3. The parent writes the child's pid to the memory cgroup's cgroup.procs (kCgroup) or starts the RSS watchdog
//      thread (kWatchdog), and to the cpu cgroup's (with a quota), then writes the go byte; the child execs the
//      worker. So the worker's first page is charged to the cap and its first instruction to the quota.
//   4. The parent reads the worker's protocol lines (protocol.h) and every sample_ms records the memory the cap
//      counts (cgroup memory.usage_in_bytes, or the watchdog's latest VmRSS), until both pipes reach end of file.
//      A timeout or an interrupt (SIGINT/SIGTERM to the parent, see InstallInterruptHandlers) SIGKILLs the worker.
//   5. It waits for the exit without reaping (waitid WNOWAIT), stops the watchdog (so it can never signal a reused
//      pid), reaps, reads the peak, the OOM-kill count and cpu.stat, and removes the cgroups (retrying on EBUSY).
//
// The watchdog (kWatchdog, where no cgroup is writable or when forced): a thread reads /proc/PID/status every
// watchdog_period_ms (5) and sends SIGKILL when VmRSS exceeds the cap. It sees RSS only (no page cache, no kernel
// memory) and samples: a worker allocating 1 GiB/s can overshoot by ~5 MiB between two samples. The peak it reports
// is the highest VmHWM it saw.
//
// How a run ended (EndKind): survived (exit 0 with a `result` line); oom-killed (SIGKILL and the cgroup's oom_kill
// count went up); watchdog-killed; heap-exhausted (exit status 3: the runtime's own allocation failed, e.g. bdwgc
// at GC_MAXIMUM_HEAP_SIZE); timeout; interrupted; exited (other non-zero status, or 0 without a result line);
// signaled (any other signal, or a SIGKILL nobody here accounts for); start-failed (cgroup or fork/pipe failure).
#ifndef PACEGC_BENCH_OOMSIM_RUNNER_H_
#define PACEGC_BENCH_OOMSIM_RUNNER_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cgroup.h"
#include "protocol.h"

namespace pacegc::oomsim {

enum class Enforcement { kCgroup, kWatchdog };
const char *EnforcementName(Enforcement e);  // "cgroup-v1" / "watchdog"

enum class EndKind {
  kSurvived,
  kOomKilled,
  kWatchdogKilled,
  kHeapExhausted,
  kTimeout,
  kInterrupted,
  kExited,
  kSignaled,
  kStartFailed
};
const char *EndKindName(EndKind e);  // survived, oom-killed, watchdog-killed, heap-exhausted, timeout, ...

// The exit status of a worker whose runtime could not allocate (PROTOCOL.md): pgc_malloc returned NULL, or bdwgc
// ran out under GC_MAXIMUM_HEAP_SIZE. A result of the policy (it died of its own heap limit), not a harness error.
inline constexpr int kWorkerOutOfMemoryStatus = 3;

struct RunProgress {
  double elapsed_s = 0;
  int phase = 0;  // current phase (1-based), 0 before the first
  int phases_done = 0;
  uint64_t usage_bytes = 0;  // what the cap counts right now
  uint64_t gc = 0;           // the worker's last reported cycle count
};

struct RunRequest {
  std::string worker;                                    // path of the worker executable
  std::vector<std::string> args;                         // after argv[0]
  std::vector<std::pair<std::string, std::string>> env;  // set on top of the parent's environment
  std::vector<std::string> unset_env;                    // removed from the parent's environment first
  uint64_t cap_bytes = 0;
  Enforcement enforcement = Enforcement::kCgroup;
  std::string cgroup_root = kDefaultCgroupRoot;
  std::optional<uint64_t> cpu_quota_us;  // nullopt: no cpu cgroup; otherwise cpu.cfs_quota_us of the run
  uint64_t cpu_period_us = kCpuPeriodUs;
  std::string cpu_cgroup_root = kDefaultCpuCgroupRoot;
  unsigned sample_ms = 20;
  unsigned watchdog_period_ms = 5;
  double timeout_s = 0;                                                       // 0: none
  std::function<void(const RunProgress &)> on_progress;                       // every sample_ms and at each phase line
  std::function<void(pid_t pid, const std::string &cgroup_path)> on_started;  // after the worker was released;
                                                                              // cgroup_path: the memory cgroup
};

struct UsagePoint {
  double t_s;      // parent clock, seconds since the fork
  uint64_t bytes;  // cgroup memory.usage_in_bytes or VmRSS
};

struct WorkerSample {
  double t_s;  // on the parent's clock (the worker's t_ms shifted by the arrival time of its `start` line)
  std::optional<uint64_t> heap_alloc, heap_goal, total, live, gc, limiter;
  std::optional<double> gc_cpu;  // pacegc extension
};

struct PhaseRecord {
  int n = 0;
  uint64_t live_bytes = 0, churn_bytes = 0;
  double start_s = 0;
  std::optional<double> done_s, churn_s;
  std::optional<double> gc_cpu;  // GC CPU fraction of the phase's churn, where the worker reports it
};

struct RunResult {
  EndKind end = EndKind::kStartFailed;
  std::string end_detail;  // one line: what ended the run, in words
  Enforcement enforcement = Enforcement::kCgroup;
  int exit_code = -1;                  // when the worker exited
  int term_signal = 0;                 // when a signal ended it
  double elapsed_s = 0;                // fork to exit, parent clock
  std::string cgroup_path;             // the run's memory cgroup (already removed when the run returns)
  std::string cpu_cgroup_path;         // its cpu cgroup, with a quota (likewise removed)
  bool cgroup_removed = true;          // every cgroup of the run is gone
  std::optional<CpuStat> cpu_stat;     // the cpu cgroup's cpu.stat after the worker exited
  std::optional<uint64_t> peak_bytes;  // cgroup memory.max_usage_in_bytes, or the highest VmHWM the watchdog saw
  uint64_t oom_kills = 0;              // cgroup oom_kill count at the end
  uint64_t watchdog_kill_rss = 0;      // VmRSS that made the watchdog kill
  std::vector<PhaseRecord> phases;     // from `phase` / `phasedone` lines
  std::vector<UsagePoint> usage;
  std::vector<WorkerSample> samples;
  std::optional<Line> start, result;
  std::vector<std::string> stderr_tail;     // the worker's last stderr lines (up to 20)
  std::vector<std::string> unparsed_lines;  // stdout lines that were not protocol lines (up to 20)

  int last_phase() const { return phases.empty() ? 0 : phases.back().n; }
  bool killed_by_cap() const { return end == EndKind::kOomKilled || end == EndKind::kWatchdogKilled; }
  // Died of memory: killed by the cap, or its runtime ran out (heap-exhausted). A result, not an error.
  bool died_of_memory() const { return killed_by_cap() || end == EndKind::kHeapExhausted; }
};

RunResult RunWorker(const RunRequest &request);

// SIGINT and SIGTERM set a flag and wake a running RunWorker, which kills its worker, cleans up and returns
// kInterrupted; the caller then exits (InterruptSignal() tells with which signal). SIGPIPE is ignored.
void InstallInterruptHandlers();
bool Interrupted();
int InterruptSignal();

}  // namespace pacegc::oomsim

#endif  // PACEGC_BENCH_OOMSIM_RUNNER_H_
