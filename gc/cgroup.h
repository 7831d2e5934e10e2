// gc/cgroup.h — what a container lets this process use: CPU (the affinity mask, lowered by a cgroup CPU quota)
// and memory (the lowest cgroup memory limit).
//
// CPU.
// Why: the GC CPU limiter holds collection near 50% of the CPU the program may use, and the background scavenger
// spends 1% of it. On a 2-core machine inside a container with a 30% quota (Kubernetes resources.limits.cpu,
// docker --cpus) that is 0.3 of a core, not 2. Go 1.25 derives GOMAXPROCS the same way; pacegc keeps the fraction.
//
// How (as Go 1.25's internal/runtime/cgroup does):
//   1. /proc/self/cgroup names this process's cgroup: "N:cpu,cpuacct:/path" for the cgroup-v1 cpu controller,
//      "0::/path" for the unified (v2) hierarchy. v1's cpu controller is preferred when both are present (it is the
//      one enforcing the quota then).
//   2. /proc/self/mountinfo gives where that hierarchy is mounted and which of its directories the mount shows (in
//      a container the mount's root is usually the container's own cgroup, so its path is "/" inside).
//   3. The quota of the cgroup and of each ancestor up to the mount point: v1 cpu.cfs_quota_us / cpu.cfs_period_us
//      (quota -1 = none), v2 cpu.max "QUOTA PERIOD" ("max" = none). The lowest is the limit.
//   capacity = min(CPUs in the affinity mask, lowest quota / period) — fractional, at least 0.01.
//
// Memory (the soft limit's default when GOMEMLIMIT is unset: gc/pacing.cc, as github.com/KimMachineGun/automemlimit
// and golang/go#75164 do for Go). Steps 1 and 2 as above with the v1 memory controller (preferred) or the unified
// hierarchy; then the limit of the cgroup and of each ancestor up to the mount point: v1 memory.limit_in_bytes
// (no limit reads as a huge number, PAGE_COUNTER_MAX pages: 9223372036854771712 with 4 KiB pages, so anything of
// kNoMemoryLimitAbove or more is none), v2 memory.max ("max" = none). The lowest is the limit. v1 ancestors bound
// a cgroup only with memory.use_hierarchy=1 (the default of every current distribution); pacegc takes them
// always, as automemlimit does. memsw (memory+swap) and memory.high are not read: the limit the OOM killer
// enforces is the one a soft limit must stay under.
//
// Both readers share the resolution (CgroupFiles): the files' paths are resolved once and then re-read (Refresh),
// so a quota or limit changed in place (a resized container) is seen; they are resolved again every kResolveEvery
// refreshes (the process may have been moved to another cgroup) and whenever they stop working.
//
// Error handling: anything missing or unparsable means "no quota" (the affinity mask alone) or "no memory limit",
// never an error: the readers answer for a process outside any container, with /proc not mounted (though the
// library as a whole needs /proc to register its first thread), or on a kernel without the controller.
// The parsers are pure functions of the files' text (tested with fixtures in tests/unit/cgroup_test.cc); every
// file name is taken relative to a root directory ("" for the real one) so tests can lay out a fake /proc and /sys.
//
// Not thread-safe: one reader per caller. Allocates with the program's malloc: call it without pacegc
// locks held.
#ifndef PACEGC_GC_CGROUP_H_
#define PACEGC_GC_CGROUP_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pacer/limiter.h"  // pacer::kMinCpus

