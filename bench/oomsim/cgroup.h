// bench/oomsim/cgroup.h — the cgroups of a run: a cgroup v1 memory cgroup (the hard cap, "the container") and,
// with --cpu, a cgroup v1 cpu cgroup (the CFS quota most containers also have).
//
// Life of a run's cgroups (runner.cc drives it):
//   Create   mkdir <root>/pacegc-oomsim-<parent pid>-<n> in each hierarchy (the same name in both, so the two
//            directories of a run are easy to pair). Memory: write the cap to memory.limit_in_bytes, then to
//            memory.memsw.limit_in_bytes when the file exists (memory + swap, so swap cannot stretch the cap; the
//            memory limit must be written first: memsw may never be below it). CPU: write cpu.cfs_period_us, then
//            cpu.cfs_quota_us (the group may run quota_us of CPU time, summed over all its threads and cores, in
//            every period_us of wall time; a quota below one core's period is a fraction of one core).
//   Attach   write the child's pid to cgroup.procs of each. The child is forked, waits on a pipe until this is done,
//            and only then execs the worker, so every page the worker touches is charged to the cap and every
//            cycle it runs counts against the quota.
//   Read     memory.usage_in_bytes (sampled over time), memory.max_usage_in_bytes (the peak as the cap counts it:
//            RSS + page cache + kernel memory charged to the group), `oom_kill N` of memory.oom_control; cpu.stat
//            (nr_periods, nr_throttled, throttled_time) once the worker has exited.
//   Remove   rmdir once the child has been reaped; EBUSY (the kernel may still be tearing the group down) is retried
//            every 10 ms for up to 2 s. The destructor removes a cgroup that was not removed explicitly, so no
//            error path leaves one behind.
// RemoveStale removes what no run can clean up after itself: the cgroups of a parent that was SIGKILLed (its worker
// dies with it through PR_SET_PDEATHSIG, but its cgroups stay). The parent calls it once per hierarchy before its
// first run.
// Probe tells whether a controller is usable at all (mounted, writable: root or a delegated hierarchy) by creating
// and removing a scratch cgroup; for memory the reason is printed when the runner falls back to the RSS watchdog, for
// cpu it is the error that stops a run asked to have a quota (there is no fallback for a quota).
#ifndef PACEGC_BENCH_OOMSIM_CGROUP_H_
#define PACEGC_BENCH_OOMSIM_CGROUP_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pacegc::oomsim {

constexpr const char *kDefaultCgroupRoot = "/sys/fs/cgroup/memory";
constexpr const char *kDefaultCpuCgroupRoot = "/sys/fs/cgroup/cpu";

// What every controller's cgroup of a run shares: its name, mkdir, attaching a pid, reading a number, rmdir.
class Cgroup {
 public:
  Cgroup() = default;
  ~Cgroup();
  Cgroup(const Cgroup &) = delete;
  Cgroup &operator=(const Cgroup &) = delete;

  // The name prefix of every cgroup this process creates: "pacegc-oomsim-<pid>-".
  static std::string NamePrefix();
  // A fresh name, NamePrefix() + n, never handed out before by this process.
  static std::string NewName();

  // Removes <root>/pacegc-oomsim-<pid>-<n> directories whose <pid> is not a live process here, that hold no task
  // and are older than min_age_s (so a run of another pid namespace between its mkdir and its attach is left
  // alone). Returns the names removed; names that could not be removed go to *failed (with the reason). Works in
  // any cgroup v1 hierarchy (memory, cpu).
  static std::vector<std::string> RemoveStale(const std::string &root, double min_age_s,
                                              std::vector<std::string> *failed);

  bool Attach(pid_t pid, std::string *error);

  // rmdir, retrying on EBUSY; true when the directory is gone. Idempotent.
  bool Remove(std::string *error);

  const std::string &path() const { return path_; }

 protected:
  // mkdir <root>/<name> (a NewName() when name is empty). On failure returns false with *error set.
  bool MakeDirectory(const std::string &root, const std::string &name, std::string *error);
  // Writes text to <path>/<file>; on failure sets *error, removes the directory and returns false.
  bool WriteOrRemove(const char *file, const std::string &text, std::string *error);
  std::optional<uint64_t> ReadNumber(const char *file) const;
  // The number after `key` in a file of "key value" lines (memory.oom_control, cpu.stat).
  std::optional<uint64_t> ReadKeyed(const char *file, const char *key) const;

  std::string path_;  // empty: none
};

class MemoryCgroup : public Cgroup {
 public:
  // "" when a memory cgroup can be created under root and limited; otherwise why not (one line).
  static std::string Probe(const std::string &root);

  // Creates <root>/<name> (default: a NewName()) with the cap. On failure returns false with *error set, and
  // leaves nothing.
  bool Create(const std::string &root, uint64_t cap_bytes, std::string *error, const std::string &name = "");

  std::optional<uint64_t> UsageBytes() const;
  std::optional<uint64_t> MaxUsageBytes() const;
  std::optional<uint64_t> OomKillCount() const;
  bool has_memsw() const { return has_memsw_; }

 private:
  bool has_memsw_ = false;
};

// The CFS period every run uses (the kernel's default, and Docker's and Kubernetes').
constexpr uint64_t kCpuPeriodUs = 100000;

// A quota as a percentage of one CPU, with up to two decimals and no trailing zeros: 30000 of 100000 → "30%",
// 150000 → "150%", 33333 → "33.33%".
std::string CpuQuotaPercent(uint64_t quota_us, uint64_t period_us = kCpuPeriodUs);

// cpu.stat of a cpu cgroup: how often the quota stopped the group.
struct CpuStat {
  uint64_t nr_periods = 0;         // enforcement periods in which the group ran
  uint64_t nr_throttled = 0;       // periods in which it used up its quota and was stopped
  uint64_t throttled_time_ns = 0;  // total time its threads waited for the next period
};

class CpuCgroup : public Cgroup {
 public:
  // "" when a cpu cgroup can be created under root and given a quota; otherwise why not (one line).
  static std::string Probe(const std::string &root);

  // Creates <root>/<name> (default: a NewName()) with cpu.cfs_period_us = period_us and cpu.cfs_quota_us =
  // quota_us. On failure returns false with *error set, and leaves nothing.
  bool Create(const std::string &root, uint64_t quota_us, uint64_t period_us, std::string *error,
              const std::string &name = "");

  std::optional<uint64_t> QuotaUs() const { return ReadNumber("cpu.cfs_quota_us"); }
  std::optional<uint64_t> PeriodUs() const { return ReadNumber("cpu.cfs_period_us"); }
  std::optional<CpuStat> Stat() const;
};

// Writes text to a file (no O_CREAT). Returns 0 or the errno value.
int WriteFile(const std::string &path, const std::string &text);

}  // namespace pacegc::oomsim

#endif  // PACEGC_BENCH_OOMSIM_CGROUP_H_
