// Unit tests for gc/cgroup: the CPU quota of this process's cgroup, from /proc/self/cgroup, mountinfo and the
// cgroup files. Parsers with fixture text; the reader against a fake /proc and /sys tree in a temporary directory;
// and the library as a program starts it (cpu_probe) inside a real cgroup-v1 cpu cgroup with a quota, where one is
// writable (skipped with the reason otherwise).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gc/cgroup.h"
#include "gc/os.h"

using namespace pacegc::internal::cgroup;

namespace {

// Docker on cgroup v1: the container sees its own cgroup as the mount's root.
constexpr const char *kV1Cgroup =
    "12:pids:/docker/abc\n"
    "4:cpu,cpuacct:/docker/abc\n"
    "3:memory:/docker/abc\n"
    "0::/\n";
constexpr const char *kV1Mountinfo =
    "30 22 0:27 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
    "31 30 0:28 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
    "34 30 0:31 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n";
// A host on cgroup v2 (systemd).
constexpr const char *kV2Cgroup = "0::/system.slice/service.service\n";
constexpr const char *kV2Mountinfo =
    "25 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
    "29 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";

bool WriteText(const std::string &path, const std::string &text) {
  FILE *f = fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  bool ok = fputs(text.c_str(), f) >= 0;
  return fclose(f) == 0 && ok;
}

void MakeDirs(const std::string &path) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') mkdir(path.substr(0, i).c_str(), 0755);
  }
}

struct TempTree {
  std::string root;
  TempTree() {
    char tmpl[] = "/tmp/pacegc-cgroup-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    root = tmpl;
  }
  ~TempTree() { (void)!system(("rm -rf '" + root + "'").c_str()); }
  void Put(const std::string &rel, const std::string &text) {
    MakeDirs(root + rel.substr(0, rel.rfind('/')));
    REQUIRE(WriteText(root + rel, text));
  }
};

}  // namespace

TEST_CASE("cgroup: /proc/self/cgroup names the v1 cpu controller's and the unified hierarchy's cgroup", "[cgroup]") {
  std::string path;
  CHECK(FindCgroupPath(kV1Cgroup, "cpu", &path));
  CHECK(path == "/docker/abc");
  CHECK(FindCgroupPath(kV1Cgroup, "", &path));
  CHECK(path == "/");
  CHECK(FindCgroupPath(kV2Cgroup, "", &path));
  CHECK(path == "/system.slice/service.service");
  CHECK_FALSE(FindCgroupPath(kV2Cgroup, "cpu", &path));
  CHECK_FALSE(FindCgroupPath("4:cpuacct:/x\n", "cpu", &path));  // a list item must match whole
  CHECK(FindCgroupPath("4:cpuacct,cpu:/a:b\n", "cpu", &path));  // a path may contain ':'
  CHECK(path == "/a:b");
  CHECK_FALSE(FindCgroupPath("", "", &path));
  CHECK_FALSE(FindCgroupPath("garbage\n::\n", "cpu", &path));
}

