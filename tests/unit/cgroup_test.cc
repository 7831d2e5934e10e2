// Unit tests for gc/cgroup: the CPU quota of this process's cgroup, from /proc/self/cgroup, mountinfo and the
// cgroup files. Parsers with fixture text; the reader against a fake /proc and /sys tree in a temporary directory;
// and the library as a program starts it (cgroup_probe) inside a real cgroup-v1 cpu cgroup with a quota and a
// memory cgroup with a limit, where they are writable (skipped with the reason otherwise).
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
#include <functional>
#include <string>
#include <vector>

#include <pacegc/pacegc.h>

#include "base/os.h"
#include "gc/cgroup.h"

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
  // A v2 host (kV2Cgroup): `file` of the service's cgroup holds `service`, the same file of its parent `slice`.
  void PutV2(const std::string &file, const std::string &service, const std::string &slice) {
    Put("/proc/self/cgroup", kV2Cgroup);
    Put("/proc/self/mountinfo", kV2Mountinfo);
    Put("/sys/fs/cgroup/system.slice/service.service/" + file, service);
    Put("/sys/fs/cgroup/system.slice/" + file, slice);
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
  t.PutV2("cpu.max", "max 100000\n", "25000 100000\n");
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

TEST_CASE("cgroup: memory limit files", "[cgroup]") {
  CHECK(ParseV1MemoryLimit("536870912\n") == 536870912u);
  CHECK(ParseV1MemoryLimit("9223372036854771712\n") == 0);  // v1's "no limit" (4 KiB pages)
  CHECK(ParseV1MemoryLimit("9223372036854710272\n") == 0);  // ... and with 64 KiB pages
  CHECK(ParseV1MemoryLimit("-1") == 0);
  CHECK(ParseV1MemoryLimit("0") == 0);
  CHECK(ParseV1MemoryLimit("12x") == 0);
  CHECK(ParseV1MemoryLimit("") == 0);
  CHECK(ParseV2MemoryMax("max\n") == 0);
  CHECK(ParseV2MemoryMax("268435456\n") == 268435456u);
  CHECK(ParseV2MemoryMax("maximum") == 0);
  CHECK(ParseV2MemoryMax("") == 0);
  CHECK(std::string(HierarchyName(Hierarchy::kV2)) == "cgroup-v2");
}

TEST_CASE("cgroup: the memory reader takes the lowest limit up the v1 hierarchy and follows changes", "[cgroup]") {
  TempTree t;
  t.Put("/proc/self/cgroup", kV1Cgroup);  // memory:/docker/abc, shown as the mount's root
  t.Put("/proc/self/mountinfo", kV1Mountinfo);
  const std::string base = "/sys/fs/cgroup/memory";
  t.Put(base + "/memory.limit_in_bytes", "9223372036854771712\n");
  MemoryLimitReader reader(t.root);
  MemoryLimit m = reader.Refresh();
  CHECK(m.bytes == 0);  // the container's cgroup is the mount's root: no limit there
  CHECK(m.hierarchy == Hierarchy::kNone);
  t.Put(base + "/memory.limit_in_bytes", "536870912\n");  // resized in place
  m = reader.Refresh();
  CHECK(m.bytes == 536870912u);
  CHECK(m.hierarchy == Hierarchy::kV1);

  TempTree nested;  // a pod with a limit, its container without: the pod's
  nested.Put("/proc/self/cgroup", "9:memory:/kubepods/pod1/ctr\n0::/\n");
  nested.Put("/proc/self/mountinfo", "34 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n");
  nested.Put(base + "/memory.limit_in_bytes", "9223372036854771712\n");
  nested.Put(base + "/kubepods/pod1/memory.limit_in_bytes", "1073741824\n");
  nested.Put(base + "/kubepods/pod1/ctr/memory.limit_in_bytes", "9223372036854771712\n");
  MemoryLimitReader pod(nested.root);
  CHECK(pod.Refresh().bytes == 1073741824u);
  nested.Put(base + "/kubepods/pod1/ctr/memory.limit_in_bytes", "268435456\n");  // lower in the container
  CHECK(pod.Refresh().bytes == 268435456u);
}

TEST_CASE("cgroup: the memory reader reads memory.max on v2, and nothing at all means no limit", "[cgroup]") {
  TempTree t;
  t.PutV2("memory.max", "max\n", "2147483648\n");
  MemoryLimitReader reader(t.root);
  MemoryLimit m = reader.Refresh();
  CHECK(m.bytes == 2147483648u);
  CHECK(m.hierarchy == Hierarchy::kV2);
  t.Put("/sys/fs/cgroup/system.slice/memory.max", "max\n");  // the limit removed
  CHECK(reader.Refresh().bytes == 0);

  TempTree empty;
  MemoryLimitReader none(empty.root);
  m = none.Refresh();
  CHECK(m.bytes == 0);
  CHECK(m.hierarchy == Hierarchy::kNone);
}

namespace {

// Why a real cgroup-v1 cgroup of controller `root` cannot be made here (its `file` missing, say), or "" if it can.
std::string CgroupUnavailable(const std::string &root, const std::string &file, const std::string &what) {
  if (access(root.c_str(), F_OK) != 0) return root + " does not exist (no cgroup-v1 " + what + " controller)";
  if (access((root + "/" + file).c_str(), F_OK) != 0) return root + " has no " + file;
  if (access(root.c_str(), W_OK) != 0) return root + " is not writable (not root)";
  return "";
}

// A cgroup made for one test and removed after it (its processes have exited by then).
struct TestCgroup {
  std::string dir;
  TestCgroup(const std::string &root, const char *kind) {
    dir = root + "/pacegc-unit-" + kind + "-" + std::to_string(getpid());
    REQUIRE((mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST));
  }
  ~TestCgroup() { rmdir(dir.c_str()); }
};

struct ProbeRun {
  int status = -1;   // exit status, -1 if it did not exit normally
  std::string text;  // stdout and stderr
};

// Runs cgroup_probe with args in a child that first joins the cgroup dir, with the environment of this process
// minus the pacing settings, plus env (NAME=VALUE). on_output(text so far) is called after every read, so the test
// can act when the probe reaches a point (e.g. resize the cgroup on "waiting").
template <typename OnOutput>
ProbeRun RunProbeInCgroup(const std::string &dir, std::vector<std::string> args, std::vector<std::string> env,
                          OnOutput on_output) {
  // Everything the child needs is prepared before fork: it only writes, dups and execs.
  for (char **e = environ; *e != nullptr; ++e) {
    std::string v = *e;
    if (v.rfind("GOGC=", 0) != 0 && v.rfind("GOMEMLIMIT=", 0) != 0 && v.rfind("PACEGC_AUTOMEMLIMIT=", 0) != 0) {
      env.push_back(v);
    }
  }
  args.insert(args.begin(), PACEGC_CGROUP_PROBE);
  std::vector<char *> argv, envp;
  for (std::string &a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string &e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string procs = dir + "/cgroup.procs";
  int out[2];
  REQUIRE(pipe(out) == 0);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    dup2(out[1], 1);
    dup2(out[1], 2);
    close(out[0]);
    int fd = open(procs.c_str(), O_WRONLY);
    if (fd < 0 || write(fd, "0", 1) != 1) _exit(90);  // "0": the writing process itself
    close(fd);
    execve(argv[0], argv.data(), envp.data());
    _exit(91);
  }
  close(out[1]);
  ProbeRun run;
  char buf[512];
  for (;;) {
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    run.text.append(buf, static_cast<size_t>(n));
    on_output(run.text);
  }
  close(out[0]);
  int status = 0;
  waitpid(child, &status, 0);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

// An on_output for RunProbeInCgroup: writes text to path (resizes the cgroup) once the probe says "waiting".
std::function<void(const std::string &)> WriteWhenWaiting(std::string path, std::string text) {
  return [path = std::move(path), text = std::move(text), done = false](const std::string &out) mutable {
    if (!done && out.find("waiting") != std::string::npos) {
      done = true;
      CHECK(WriteText(path, text));
    }
  };
}

bool Has(const ProbeRun &run, const std::string &what) { return run.text.find(what) != std::string::npos; }

// The first line of the probe's output that starts with prefix, or "".
std::string Line(const ProbeRun &run, const std::string &prefix) {
  size_t at = run.text.rfind(prefix, 0) == 0 ? 0 : run.text.find("\n" + prefix);
  if (at == std::string::npos) return "";
  if (at != 0) ++at;
  return run.text.substr(at, run.text.find('\n', at) - at);
}

const char *const kCpuRoot = "/sys/fs/cgroup/cpu";
const char *const kMemoryRoot = "/sys/fs/cgroup/memory";

}  // namespace

TEST_CASE("cgroup: a program started in a cpu cgroup with a quota reports it, and follows a resize", "[cgroup]") {
  std::string why = CgroupUnavailable(kCpuRoot, "cpu.cfs_quota_us", "cpu");
  if (!why.empty()) {
    WARN("skipped: " << why);
    return;
  }
  TestCgroup cg(kCpuRoot, "cpu");
  REQUIRE(WriteText(cg.dir + "/cpu.cfs_period_us", "100000"));
  REQUIRE(WriteText(cg.dir + "/cpu.cfs_quota_us", "30000"));
  // The probe prints its capacity at start-up, then waits (at most 20 s) until the background thread has seen a
  // different one, and prints that.
  ProbeRun run = RunProbeInCgroup(cg.dir, {"wait-change"}, {},
                                  WriteWhenWaiting(cg.dir + "/cpu.cfs_quota_us", "150000"));  // 1.5 cores
  INFO(run.text);
  CHECK(run.status == 0);
  CHECK(Has(run, "start capacity=0.300 quota=0.300 source=1"));
  double expected = std::min(1.5, static_cast<double>(pacegc::internal::os::NumCpus()));
  char want[64];
  snprintf(want, sizeof want, "changed capacity=%.3f quota=1.500", expected);
  CHECK(Has(run, want));
}

TEST_CASE("cgroup: in a memory cgroup the soft limit defaults to 90% of its limit and follows a resize",
          "[cgroup]") {
  std::string why = CgroupUnavailable(kMemoryRoot, "memory.limit_in_bytes", "memory");
  if (!why.empty()) {
    WARN("skipped: " << why);
    return;
  }
  constexpr uint64_t kMiB = uint64_t{1} << 20;
  TestCgroup cg(kMemoryRoot, "memory");
  REQUIRE(WriteText(cg.dir + "/memory.limit_in_bytes", std::to_string(512 * kMiB)));
  auto state = [](uint64_t limit, int source, uint64_t cgroup, const char *ratio) {
    return " limit=" + std::to_string(limit) + " limit_source=" + std::to_string(source) +
           " cgroup_limit=" + std::to_string(cgroup) + " hierarchy=1 ratio=" + ratio;
  };
  auto none = [](const std::string &) {};
  auto resize = WriteWhenWaiting(cg.dir + "/memory.limit_in_bytes", std::to_string(256 * kMiB));

  SECTION("the default: 90%, then the resized limit; gcpacertrace says so") {
    ProbeRun run = RunProbeInCgroup(cg.dir, {"wait-change"}, {"GODEBUG=gcpacertrace=1"}, resize);
    INFO(run.text);
    CHECK(run.status == 0);
    CHECK_THAT(Line(run, "start "),
               Catch::Contains(state(483183820, PGC_MEMORY_LIMIT_CGROUP, 512 * kMiB, "0.900")));
    CHECK_THAT(Line(run, "changed "),
               Catch::Contains(state(241591910, PGC_MEMORY_LIMIT_CGROUP, 256 * kMiB, "0.900")));
    CHECK(Has(run, "pacegc: memory limit 483183820 bytes from the cgroup (0.9 x cgroup-v1 limit 536870912 "
                   "bytes)\n"));
    CHECK(Has(run, "pacegc: memory limit 241591910 bytes from the cgroup (0.9 x cgroup-v1 limit 268435456 "
                   "bytes)\n"));
    CHECK_THAT(Line(run, "pacer: gc 1 "), Catch::Contains(" limit_bytes=483183820 ") &&
                                               Catch::Contains(" limit_source=cgroup "));
  }
  SECTION("PACEGC_AUTOMEMLIMIT=off: no limit, the cgroup's still reported") {
    ProbeRun run = RunProbeInCgroup(cg.dir, {}, {"PACEGC_AUTOMEMLIMIT=off"}, none);
    INFO(run.text);
    CHECK(run.status == 0);
    CHECK_THAT(run.text, Catch::Contains(state(INT64_MAX, PGC_MEMORY_LIMIT_NONE, 512 * kMiB, "0.000")));
  }
  SECTION("PACEGC_AUTOMEMLIMIT=0.5") {
    ProbeRun run = RunProbeInCgroup(cg.dir, {}, {"PACEGC_AUTOMEMLIMIT=0.5"}, none);
    INFO(run.text);
    CHECK(run.status == 0);
    CHECK_THAT(run.text, Catch::Contains(state(256 * kMiB, PGC_MEMORY_LIMIT_CGROUP, 512 * kMiB, "0.500")));
  }
  SECTION("an explicit GOMEMLIMIT wins, GOMEMLIMIT=off too") {
    ProbeRun run = RunProbeInCgroup(cg.dir, {}, {"GOMEMLIMIT=100MiB"}, none);
    INFO(run.text);
    CHECK(run.status == 0);
    CHECK_THAT(run.text, Catch::Contains(state(100 * kMiB, PGC_MEMORY_LIMIT_ENV, 512 * kMiB, "0.900")));
    run = RunProbeInCgroup(cg.dir, {}, {"GOMEMLIMIT=off"}, none);
    INFO(run.text);
    CHECK_THAT(run.text, Catch::Contains(state(INT64_MAX, PGC_MEMORY_LIMIT_ENV, 512 * kMiB, "0.900")));
  }
  SECTION("after pgc_set_memory_limit a resize no longer moves the limit") {
    ProbeRun run = RunProbeInCgroup(cg.dir, {"set-limit-wait", std::to_string(100 * kMiB)}, {}, resize);
    INFO(run.text);
    CHECK(run.status == 0);
    CHECK_THAT(Line(run, "start "),
               Catch::Contains(state(483183820, PGC_MEMORY_LIMIT_CGROUP, 512 * kMiB, "0.900")));
    // Re-read (cgroup_limit moved) but not applied.
    CHECK_THAT(Line(run, "after "),
               Catch::Contains(state(100 * kMiB, PGC_MEMORY_LIMIT_API, 256 * kMiB, "0.900")));
  }
}
