// Unit tests of gc/pacing's limiter wiring, in the library as a program starts it: what a cycle is charged, and a
// resized container (a new CPU capacity installed as the background thread's refresh installs it).
#include <catch2/catch.hpp>

#include <pacegc/pacegc.h>

#include "base/os.h"
#include "gc/cgroup.h"
#include "gc/collector.h"
#include "gc/pacing.h"

using namespace pacegc::internal;

namespace {
constexpr uint64_t kMs = 1'000'000;
}  // namespace

TEST_CASE("a cycle is charged its collector's CPU, not its pause's wall time", "[pacing]") {
  pgc_collect();  // the library is started and has run a cycle
  pacing::CycleReport r{};
  r.pause_ns = 100 * kMs;         // a pause throttled or descheduled most of the time...
  r.collector_cpu_ns = 10 * kMs;  // ...in which the collector got 10 ms of CPU
  LockHeap();
  const cgroup::CpuCapacity saved = pacing::CpuCapacity();
  uint64_t charge = pacing::CycleChargeNs(r);
  // Under a quota below one core the charge is exactly the collector's CPU.
  cgroup::CpuCapacity quota = cgroup::Combine(saved.affinity_cpus, 0.3, cgroup::CpuSource::kV1Quota);
  pacing::SetCpuCapacityLocked(quota, os::MonotonicNs());
  uint64_t throttled_charge = pacing::CycleChargeNs(r);
  double throttled_cpus = pacing::CpuCapacity().cpus;
  pacing::SetCpuCapacityLocked(saved, os::MonotonicNs());
  UnlockHeap();
  INFO("capacity " << saved.cpus);
  CHECK(charge >= 10 * kMs);                                                  // at least the collector's own CPU
  CHECK(charge <= static_cast<uint64_t>(10 * kMs * (saved.cpus < 1 ? 1 : saved.cpus)));  // x at most the cores
  CHECK(charge < 100 * kMs);
  CHECK(throttled_cpus == Approx(0.3));
  CHECK(throttled_charge == 10 * kMs);
}

TEST_CASE("a resized container: stats report the new capacity and gc_cpu_fraction stays a fraction", "[pacing]") {
  pgc_collect();
  pgc_stats before;
  before.size = sizeof before;
  pgc_read_stats(&before);
  LockHeap();
  const cgroup::CpuCapacity saved = pacing::CpuCapacity();
  pacing::SetCpuCapacityLocked(cgroup::Combine(saved.affinity_cpus, 0.5, cgroup::CpuSource::kV2Quota),
                               os::MonotonicNs());
  UnlockHeap();
  pgc_collect();
  pgc_stats during;
  during.size = sizeof during;
  pgc_read_stats(&during);
  LockHeap();
  pacing::SetCpuCapacityLocked(saved, os::MonotonicNs());
  UnlockHeap();
  CHECK(during.cpu_capacity == Approx(saved.affinity_cpus >= 1 ? 0.5 : saved.cpus));
  CHECK(during.cpu_quota == Approx(0.5));
  CHECK(during.cpu_capacity_source == PGC_CPU_CGROUP_V2);
  CHECK(during.gc_cpu_ns > before.gc_cpu_ns);
  CHECK(during.gc_cpu_fraction > 0.0);
  CHECK(during.gc_cpu_fraction <= 1.0);
}