namespace pacegc::internal::cgroup {

enum class CpuSource : uint32_t {
  kAffinity = 0,  // no quota found: the CPUs in the affinity mask (or online)
  kV1Quota = 1,   // cgroup v1 cpu.cfs_quota_us / cpu.cfs_period_us
  kV2Quota = 2,   // cgroup v2 cpu.max
};
const char *CpuSourceName(CpuSource s);  // "cpus", "cgroup-v1", "cgroup-v2"

struct CpuCapacity {
  double cpus = 1.0;         // what the program may use: min(affinity_cpus, quota_cpus)
  int affinity_cpus = 1;     // CPUs in the affinity mask
  double quota_cpus = 0.0;   // the lowest quota / period found; 0 = none
  CpuSource source = CpuSource::kAffinity;
  bool operator==(const CpuCapacity &) const = default;
};

// ---- Pure parsers (text in, answer out) ----

// The cgroup path of this process for the v1 controller `controller` ("cpu"), or for the unified hierarchy when
// controller is empty ("0::/path"). False if there is no such line.
bool FindCgroupPath(std::string_view proc_self_cgroup, std::string_view controller, std::string *path);

// The mount of the hierarchy that shows cgroup `path`: v2 (fstype "cgroup2") when controller is empty, else a v1
// "cgroup" mount whose super options list controller; of those, the one whose root (the hierarchy directory the
// mount shows) is the longest prefix of path (the same hierarchy can be mounted, or bind-mounted in part, several
// times). Fills its mount point and root; octal escapes (\040) are undone. False if no such mount shows path (e.g.
// a cgroup namespace whose root is above the mount's): then no quota is read rather than another cgroup's.
bool FindMount(std::string_view mountinfo, std::string_view controller, const std::string &path,
               std::string *mount_point, std::string *root);

// Whether cgroup `path` is root or below it in the hierarchy.
bool PathUnder(const std::string &path, const std::string &root);

// The directory of cgroup `path` under a mount (mount_point, root) that shows it (PathUnder(path, root)):
// mount_point + path without the root prefix.
std::string CgroupDir(const std::string &mount_point, const std::string &root, const std::string &path);

// Quota in CPUs, or 0 for none or unparsable: v1 from cpu.cfs_quota_us and cpu.cfs_period_us texts, v2 from
// cpu.max ("max 100000", "30000 100000").
double ParseV1Quota(std::string_view quota_us, std::string_view period_us);
double ParseV2CpuMax(std::string_view cpu_max);

// min(affinity_cpus, quota) with quota 0 meaning none, never below pacer::kMinCpus.
CpuCapacity Combine(int affinity_cpus, double quota_cpus, CpuSource quota_source);

// Memory limit in bytes from v1 memory.limit_in_bytes or v2 memory.max text, or 0 for none or unparsable.
constexpr uint64_t kNoMemoryLimitAbove = uint64_t{1} << 62;  // v1's "no limit" is PAGE_COUNTER_MAX pages
uint64_t ParseV1MemoryLimit(std::string_view limit_in_bytes);
uint64_t ParseV2MemoryMax(std::string_view memory_max);

enum class Hierarchy : uint32_t { kNone = 0, kV1 = 1, kV2 = 2 };
const char *HierarchyName(Hierarchy h);  // "none", "cgroup-v1", "cgroup-v2"

struct MemoryLimit {
  uint64_t bytes = 0;  // the lowest limit over the cgroup and its ancestors; 0 = none
  Hierarchy hierarchy = Hierarchy::kNone;  // where it was found (kNone when bytes is 0)
};

// ---- Reading the system ----

// Where one controller's files are: this process's cgroup directory and its ancestors up to the mount point, in
// the v1 hierarchy of `v1_controller` if there is one, else in the unified hierarchy. Shared by both readers.
class CgroupFiles {
 public:
  // root: prefixed to /proc/self/... and to the mount points found ("" = the real system).
  CgroupFiles(std::string root, std::string v1_controller)
      : root_(std::move(root)), v1_controller_(std::move(v1_controller)) {}

  // Calls read(hierarchy, dirs), which returns whether the files it wanted were there. Resolves the directories
  // first on the first call and every kResolveEvery calls, and once more when read says they stopped working.
  // Never calls read with Hierarchy::kNone. Returns the hierarchy read (kNone: none found or read failed).
  template <typename Read>
  Hierarchy Refresh(Read read) {
    // Resolve again now and then (a process can be moved while its old cgroup still exists), and at once when the
    // cgroup's own directory is gone (moved and the old one removed: reading only the ancestors still there would
    // report their limits, usually none).
    if (!resolved_ || ++refreshes_ % kResolveEvery == 0 || (kind_ != Hierarchy::kNone && !LeafExists())) Resolve();
    if (kind_ == Hierarchy::kNone) return kind_;
    if (read(kind_, dirs_)) return kind_;
    if (Resolve() && read(kind_, dirs_)) return kind_;
    return Hierarchy::kNone;
  }

 private:
  bool Resolve();
  bool LeafExists() const;

  static constexpr unsigned kResolveEvery = 16;  // refreshes between path resolutions

  std::string root_;
  std::string v1_controller_;
  bool resolved_ = false;
  unsigned refreshes_ = 0;
  Hierarchy kind_ = Hierarchy::kNone;  // once resolved: where the files are
  std::vector<std::string> dirs_;      // the cgroup's directory and its ancestors up to the mount point
};

class CpuQuotaReader {
 public:
  explicit CpuQuotaReader(std::string root = "") : files_(std::move(root), "cpu") {}

  // Reads the affinity mask and the quota now (see CgroupFiles for when paths are resolved).
  CpuCapacity Refresh();

 private:
  CgroupFiles files_;
};

class MemoryLimitReader {
 public:
  explicit MemoryLimitReader(std::string root = "") : files_(std::move(root), "memory") {}

  // Reads the lowest memory limit now (see CgroupFiles for when paths are resolved).
  MemoryLimit Refresh();

 private:
  CgroupFiles files_;
};

// Reads a whole (small) file: false if it cannot be opened or read.
bool ReadFile(const std::string &path, std::string *out);

}  // namespace pacegc::internal::cgroup

#endif  // PACEGC_GC_CGROUP_H_
