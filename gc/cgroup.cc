// gc/cgroup.cc — see cgroup.h.
#include "gc/cgroup.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "base/os.h"

namespace pacegc::internal::cgroup {
namespace {

// Splits text into lines (no trailing '\n'), calling fn(line) until it returns true; returns whether it did.
template <typename Fn>
bool ForEachLine(std::string_view text, Fn fn) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (fn(line)) return true;
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return false;
}

// The i-th space-separated field of line, or "" past the end.
std::string_view Field(std::string_view line, int i) {
  size_t pos = 0;
  for (int k = 0;; ++k) {
    while (pos < line.size() && line[pos] == ' ') ++pos;
    size_t end = line.find(' ', pos);
    if (end == std::string_view::npos) end = line.size();
    if (k == i) return line.substr(pos, end - pos);
    if (end == line.size()) return {};
    pos = end;
  }
}

// Whether a comma-separated list contains item.
bool ListHas(std::string_view list, std::string_view item) {
  while (true) {
    size_t comma = list.find(',');
    if (list.substr(0, comma) == item) return true;
    if (comma == std::string_view::npos) return false;
    list.remove_prefix(comma + 1);
  }
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' &&
        s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// A whole decimal number (optional leading '-'), surrounded by optional whitespace; false otherwise.
bool ParseInt(std::string_view s, int64_t *out) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t')) s.remove_suffix(1);
  if (s.empty() || s.size() > 20) return false;
  std::string buf(s);
  char *end = nullptr;
  errno = 0;
  long long v = strtoll(buf.c_str(), &end, 10);
  if (errno != 0 || end != buf.c_str() + buf.size()) return false;
  *out = v;
  return true;
}

double Quota(int64_t quota, int64_t period) {
  if (quota <= 0 || period <= 0) return 0.0;  // -1: no quota
  return static_cast<double>(quota) / static_cast<double>(period);
}

}  // namespace

const char *CpuSourceName(CpuSource s) {
  switch (s) {
    case CpuSource::kV1Quota: return "cgroup-v1";
    case CpuSource::kV2Quota: return "cgroup-v2";
    case CpuSource::kAffinity: break;
  }
  return "cpus";
}

bool FindCgroupPath(std::string_view proc_self_cgroup, std::string_view controller, std::string *path) {
  return ForEachLine(proc_self_cgroup, [&](std::string_view line) {
    // hierarchy-ID:controller-list:path (the path may itself contain ':')
    size_t c1 = line.find(':');
    if (c1 == std::string_view::npos) return false;
    size_t c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) return false;
    std::string_view id = line.substr(0, c1), list = line.substr(c1 + 1, c2 - c1 - 1);
    bool match = controller.empty() ? (id == "0" && list.empty()) : ListHas(list, controller);
    if (match) *path = std::string(line.substr(c2 + 1));
    return match;
  });
}

bool PathUnder(const std::string &path, const std::string &root) {
  if (root == "/") return !path.empty() && path[0] == '/';
  if (path == root) return true;
  return path.size() > root.size() && path.compare(0, root.size(), root) == 0 && path[root.size()] == '/';
}

bool FindMount(std::string_view mountinfo, std::string_view controller, const std::string &path,
               std::string *mount_point, std::string *root) {
  bool found = false;
  ForEachLine(mountinfo, [&](std::string_view line) {
    // id parent major:minor root mount-point options [optional fields...] - fstype source super-options
    size_t dash = line.find(" - ");
    if (dash == std::string_view::npos) return false;
    std::string_view tail = line.substr(dash + 3);
    std::string_view fstype = Field(tail, 0), super = Field(tail, 2);
    bool match = controller.empty() ? fstype == "cgroup2" : (fstype == "cgroup" && ListHas(super, controller));
    if (!match) return false;
    std::string r = Unescape(Field(line, 3));
    if (!PathUnder(path, r) || (found && r.size() <= root->size())) return false;
    *root = std::move(r);
    *mount_point = Unescape(Field(line, 4));
    found = true;
    return false;  // keep looking for a longer root
  });
  return found;
}

std::string CgroupDir(const std::string &mount_point, const std::string &root, const std::string &path) {
  if (root == "/") return path == "/" ? mount_point : mount_point + path;
  return mount_point + path.substr(root.size());
}

double ParseV1Quota(std::string_view quota_us, std::string_view period_us) {
  int64_t quota = 0, period = 0;
  if (!ParseInt(quota_us, &quota) || !ParseInt(period_us, &period)) return 0.0;
  return Quota(quota, period);
}

double ParseV2CpuMax(std::string_view cpu_max) {
  while (!cpu_max.empty() && (cpu_max.back() == '\n' || cpu_max.back() == ' ')) cpu_max.remove_suffix(1);
  std::string_view q = Field(cpu_max, 0), p = Field(cpu_max, 1);
  if (q == "max" || q.empty()) return 0.0;
  int64_t quota = 0, period = 100000;  // the period may be omitted when written; reading always shows it
  if (!ParseInt(q, &quota)) return 0.0;
  if (!p.empty() && !ParseInt(p, &period)) return 0.0;
  return Quota(quota, period);
}