TEST_CASE("cgroup: mountinfo gives the mount that shows the cgroup, its point and root", "[cgroup]") {
  std::string mount, root;
  CHECK(FindMount(kV1Mountinfo, "cpu", "/docker/abc", &mount, &root));
  CHECK(mount == "/sys/fs/cgroup/cpu,cpuacct");
  CHECK(root == "/docker/abc");
  CHECK_FALSE(FindMount(kV1Mountinfo, "", "/", &mount, &root));  // no cgroup2 mount
  CHECK(FindMount(kV2Mountinfo, "", "/system.slice/service.service", &mount, &root));
  CHECK(mount == "/sys/fs/cgroup");
  CHECK(root == "/");
  CHECK_FALSE(FindMount(kV2Mountinfo, "cpu", "/", &mount, &root));
  CHECK(FindMount("1 2 0:1 / /mnt/cg\\040x rw - cgroup cgroup rw,cpu\n", "cpu", "/a", &mount, &root));
  CHECK(mount == "/mnt/cg x");  // octal escapes undone
  // The same hierarchy mounted twice: a sibling cgroup bind-mounted first, the whole hierarchy second. The process
  // is in /r/Y: the sibling's mount does not show it, so its quota must not be read.
  const char *two = "40 1 0:28 /r/X /tmp/mnta rw - cgroup cgroup rw,cpu\n"
                    "41 1 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
                    "42 1 0:28 /r /mnt/r rw - cgroup cgroup rw,cpu\n";
  CHECK(FindMount(two, "cpu", "/r/Y", &mount, &root));
  CHECK(mount == "/mnt/r");  // the longest root that is a prefix of the path
  CHECK(root == "/r");
  CHECK(FindMount(two, "cpu", "/other", &mount, &root));
  CHECK(mount == "/sys/fs/cgroup/cpu");
  // A cgroup namespace whose root lies above what the only mount shows: no mount shows it, no quota.
  CHECK_FALSE(FindMount("40 1 0:28 /docker/abc /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", "cpu", "/", &mount,
                        &root));
}

TEST_CASE("cgroup: the cgroup's directory under its mount", "[cgroup]") {
  CHECK(CgroupDir("/sys/fs/cgroup/cpu", "/", "/a/b") == "/sys/fs/cgroup/cpu/a/b");
  CHECK(CgroupDir("/sys/fs/cgroup/cpu", "/", "/") == "/sys/fs/cgroup/cpu");
  CHECK(CgroupDir("/sys/fs/cgroup/cpu", "/docker/abc", "/docker/abc") == "/sys/fs/cgroup/cpu");
  CHECK(CgroupDir("/sys/fs/cgroup/cpu", "/docker/abc", "/docker/abc/sub") == "/sys/fs/cgroup/cpu/sub");
  CHECK(PathUnder("/docker/abc/sub", "/docker/abc"));
  CHECK(PathUnder("/docker/abc", "/docker/abc"));
  CHECK_FALSE(PathUnder("/docker/abcd", "/docker/abc"));
  CHECK_FALSE(PathUnder("/", "/docker/abc"));
  CHECK(PathUnder("/", "/"));
}

TEST_CASE("cgroup: quota files", "[cgroup]") {
  CHECK(ParseV1Quota("30000\n", "100000\n") == Approx(0.3));
  CHECK(ParseV1Quota("-1\n", "100000\n") == 0.0);  // no quota
  CHECK(ParseV1Quota("250000", "100000") == Approx(2.5));
  CHECK(ParseV1Quota("x", "100000") == 0.0);
  CHECK(ParseV1Quota("30000", "0") == 0.0);
  CHECK(ParseV1Quota("", "") == 0.0);
  CHECK(ParseV2CpuMax("max 100000\n") == 0.0);
  CHECK(ParseV2CpuMax("30000 100000\n") == Approx(0.3));
  CHECK(ParseV2CpuMax("50000 50000") == Approx(1.0));
  CHECK(ParseV2CpuMax("20000") == Approx(0.2));  // period omitted: the kernel's default 100 ms
  CHECK(ParseV2CpuMax("abc 100000") == 0.0);
  CHECK(ParseV2CpuMax("") == 0.0);
}

TEST_CASE("cgroup: capacity is the affinity mask lowered by a quota, never below 1% of a core", "[cgroup]") {
  CpuCapacity c = Combine(2, 0.3, CpuSource::kV1Quota);
  CHECK(c.cpus == Approx(0.3));
  CHECK(c.source == CpuSource::kV1Quota);
  CHECK(c.affinity_cpus == 2);
  c = Combine(2, 4.0, CpuSource::kV2Quota);  // a quota above the mask does not raise it
  CHECK(c.cpus == 2.0);
  CHECK(c.source == CpuSource::kAffinity);
  CHECK(c.quota_cpus == Approx(4.0));
  c = Combine(8, 0.0, CpuSource::kV1Quota);
  CHECK(c.cpus == 8.0);
  CHECK(c.source == CpuSource::kAffinity);
  CHECK(Combine(1, 0.0001, CpuSource::kV2Quota).cpus == Approx(pacegc::pacer::kMinCpus));
  CHECK(Combine(0, 0.0, CpuSource::kAffinity).cpus == 1.0);
  CHECK(std::string(CpuSourceName(CpuSource::kV1Quota)) == "cgroup-v1");
}

