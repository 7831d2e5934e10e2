// bench/oomsim/cgroup.h — one cgroup v1 memory cgroup per run: the hard cap ("the container") of a worker.
//
// Life of a run's cgroup (runner.cc drives it):
//   Create   mkdir <root>/pacegc-oomsim-<parent pid>-<n>; write the cap to memory.limit_in_bytes, then to
//            memory.memsw.limit_in_bytes when the file exists (memory + swap, so swap cannot stretch the cap;
//            the memory limit must be written first: memsw may never be below it).
//   Attach   write the child's pid to cgroup.procs. The child is forked, waits on a pipe until this is done, and
//            only then execs the worker, so every page the worker touches is charged to the cgroup.
//   Read     memory.usage_in_bytes (sampled over time), memory.max_usage_in_bytes (the peak as the cap counts it:
//            RSS + page cache + kernel memory charged to the group), `oom_kill N` of memory.oom_control.
//   Remove   rmdir once the child has been reaped; EBUSY (the kernel may still be tearing the group down) is retried
//            every 10 ms for up to 2 s. The destructor removes a cgroup that was not removed explicitly, so no
//            error path leaves one behind.
// RemoveStale removes what no run can clean up after itself: the cgroups of a parent that was SIGKILLed (its worker
// dies with it through PR_SET_PDEATHSIG, but its cgroup stays). The parent calls it once before its first run.
// Probe tells whether the controller is usable at all (mounted, writable: root or a delegated hierarchy) by creating
// and removing a scratch cgroup; the reason is printed when the runner falls back to the RSS watchdog.
#ifndef PACEGC_BENCH_OOMSIM_CGROUP_H_
#define PACEGC_BENCH_OOMSIM_CGROUP_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pacegc::oomsim {

constexpr const char *kDefaultCgroupRoot = "/sys/fs/cgroup/memory";

class MemoryCgroup {
 public:
  MemoryCgroup() = default;
  ~MemoryCgroup();
  MemoryCgroup(const MemoryCgroup &) = delete;
  MemoryCgroup &operator=(const MemoryCgroup &) = delete;

  // "" when a memory cgroup can be created under root and limited; otherwise why not (one line).
  static std::string Probe(const std::string &root);

  // The name prefix of every cgroup this process creates: "pacegc-oomsim-<pid>-".
  static std::string NamePrefix();

  // Removes <root>/pacegc-oomsim-<pid>-<n> directories whose <pid> is not a live process here, that hold no task
  // and are older than min_age_s (so a run of another pid namespace between its mkdir and its attach is left
  // alone). Returns the names removed; names that could not be removed go to *failed (with the reason).
  static std::vector<std::string> RemoveStale(const std::string &root, double min_age_s,
                                              std::vector<std::string> *failed);

  // Creates <root>/<NamePrefix()><n> with the cap. On failure returns false with *error set, and leaves nothing.
  bool Create(const std::string &root, uint64_t cap_bytes, std::string *error);
  bool Attach(pid_t pid, std::string *error);

  std::optional<uint64_t> UsageBytes() const;
  std::optional<uint64_t> MaxUsageBytes() const;
  std::optional<uint64_t> OomKillCount() const;
  bool has_memsw() const { return has_memsw_; }

  // rmdir, retrying on EBUSY; true when the directory is gone. Idempotent.
  bool Remove(std::string *error);

  const std::string &path() const { return path_; }

 private:
  std::optional<uint64_t> ReadNumber(const char *file) const;

  std::string path_;  // empty: none
  bool has_memsw_ = false;
};

// Writes text to a file (no O_CREAT). Returns 0 or the errno value.
int WriteFile(const std::string &path, const std::string &text);

}  // namespace pacegc::oomsim

#endif  // PACEGC_BENCH_OOMSIM_CGROUP_H_
