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

std::string MemoryCgroup::NamePrefix() {
  return "pacegc-oomsim-" + std::to_string(getpid()) + "-";
}

std::vector<std::string> MemoryCgroup::RemoveStale(const std::string &root, double min_age_s,
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

std::string MemoryCgroup::Probe(const std::string &root) {
  if (!Exists(root + "/memory.limit_in_bytes")) {
    return root + " is not a cgroup v1 memory hierarchy (no memory.limit_in_bytes)";
  }
  MemoryCgroup probe;
  std::string error;
  if (!probe.Create(root, uint64_t{1} << 40, &error)) return error;
  if (!probe.Remove(&error)) return error;
  return "";
}

MemoryCgroup::~MemoryCgroup() {
  std::string ignored;
  Remove(&ignored);
}

bool MemoryCgroup::Create(const std::string &root, uint64_t cap_bytes, std::string *error) {
  if (!path_.empty()) {
    *error = "cgroup already created: " + path_;
    return false;
  }
  std::string path = root + "/" + NamePrefix() + std::to_string(g_next_cgroup.fetch_add(1));
  if (mkdir(path.c_str(), 0755) != 0) {
    *error = "cannot create " + path + ": " + strerror(errno);
    return false;
  }
  path_ = path;
  int err = WriteFile(path_ + "/memory.limit_in_bytes", std::to_string(cap_bytes));
  if (err != 0) {
    *error = "cannot write " + path_ + "/memory.limit_in_bytes: " + strerror(err);
    std::string ignored;
    Remove(&ignored);
    return false;
  }
  has_memsw_ = Exists(path_ + "/memory.memsw.limit_in_bytes");
  if (has_memsw_) {
    err = WriteFile(path_ + "/memory.memsw.limit_in_bytes", std::to_string(cap_bytes));
    if (err != 0) {
      *error = "cannot write " + path_ + "/memory.memsw.limit_in_bytes: " + strerror(err);
      std::string ignored;
      Remove(&ignored);
      return false;
    }
  }
  return true;
}

bool MemoryCgroup::Attach(pid_t pid, std::string *error) {
  int err = WriteFile(path_ + "/cgroup.procs", std::to_string(pid));
  if (err != 0) {
    *error = "cannot move pid " + std::to_string(pid) + " into " + path_ + ": " + strerror(err);
    return false;
  }
  return true;
}

std::optional<uint64_t> MemoryCgroup::ReadNumber(const char *file) const {
  if (path_.empty()) return std::nullopt;
  std::ifstream in(path_ + "/" + file);
  unsigned long long v = 0;
  if (!(in >> v)) return std::nullopt;
  return static_cast<uint64_t>(v);
}

std::optional<uint64_t> MemoryCgroup::UsageBytes() const {
  return ReadNumber("memory.usage_in_bytes");
}
std::optional<uint64_t> MemoryCgroup::MaxUsageBytes() const {
  return ReadNumber("memory.max_usage_in_bytes");
}

std::optional<uint64_t> MemoryCgroup::OomKillCount() const {
  if (path_.empty()) return std::nullopt;
  std::ifstream in(path_ + "/memory.oom_control");
  std::string key;
  unsigned long long v = 0;
  while (in >> key >> v) {
    if (key == "oom_kill") return static_cast<uint64_t>(v);
  }
  return std::nullopt;  // kernels before 4.13 do not count kills
}

bool MemoryCgroup::Remove(std::string *error) {
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

}  // namespace pacegc::oomsim