TEST_CASE("cgroup: the reader takes the lowest quota up the v1 hierarchy and follows changes", "[cgroup]") {
  TempTree t;
  t.Put("/proc/self/cgroup", "4:cpu,cpuacct:/kubepods/pod1/ctr\n0::/\n");
  t.Put("/proc/self/mountinfo", "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n");
  const std::string base = "/sys/fs/cgroup/cpu,cpuacct";
  t.Put(base + "/cpu.cfs_quota_us", "-1\n");
  t.Put(base + "/cpu.cfs_period_us", "100000\n");
  t.Put(base + "/kubepods/pod1/cpu.cfs_quota_us", "50000\n");  // the pod: half a core
  t.Put(base + "/kubepods/pod1/cpu.cfs_period_us", "100000\n");
  t.Put(base + "/kubepods/pod1/ctr/cpu.cfs_quota_us", "-1\n");  // the container itself: none
  t.Put(base + "/kubepods/pod1/ctr/cpu.cfs_period_us", "100000\n");
  CpuQuotaReader reader(t.root);
  CpuCapacity c = reader.Refresh();
  CHECK(c.quota_cpus == Approx(0.5));
  CHECK(c.cpus == Approx(std::min(0.5, static_cast<double>(pacegc::internal::os::NumCpus()))));
  CHECK(c.source == CpuSource::kV1Quota);
  // Resized in place.
  t.Put(base + "/kubepods/pod1/ctr/cpu.cfs_quota_us", "10000\n");
  c = reader.Refresh();
  CHECK(c.quota_cpus == Approx(0.1));
  CHECK(c.cpus == Approx(0.1));
  // The quota removed everywhere: the affinity mask.
  t.Put(base + "/kubepods/pod1/ctr/cpu.cfs_quota_us", "-1\n");
  t.Put(base + "/kubepods/pod1/cpu.cfs_quota_us", "-1\n");
  c = reader.Refresh();
  CHECK(c.quota_cpus == 0.0);
  CHECK(c.source == CpuSource::kAffinity);
  CHECK(c.cpus == static_cast<double>(pacegc::internal::os::NumCpus()));
}

TEST_CASE("cgroup: a process moved to another cgroup whose old one is removed is followed at once", "[cgroup]") {
  TempTree t;
  const std::string base = "/sys/fs/cgroup/cpu";
  t.Put("/proc/self/mountinfo", "31 30 0:28 / " + base + " rw - cgroup cgroup rw,cpu\n");
  t.Put("/proc/self/cgroup", "4:cpu:/A\n");
  t.Put(base + "/A/cpu.cfs_quota_us", "30000\n");
  t.Put(base + "/A/cpu.cfs_period_us", "100000\n");
  t.Put(base + "/B/cpu.cfs_quota_us", "80000\n");
  t.Put(base + "/B/cpu.cfs_period_us", "100000\n");
  t.Put(base + "/cpu.cfs_quota_us", "-1\n");  // the root is still there after the move
  t.Put(base + "/cpu.cfs_period_us", "100000\n");
  CpuQuotaReader reader(t.root);
  CHECK(reader.Refresh().quota_cpus == Approx(0.3));
  t.Put("/proc/self/cgroup", "4:cpu:/B\n");
  REQUIRE(system(("rm -rf '" + t.root + base + "/A'").c_str()) == 0);
  CHECK(reader.Refresh().quota_cpus == Approx(0.8));  // not the root's "none" for the next 16 refreshes
}

