// tests/oomsim/runner_test.cc — the cgroup runner and the RSS watchdog, with the real pacegc worker.
//
// Cases that need a writable cgroup v1 memory controller (or cpu controller, for --cpu) WARN why they are skipped and
// pass when there is none (non-root, cgroup v2 without delegation). Memory figures are asserted only where the cap
// forces them; no timing is asserted.
#include "runner.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <sstream>
#include <string>
#include <thread>

#include "cgroup.h"
#include "oomsim_test_util.h"
#include "size.h"

using namespace pacegc::oomsim;

namespace {

// "" when cgroup v1 memory is usable here; the reason otherwise.
std::string CgroupSkipReason() {
  static const std::string reason = MemoryCgroup::Probe(kDefaultCgroupRoot);
  return reason;
}

// "" when cgroup v1 cpu (with CFS bandwidth control) is usable here; the reason otherwise.
std::string CpuCgroupSkipReason() {
  static const std::string reason = CpuCgroup::Probe(kDefaultCpuCgroupRoot);
  return reason;
}

// WARNs why a case is skipped and passes it when a controller is not usable (reason non-empty).
#define SKIP_UNLESS_WRITABLE(reason, controller)                             \
  do {                                                                       \
    if (!(reason).empty()) {                                                 \
      WARN("skipped: " controller " controller not writable: " << (reason)); \
      SUCCEED();                                                             \
      return;                                                                \
    }                                                                        \
  } while (0)
#define SKIP_WITHOUT_CGROUPS() SKIP_UNLESS_WRITABLE(CgroupSkipReason(), "cgroup v1 memory")
#define SKIP_WITHOUT_CPU_CGROUPS() SKIP_UNLESS_WRITABLE(CpuCgroupSkipReason(), "cgroup v1 cpu")

RunRequest Request(const std::string &phases, uint64_t cap, Enforcement enforcement, const char *gogc = "100") {
  RunRequest r;
  r.worker = PACEGC_OOMSIM_WORKER;
  r.args = {"--phases", phases, "--sample-ms", "5"};
  r.env = {{"GOGC", gogc}};
  r.unset_env = {"GOMEMLIMIT"};
  r.cap_bytes = cap;
  r.enforcement = enforcement;
  r.sample_ms = 5;
  r.timeout_s = 120;
  return r;
}

bool DirExists(const std::string &path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void CheckNoLeftoverCgroups(const char *root = kDefaultCgroupRoot) {
  std::vector<std::string> left = oomsim_test::EntriesWithPrefix(root, Cgroup::NamePrefix());
  INFO("leftover cgroups in " << root << ": " << left.size());
  CHECK(left.empty());
}

// The path of pid's cgroup in the v1 hierarchy of `controller` ("/pacegc-oomsim-1-2"), from /proc/PID/cgroup
// (lines "ID:controller[,controller...]:/path"); "" when it is not listed.
std::string CgroupOf(pid_t pid, const std::string &controller) {
  std::istringstream in(oomsim_test::ReadFile("/proc/" + std::to_string(pid) + "/cgroup"));
  for (std::string line; std::getline(in, line);) {
    size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string controllers = "," + line.substr(a + 1, b - a - 1) + ",";
    if (controllers.find("," + controller + ",") != std::string::npos) return line.substr(b + 1);
  }
  return "";
}

}  // namespace

TEST_CASE("cgroup: create, limit, remove; errors leave nothing", "[oomsim][cgroup]") {
  SKIP_WITHOUT_CGROUPS();
  std::string path;
  {
    MemoryCgroup cg;
    std::string error;
    REQUIRE(cg.Create(kDefaultCgroupRoot, 64 * kMiB, &error));
    path = cg.path();
    CHECK(DirExists(path));
    CHECK(std::stoull(oomsim_test::ReadFile(path + "/memory.limit_in_bytes")) == 64 * kMiB);
    if (cg.has_memsw()) CHECK(std::stoull(oomsim_test::ReadFile(path + "/memory.memsw.limit_in_bytes")) == 64 * kMiB);
    CHECK(cg.OomKillCount().value_or(0) == 0);
    CHECK(cg.Remove(&error));
    CHECK_FALSE(DirExists(path));
    CHECK(cg.Remove(&error));  // idempotent
  }
  {
    MemoryCgroup cg;  // the destructor removes what was not removed explicitly
    std::string error;
    REQUIRE(cg.Create(kDefaultCgroupRoot, 64 * kMiB, &error));
    path = cg.path();
  }
  CHECK_FALSE(DirExists(path));
  MemoryCgroup bad;
  std::string error;
  CHECK_FALSE(bad.Create("/nonexistent/cgroup/root", 64 * kMiB, &error));
  CHECK_THAT(error, Catch::Contains("/nonexistent/cgroup/root"));
  CheckNoLeftoverCgroups();
}

TEST_CASE("cgroup: Probe explains an unusable hierarchy", "[oomsim][cgroup]") {
  std::string why = MemoryCgroup::Probe("/nonexistent/cgroup/root");
  CHECK_THAT(why, Catch::Contains("/nonexistent/cgroup/root"));
}

TEST_CASE("runner (cgroup): a surviving run is placed, limited, reaped and removed", "[oomsim][cgroup][runner]") {
  SKIP_WITHOUT_CGROUPS();
  RunRequest req = Request("4MiB:16MiB,8MiB:16MiB", 128 * kMiB, Enforcement::kCgroup);
  bool checked = false;
  req.on_started = [&](pid_t pid, const std::string &cgroup) {
    checked = true;
    CHECK(DirExists(cgroup));
    CHECK(std::stoull(oomsim_test::ReadFile(cgroup + "/memory.limit_in_bytes")) == 128 * kMiB);
    CHECK_THAT(oomsim_test::ReadFile(cgroup + "/cgroup.procs"), Catch::Contains(std::to_string(pid)));
  };
  RunResult r = RunWorker(req);
  INFO(r.end_detail);
  CHECK(checked);
  CHECK(r.end == EndKind::kSurvived);
  CHECK(r.exit_code == 0);
  CHECK(r.cgroup_removed);
  CHECK_FALSE(r.cgroup_path.empty());
  CHECK_FALSE(DirExists(r.cgroup_path));
  REQUIRE(r.peak_bytes.has_value());
  CHECK(*r.peak_bytes > 8 * kMiB);  // the live heap alone is 8 MiB
  CHECK(*r.peak_bytes <= 128 * kMiB);
  CHECK(r.oom_kills == 0);
  REQUIRE(r.phases.size() == 2);
  CHECK(r.phases[1].live_bytes == 8 * kMiB);
  CHECK(r.phases[1].done_s.has_value());
  REQUIRE(r.start.has_value());
  CHECK(r.start->Text("runtime") == "pacegc");
  CHECK(r.start->Text("gogc") == "100");
  REQUIRE(r.result.has_value());
  CHECK(r.result->U64("gc_cycles").value_or(0) > 0);
  CHECK_FALSE(r.samples.empty());
  CheckNoLeftoverCgroups();
}

TEST_CASE("runner (cgroup): an OOM kill is detected with its phase, and the cgroup is removed",
          "[oomsim][cgroup][runner]") {
  SKIP_WITHOUT_CGROUPS();
  // GOGC=off and a 64 MiB live heap under a 32 MiB cap: the kernel must kill it in phase 2.
  RunResult r = RunWorker(Request("1MiB:1MiB,64MiB:0,1MiB:1MiB", 32 * kMiB, Enforcement::kCgroup, "off"));
  INFO(r.end_detail);
  CHECK(r.end == EndKind::kOomKilled);
  CHECK(r.term_signal == SIGKILL);
  CHECK(r.oom_kills >= 1);
  CHECK(r.last_phase() == 2);
  CHECK(r.killed_by_cap());
  CHECK_THAT(r.end_detail, Catch::Contains("phase 2"));
  CHECK_FALSE(r.result.has_value());
  REQUIRE(r.peak_bytes.has_value());
  CHECK(*r.peak_bytes >= 30 * kMiB);  // it reached the cap
  CHECK(r.cgroup_removed);
  CHECK_FALSE(DirExists(r.cgroup_path));
  CheckNoLeftoverCgroups();
}

TEST_CASE("runner: a worker that fails is reported with its status and stderr", "[oomsim][runner]") {
  Enforcement e = CgroupSkipReason().empty() ? Enforcement::kCgroup : Enforcement::kWatchdog;
  RunRequest req = Request("1MiB:1MiB", 64 * kMiB, e);
  req.args = {"--phases", "1MiB"};  // malformed: the worker exits 2
  RunResult r = RunWorker(req);
  CHECK(r.end == EndKind::kExited);
  CHECK(r.exit_code == 2);
  REQUIRE_FALSE(r.stderr_tail.empty());
  CHECK_THAT(r.stderr_tail.back(), Catch::Contains("--phases"));
  CHECK(r.cgroup_removed);

  RunRequest missing = Request("1MiB:1MiB", 64 * kMiB, e);
  missing.worker = "/nonexistent/worker";
  RunResult m = RunWorker(missing);
  CHECK(m.end == EndKind::kExited);
  CHECK(m.exit_code == 127);
  if (e == Enforcement::kCgroup) CheckNoLeftoverCgroups();
}

TEST_CASE("runner: a worker whose runtime runs out of heap (exit 3) died of memory, not of an error",
          "[oomsim][runner]") {
  Enforcement e = CgroupSkipReason().empty() ? Enforcement::kCgroup : Enforcement::kWatchdog;
  // A stand-in worker speaking the protocol: two phases, then the exit status of a failed allocation.
  RunRequest req = Request("", 64 * kMiB, e);
  req.worker = "/bin/sh";
  req.args = {"-c",
              "echo 'start runtime=fake pid=1 cpus=1'; echo 'phase n=1 live=1048576 churn=0 t_ms=1';"
              "echo 'phase n=2 live=2097152 churn=0 t_ms=2'; echo 'fake: out of memory' >&2; exit 3"};
  RunResult r = RunWorker(req);
  INFO(r.end_detail);
  CHECK(r.end == EndKind::kHeapExhausted);
  CHECK(r.died_of_memory());
  CHECK_FALSE(r.killed_by_cap());
  CHECK(r.exit_code == 3);
  CHECK_THAT(r.end_detail, Catch::Contains("out of memory") && Catch::Contains("phase 2") &&
                               Catch::Contains("fake: out of memory"));
  CHECK(r.cgroup_removed);
  // Any other failing status stays an error.
  req.args = {"-c", "echo 'phase n=1 live=1 churn=0 t_ms=1'; exit 4"};
  CHECK(RunWorker(req).end == EndKind::kExited);
  if (e == Enforcement::kCgroup) CheckNoLeftoverCgroups();
}

namespace {

void CheckRemoveStale(const std::string &root) {
  // A pid above any pid_max (2^22) can never be alive; a live parent's cgroup, a name that is not ours and a
  // directory younger than min_age must be left alone.
  const std::string dead = root + "/pacegc-oomsim-999999999-1";
  const std::string alive = root + "/pacegc-oomsim-1-77";  // pid 1 is always alive
  const std::string other = root + "/pacegc-oomsim-notapid-1";
  for (const std::string &d : {dead, alive, other}) {
    rmdir(d.c_str());
    REQUIRE(mkdir(d.c_str(), 0755) == 0);
  }
  std::vector<std::string> failed;
  // min_age 0: everything not alive is old enough.
  std::vector<std::string> removed = Cgroup::RemoveStale(root, 0, &failed);
  CHECK(std::find(removed.begin(), removed.end(), "pacegc-oomsim-999999999-1") != removed.end());
  CHECK_FALSE(DirExists(dead));
  CHECK(DirExists(alive));
  CHECK(DirExists(other));
  // min_age of an hour: a directory just made is kept.
  REQUIRE(mkdir(dead.c_str(), 0755) == 0);
  removed = Cgroup::RemoveStale(root, 3600, &failed);
  CHECK(removed.empty());
  CHECK(DirExists(dead));
  for (const std::string &d : {dead, alive, other}) rmdir(d.c_str());
  CHECK(failed.empty());
}

}  // namespace

TEST_CASE("cgroup: RemoveStale removes the empty cgroups of dead parents only", "[oomsim][cgroup]") {
  SKIP_WITHOUT_CGROUPS();
  CheckRemoveStale(kDefaultCgroupRoot);
}

TEST_CASE("cgroup (cpu): RemoveStale works in the cpu hierarchy too", "[oomsim][cgroup][cpu]") {
  SKIP_WITHOUT_CPU_CGROUPS();
  CheckRemoveStale(kDefaultCpuCgroupRoot);
}

TEST_CASE("cgroup (cpu): create with a quota, read it back, remove; errors leave nothing", "[oomsim][cgroup][cpu]") {
  CHECK_THAT(CpuCgroup::Probe("/nonexistent/cpu"), Catch::Contains("/nonexistent/cpu"));
  CpuCgroup bad;
  std::string error;
  CHECK_FALSE(bad.Create("/nonexistent/cpu", 30000, kCpuPeriodUs, &error));
  CHECK_THAT(error, Catch::Contains("/nonexistent/cpu"));
  SKIP_WITHOUT_CPU_CGROUPS();
  std::string path;
  {
    CpuCgroup cg;
    REQUIRE(cg.Create(kDefaultCpuCgroupRoot, 30000, kCpuPeriodUs, &error));
    path = cg.path();
    CHECK(DirExists(path));
    CHECK(cg.QuotaUs() == 30000);
    CHECK(cg.PeriodUs() == kCpuPeriodUs);
    CHECK(std::stoull(oomsim_test::ReadFile(path + "/cpu.cfs_quota_us")) == 30000);
    REQUIRE(cg.Stat().has_value());
    CHECK(cg.Stat()->nr_throttled == 0);  // nothing ran in it
  }
  CHECK_FALSE(DirExists(path));  // the destructor removed it
  {
    // A quota the kernel refuses (below its 1 ms minimum): the error names the file, and the directory goes.
    CpuCgroup cg;
    CHECK_FALSE(cg.Create(kDefaultCpuCgroupRoot, 10, kCpuPeriodUs, &error));
    CHECK_THAT(error, Catch::Contains("cpu.cfs_quota_us"));
    CHECK(cg.path().empty());
  }
  CheckNoLeftoverCgroups(kDefaultCpuCgroupRoot);
}

TEST_CASE("runner (cpu): the worker runs in a cpu cgroup with the quota, is throttled, and the cgroup goes",
          "[oomsim][cgroup][cpu][runner]") {
  SKIP_WITHOUT_CPU_CGROUPS();
  // Memory enforced both ways: the cpu cgroup does not depend on the memory cgroup.
  const Enforcement e = GENERATE(Enforcement::kCgroup, Enforcement::kWatchdog);
  if (e == Enforcement::kCgroup && !CgroupSkipReason().empty()) {
    WARN("skipped with a memory cgroup: " << CgroupSkipReason());
    return;
  }
  INFO("memory enforcement " << EnforcementName(e));
  // A 5% quota (5 ms of CPU per 100 ms): the worker (start-up, 4 MiB live, 32 MiB of churn, collections) needs far
  // more CPU than one period's 5 ms, and is CPU-bound, so some period must use up the quota and throttle it.
  RunRequest req = Request("4MiB:32MiB", 128 * kMiB, e);
  req.cpu_quota_us = 5000;
  bool checked = false;
  req.on_started = [&](pid_t pid, const std::string &memory_cgroup) {
    checked = true;
    // The kernel's own view of where the worker is: /proc/PID/cgroup.
    const std::string cpu_path = CgroupOf(pid, "cpu");
    INFO("/proc/" << pid << "/cgroup cpu: " << cpu_path);
    REQUIRE_THAT(cpu_path, Catch::StartsWith("/" + Cgroup::NamePrefix()));
    const std::string dir = std::string(kDefaultCpuCgroupRoot) + cpu_path;
    CHECK(std::stoull(oomsim_test::ReadFile(dir + "/cpu.cfs_quota_us")) == 5000);
    CHECK(std::stoull(oomsim_test::ReadFile(dir + "/cpu.cfs_period_us")) == kCpuPeriodUs);
    CHECK_THAT(oomsim_test::ReadFile(dir + "/cgroup.procs"), Catch::Contains(std::to_string(pid)));
    if (e == Enforcement::kCgroup) {
      // The same name in both hierarchies, and the worker in both.
      CHECK(memory_cgroup.substr(memory_cgroup.rfind('/')) == cpu_path);
      CHECK(CgroupOf(pid, "memory") == cpu_path);
    }
  };
  RunResult r = RunWorker(req);
  INFO(r.end_detail);
  CHECK(checked);
  CHECK(r.end == EndKind::kSurvived);
  CHECK(r.cgroup_removed);
  REQUIRE_FALSE(r.cpu_cgroup_path.empty());
  CHECK_FALSE(DirExists(r.cpu_cgroup_path));
  REQUIRE(r.cpu_stat.has_value());
  CHECK(r.cpu_stat->nr_periods > 0);
  CHECK(r.cpu_stat->nr_throttled > 0);
  CHECK(r.cpu_stat->throttled_time_ns > 0);
  CheckNoLeftoverCgroups(kDefaultCpuCgroupRoot);
  if (e == Enforcement::kCgroup) CheckNoLeftoverCgroups();
}

TEST_CASE("runner (cpu): a cpu cgroup that cannot be created fails the start and leaves no memory cgroup",
          "[oomsim][cpu][runner]") {
  Enforcement e = CgroupSkipReason().empty() ? Enforcement::kCgroup : Enforcement::kWatchdog;
  RunRequest req = Request("1MiB:1MiB", 64 * kMiB, e);
  req.cpu_quota_us = 30000;
  req.cpu_cgroup_root = "/nonexistent/cpu";
  RunResult r = RunWorker(req);
  CHECK(r.end == EndKind::kStartFailed);
  CHECK_THAT(r.end_detail, Catch::Contains("/nonexistent/cpu"));
  CHECK(r.phases.empty());
  if (e == Enforcement::kCgroup) CheckNoLeftoverCgroups();
}

TEST_CASE("runner: a cgroup that cannot be created fails the start and runs nothing", "[oomsim][runner]") {
  RunRequest req = Request("1MiB:1MiB", 64 * kMiB, Enforcement::kCgroup);
  req.cgroup_root = "/nonexistent/cgroup/root";
  RunResult r = RunWorker(req);
  CHECK(r.end == EndKind::kStartFailed);
  CHECK_THAT(r.end_detail, Catch::Contains("/nonexistent/cgroup/root"));
  CHECK(r.phases.empty());
}

TEST_CASE("runner (watchdog, forced): survives under a large cap and kills above a small one",
          "[oomsim][watchdog][runner]") {
  RunResult ok = RunWorker(Request("4MiB:16MiB", 256 * kMiB, Enforcement::kWatchdog));
  INFO(ok.end_detail);
  CHECK(ok.end == EndKind::kSurvived);
  CHECK(ok.enforcement == Enforcement::kWatchdog);
  CHECK(ok.cgroup_path.empty());
  CHECK_FALSE(ok.usage.empty());
  REQUIRE(ok.peak_bytes.has_value());
  CHECK(*ok.peak_bytes > 4 * kMiB);

  RunResult killed = RunWorker(Request("1MiB:1MiB,96MiB:0,1MiB:1MiB", 32 * kMiB, Enforcement::kWatchdog, "off"));
  INFO(killed.end_detail);
  CHECK(killed.end == EndKind::kWatchdogKilled);
  CHECK(killed.term_signal == SIGKILL);
  CHECK(killed.watchdog_kill_rss > 32 * kMiB);
  CHECK(killed.last_phase() == 2);
  CHECK_THAT(killed.end_detail, Catch::Contains("watchdog") && Catch::Contains("phase 2"));
}

TEST_CASE("the binary: SIGTERM or SIGINT kills the worker, removes its cgroup, exits 128+N",
          "[oomsim][cgroup][signal]") {
  SKIP_WITHOUT_CGROUPS();
  const int sig = GENERATE(SIGTERM, SIGINT);
  // With a CPU quota where a cpu cgroup can be made: its cgroup must go too.
  const bool with_cpu = CpuCgroupSkipReason().empty();
  INFO("signal " << sig << (with_cpu ? ", with --cpu 50%" : ""));
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // A run that would take minutes: 8 MiB live and 1 TiB of churn.
    execl(PACEGC_OOMSIM_EXE, PACEGC_OOMSIM_EXE, "--cap", "64MiB", "--set", "phases=8MiB:1TiB", "--policy", "gogc",
          "--quiet", with_cpu ? "--cpu" : static_cast<char *>(nullptr), "50%", static_cast<char *>(nullptr));
    _exit(127);
  }
  const std::string prefix = "pacegc-oomsim-" + std::to_string(pid) + "-";
  bool appeared = false;
  for (int i = 0; i < 2000 && !appeared; ++i) {  // up to 20 s for the run's cgroups to appear
    appeared = !oomsim_test::EntriesWithPrefix(kDefaultCgroupRoot, prefix).empty() &&
               (!with_cpu || !oomsim_test::EntriesWithPrefix(kDefaultCpuCgroupRoot, prefix).empty());
    if (!appeared) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(appeared);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the worker start allocating
  kill(pid, sig);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  if (WIFEXITED(status)) CHECK(WEXITSTATUS(status) == 128 + sig);
  CHECK(oomsim_test::EntriesWithPrefix(kDefaultCgroupRoot, prefix).empty());
  CHECK(oomsim_test::EntriesWithPrefix(kDefaultCpuCgroupRoot, prefix).empty());
}

TEST_CASE("worker: the ballast stays reachable and untouched", "[oomsim][worker]") {
  // 64 MiB of ballast, 4 MiB live and 32 MiB of churn under a 96 MiB cap: the ballast must be marked live every
  // cycle (the collector counts it), yet never be charged to the cap (its pages are never touched), or the run
  // would not fit (64 + 4 + 32 + the collector's own memory > 96).
  Enforcement e = CgroupSkipReason().empty() ? Enforcement::kCgroup : Enforcement::kWatchdog;
  RunRequest req = Request("4MiB:32MiB", 96 * kMiB, e);
  req.args.insert(req.args.end(), {"--ballast", "64MiB"});
  RunResult r = RunWorker(req);
  INFO(r.end_detail);
  REQUIRE(r.end == EndKind::kSurvived);
  REQUIRE_FALSE(r.samples.empty());
  CHECK(r.samples.back().live.value_or(0) >= 64 * kMiB);  // the last cycle marked the ballast
  CHECK(r.result->U64("gc_cycles").value_or(0) > 0);
}
