// bench/oomsim/cgroup.cc — see cgroup.h.
#include "cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pacegc::oomsim {
namespace {

std::atomic<unsigned> g_next_cgroup{1};

bool Exists(const std::string &path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

void SleepMs(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// Creates a scratch cgroup with create(cgroup, &error) and removes it: "" when both work, otherwise why not.
template <typename T, typename F>
std::string ProbeWith(F create) {
  T probe;
  std::string error;
  if (!create(probe, &error)) return error;
  if (!probe.Remove(&error)) return error;
  return "";
}

}  // namespace

int WriteFile(const std::string &path, const std::string &text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n;
  do {
    n = write(fd, text.data(), text.size());
  } while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : (static_cast<size_t>(n) == text.size() ? 0 : EIO);
  close(fd);
  return err;
}

std::string Cgroup::NamePrefix() {
  return "pacegc-oomsim-" + std::to_string(getpid()) + "-";
}

std::string Cgroup::NewName() {
  return NamePrefix() + std::to_string(g_next_cgroup.fetch_add(1));
}

std::vector<std::string> Cgroup::RemoveStale(const std::string &root, double min_age_s,
                                             std::vector<std::string> *failed) {
  std::vector<std::string> removed;
  DIR *dir = opendir(root.c_str());
  if (dir == nullptr) return removed;
  const std::string prefix = "pacegc-oomsim-";
  std::vector<std::string> names;
  while (struct dirent *d = readdir(dir)) {
    std::string name = d->d_name;
    if (name.rfind(prefix, 0) == 0) names.push_back(name);
  }
  closedir(dir);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  for (const std::string &name : names) {
    // pacegc-oomsim-<pid>-<n>, both numbers.
    std::string rest = name.substr(prefix.size());
    size_t dash = rest.find('-');
    if (dash == std::string::npos || dash == 0 || dash + 1 == rest.size()) continue;
    std::string pid_text = rest.substr(0, dash), n_text = rest.substr(dash + 1);
    if (pid_text.find_first_not_of("0123456789") != std::string::npos ||
        n_text.find_first_not_of("0123456789") != std::string::npos || pid_text.size() > 9) {
      continue;
    }
    pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    if (pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH) continue;  // its parent is alive (or not ours)
    std::string path = root + "/" + name;
    struct stat st;
    if (stat(path.c_str(), &st) != 0) continue;
    if (static_cast<double>(now.tv_sec - st.st_mtim.tv_sec) < min_age_s) continue;
    std::ifstream procs(path + "/cgroup.procs");
    std::string task;
    if (procs >> task) continue;  // still holds a task: not stale, or not removable anyway
    if (rmdir(path.c_str()) == 0 || errno == ENOENT) {
      removed.push_back(name);
    } else if (failed != nullptr) {
      failed->push_back(name + ": " + strerror(errno));
    }
  }
  return removed;
}

Cgroup::~Cgroup() {
  std::string ignored;
  Remove(&ignored);
}

bool Cgroup::MakeDirectory(const std::string &root, const std::string &name, std::string *error) {
  if (!path_.empty()) {
    *error = "cgroup already created: " + path_;
    return false;
  }
  std::string path = root + "/" + (name.empty() ? NewName() : name);
  if (mkdir(path.c_str(), 0755) != 0) {
    *error = "cannot create " + path + ": " + strerror(errno);
    return false;
  }
  path_ = path;
  return true;
}

bool Cgroup::WriteOrRemove(const char *file, const std::string &text, std::string *error) {
  int err = WriteFile(path_ + "/" + file, text);
  if (err == 0) return true;
  *error = "cannot write " + text + " to " + path_ + "/" + file + ": " + strerror(err);
  std::string ignored;
  Remove(&ignored);
  return false;
}

bool Cgroup::Attach(pid_t pid, std::string *error) {
  int err = WriteFile(path_ + "/cgroup.procs", std::to_string(pid));
  if (err != 0) {
    *error = "cannot move pid " + std::to_string(pid) + " into " + path_ + ": " + strerror(err);
    return false;
  }
  return true;
}

std::optional<uint64_t> Cgroup::ReadNumber(const char *file) const {
  if (path_.empty()) return std::nullopt;
  std::ifstream in(path_ + "/" + file);
  unsigned long long v = 0;
  if (!(in >> v)) return std::nullopt;
  return static_cast<uint64_t>(v);
}

std::optional<uint64_t> Cgroup::ReadKeyed(const char *file, const char *key) const {
  if (path_.empty()) return std::nullopt;
  std::ifstream in(path_ + "/" + file);
  std::string k;
  unsigned long long v = 0;
  while (in >> k >> v) {
    if (k == key) return static_cast<uint64_t>(v);
  }
  return std::nullopt;
}

bool Cgroup::Remove(std::string *error) {
  if (path_.empty()) return true;
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (rmdir(path_.c_str()) == 0 || errno == ENOENT) {
      path_.clear();
      return true;
    }
    if (errno != EBUSY) break;
    SleepMs(10);
  }
  *error = "cannot remove " + path_ + ": " + strerror(errno);
  return false;
}

// ---- memory ----

std::string MemoryCgroup::Probe(const std::string &root) {
  if (!Exists(root + "/memory.limit_in_bytes")) {
    return root + " is not a cgroup v1 memory hierarchy (no memory.limit_in_bytes)";
  }
  return ProbeWith<MemoryCgroup>(
      [&](MemoryCgroup &cg, std::string *error) { return cg.Create(root, uint64_t{1} << 40, error); });
}

bool MemoryCgroup::Create(const std::string &root, uint64_t cap_bytes, std::string *error, const std::string &name) {
  if (!MakeDirectory(root, name, error)) return false;
  if (!WriteOrRemove("memory.limit_in_bytes", std::to_string(cap_bytes), error)) return false;
  has_memsw_ = Exists(path_ + "/memory.memsw.limit_in_bytes");
  return !has_memsw_ || WriteOrRemove("memory.memsw.limit_in_bytes", std::to_string(cap_bytes), error);
}

std::optional<uint64_t> MemoryCgroup::UsageBytes() const {
  return ReadNumber("memory.usage_in_bytes");
}
std::optional<uint64_t> MemoryCgroup::MaxUsageBytes() const {
  return ReadNumber("memory.max_usage_in_bytes");
}

std::optional<uint64_t> MemoryCgroup::OomKillCount() const {
  return ReadKeyed("memory.oom_control", "oom_kill");  // kernels before 4.13 do not count kills
}

// ---- cpu ----

std::string CpuQuotaPercent(uint64_t quota_us, uint64_t period_us) {
  char buf[64];
  snprintf(buf, sizeof(buf), "%.2f", 100.0 * static_cast<double>(quota_us) / static_cast<double>(period_us));
  std::string text = buf;
  while (text.back() == '0') text.pop_back();
  if (text.back() == '.') text.pop_back();
  return text + "%";
}

std::string CpuCgroup::Probe(const std::string &root) {
  if (!Exists(root + "/cpu.cfs_quota_us")) {
    return root + " is not a cgroup v1 cpu hierarchy with CFS bandwidth control (no cpu.cfs_quota_us)";
  }
  return ProbeWith<CpuCgroup>(
      [&](CpuCgroup &cg, std::string *error) { return cg.Create(root, kCpuPeriodUs, kCpuPeriodUs, error); });
}

bool CpuCgroup::Create(const std::string &root, uint64_t quota_us, uint64_t period_us, std::string *error,
                       const std::string &name) {
  if (!MakeDirectory(root, name, error)) return false;
  // The period first: the kernel checks the quota against it (and against a parent's quota, when it has one).
  return WriteOrRemove("cpu.cfs_period_us", std::to_string(period_us), error) &&
         WriteOrRemove("cpu.cfs_quota_us", std::to_string(quota_us), error);
}

std::optional<CpuStat> CpuCgroup::Stat() const {
  auto periods = ReadKeyed("cpu.stat", "nr_periods");
  auto throttled = ReadKeyed("cpu.stat", "nr_throttled");
  auto time_ns = ReadKeyed("cpu.stat", "throttled_time");
  if (!periods || !throttled || !time_ns) return std::nullopt;
  return CpuStat{*periods, *throttled, *time_ns};
}

}  // namespace pacegc::oomsim