TEST_CASE("cgroup: the reader reads cpu.max on v2, and nothing at all means no quota", "[cgroup]") {
  TempTree t;
  t.Put("/proc/self/cgroup", kV2Cgroup);
  t.Put("/proc/self/mountinfo", kV2Mountinfo);
  t.Put("/sys/fs/cgroup/system.slice/service.service/cpu.max", "max 100000\n");
  t.Put("/sys/fs/cgroup/system.slice/cpu.max", "25000 100000\n");
  CpuQuotaReader reader(t.root);
  CpuCapacity c = reader.Refresh();
  CHECK(c.quota_cpus == Approx(0.25));
  CHECK(c.source == CpuSource::kV2Quota);

  TempTree empty;  // no /proc at all (a chroot without it): the affinity mask, no error
  CpuQuotaReader none(empty.root);
  c = none.Refresh();
  CHECK(c.source == CpuSource::kAffinity);
  CHECK(c.quota_cpus == 0.0);
  CHECK(c.cpus == static_cast<double>(pacegc::internal::os::NumCpus()));
}

namespace {

const char *const kCpuRoot = "/sys/fs/cgroup/cpu";

// Why a real cgroup-v1 cpu cgroup cannot be made here, or "" if it can.
std::string CpuCgroupUnavailable() {
  if (access(kCpuRoot, F_OK) != 0) return std::string(kCpuRoot) + " does not exist (no cgroup-v1 cpu controller)";
  if (access((std::string(kCpuRoot) + "/cpu.cfs_quota_us").c_str(), F_OK) != 0) {
    return std::string(kCpuRoot) + " has no cpu.cfs_quota_us (CFS bandwidth control missing)";
  }
  if (access(kCpuRoot, W_OK) != 0) return std::string(kCpuRoot) + " is not writable (not root)";
  return "";
}

}  // namespace

TEST_CASE("cgroup: a program started in a cpu cgroup with a quota reports it, and follows a resize", "[cgroup]") {
  std::string why = CpuCgroupUnavailable();
  if (!why.empty()) {
    WARN("skipped: " << why);
    return;
  }
  const std::string dir = std::string(kCpuRoot) + "/pacegc-unit-" + std::to_string(getpid());
  REQUIRE((mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST));
  REQUIRE(WriteText(dir + "/cpu.cfs_period_us", "100000"));
  REQUIRE(WriteText(dir + "/cpu.cfs_quota_us", "30000"));
  // The probe prints its capacity at start-up, then waits (at most 20 s) until the background thread has seen a
  // different one, and prints that.
  int out[2];
  REQUIRE(pipe(out) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    dup2(out[1], 1);
    dup2(out[1], 2);
    close(out[0]);
    if (!WriteText(dir + "/cgroup.procs", std::to_string(getpid()))) _exit(90);
    execl(PACEGC_CPU_PROBE, PACEGC_CPU_PROBE, "wait-change", static_cast<char *>(nullptr));
    _exit(91);
  }
  close(out[1]);
  std::string text;
  char buf[512];
  bool resized = false;
  for (;;) {
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (!resized && text.find("start ") != std::string::npos) {
      resized = true;
      CHECK(WriteText(dir + "/cpu.cfs_quota_us", "150000"));  // 1.5 cores
    }
  }
  close(out[0]);
  int status = 0;
  waitpid(child, &status, 0);
  rmdir(dir.c_str());
  INFO(text);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(text.find("start capacity=0.300 quota=0.300 source=1") != std::string::npos);
  double expected = std::min(1.5, static_cast<double>(pacegc::internal::os::NumCpus()));
  char want[64];
  snprintf(want, sizeof want, "changed capacity=%.3f quota=1.500", expected);
  CHECK(text.find(want) != std::string::npos);
}