CpuCapacity Combine(int affinity_cpus, double quota_cpus, CpuSource quota_source) {
  CpuCapacity c;
  c.affinity_cpus = affinity_cpus < 1 ? 1 : affinity_cpus;
  c.cpus = c.affinity_cpus;
  c.quota_cpus = quota_cpus > 0 ? quota_cpus : 0.0;
  if (c.quota_cpus > 0 && c.quota_cpus < c.cpus) {
    c.cpus = c.quota_cpus < pacer::kMinCpus ? pacer::kMinCpus : c.quota_cpus;
    c.source = quota_source;
  }
  return c;
}

bool ReadFile(const std::string &path, std::string *out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > (size_t{16} << 20)) break;  // no real cgroup or mountinfo file is this large
  }
  close(fd);
  return true;
}

uint64_t ParseV1MemoryLimit(std::string_view limit_in_bytes) {
  int64_t v = 0;
  if (!ParseInt(limit_in_bytes, &v) || v <= 0) return 0;  // -1 is written to remove a limit; reads show the max
  return static_cast<uint64_t>(v) >= kNoMemoryLimitAbove ? 0 : static_cast<uint64_t>(v);
}

uint64_t ParseV2MemoryMax(std::string_view memory_max) {
  while (!memory_max.empty() && (memory_max.back() == '\n' || memory_max.back() == ' ')) memory_max.remove_suffix(1);
  if (memory_max == "max") return 0;
  return ParseV1MemoryLimit(memory_max);  // a byte count, same rules
}

const char *HierarchyName(Hierarchy h) {
  switch (h) {
    case Hierarchy::kV1: return "cgroup-v1";
    case Hierarchy::kV2: return "cgroup-v2";
    case Hierarchy::kNone: break;
  }
  return "none";
}

bool CgroupFiles::LeafExists() const { return !dirs_.empty() && access(dirs_[0].c_str(), F_OK) == 0; }

bool CgroupFiles::Resolve() {
  resolved_ = true;
  kind_ = Hierarchy::kNone;
  dirs_.clear();
  std::string self_cgroup, mountinfo;
  if (!ReadFile(root_ + "/proc/self/cgroup", &self_cgroup)) return false;
  if (!ReadFile(root_ + "/proc/self/mountinfo", &mountinfo)) return false;
  std::string path, mount_point, mount_root;
  if (FindCgroupPath(self_cgroup, v1_controller_, &path) &&
      FindMount(mountinfo, v1_controller_, path, &mount_point, &mount_root)) {
    kind_ = Hierarchy::kV1;
  } else if (FindCgroupPath(self_cgroup, "", &path) && FindMount(mountinfo, "", path, &mount_point, &mount_root)) {
    kind_ = Hierarchy::kV2;
  } else {
    return false;
  }
  std::string top = root_ + mount_point;
  std::string dir = root_ + CgroupDir(mount_point, mount_root, path);
  // The cgroup's directory, then each parent up to the mount point.
  for (;;) {
    dirs_.push_back(dir);
    if (dir.size() <= top.size()) break;
    size_t slash = dir.rfind('/');
    if (slash == std::string::npos || slash < top.size()) break;
    dir.resize(slash);
    if (dir.size() < top.size()) break;
  }
  return true;
}

CpuCapacity CpuQuotaReader::Refresh() {
  int affinity = os::NumCpus();
  double lowest = 0.0;
  Hierarchy h = files_.Refresh([&](Hierarchy kind, const std::vector<std::string> &dirs) {
    lowest = 0.0;
    bool any = false;
    for (const std::string &dir : dirs) {
      double q = 0.0;
      if (kind == Hierarchy::kV1) {
        std::string quota, period;
        if (!ReadFile(dir + "/cpu.cfs_quota_us", &quota) || !ReadFile(dir + "/cpu.cfs_period_us", &period)) continue;
        any = true;
        q = ParseV1Quota(quota, period);
      } else {
        std::string max;
        if (!ReadFile(dir + "/cpu.max", &max)) continue;  // the v2 root has no cpu.max
        any = true;
        q = ParseV2CpuMax(max);
      }
      if (q > 0 && (lowest == 0 || q < lowest)) lowest = q;
    }
    // v2's root cgroup has no cpu.max, so a process there reads nothing and that is fine; a v1 hierarchy whose
    // files all vanished means the cgroup moved.
    return any || kind == Hierarchy::kV2;
  });
  if (h == Hierarchy::kNone) return Combine(affinity, 0.0, CpuSource::kAffinity);
  return Combine(affinity, lowest, h == Hierarchy::kV1 ? CpuSource::kV1Quota : CpuSource::kV2Quota);
}

MemoryLimit MemoryLimitReader::Refresh() {
  uint64_t lowest = 0;
  Hierarchy h = files_.Refresh([&](Hierarchy kind, const std::vector<std::string> &dirs) {
    lowest = 0;
    bool any = false;
    for (const std::string &dir : dirs) {
      std::string text;
      if (!ReadFile(dir + (kind == Hierarchy::kV1 ? "/memory.limit_in_bytes" : "/memory.max"), &text)) continue;
      any = true;  // the v2 root has no memory.max, as for cpu.max
      uint64_t b = kind == Hierarchy::kV1 ? ParseV1MemoryLimit(text) : ParseV2MemoryMax(text);
      if (b != 0 && (lowest == 0 || b < lowest)) lowest = b;
    }
    return any || kind == Hierarchy::kV2;
  });
  MemoryLimit m;
  if (h != Hierarchy::kNone && lowest != 0) {
    m.bytes = lowest;
    m.hierarchy = h;
  }
  return m;
}

}  // namespace pacegc::internal::cgroup
