// bench/oomsim/experiment.cc — see experiment.h.
#include "experiment.h"

#include <limits.h>
#include <unistd.h>

#include <stdexcept>

namespace pacegc::oomsim {

std::string SelfDirectory() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string path(buf, static_cast<size_t>(n));
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::optional<std::string> FindWorker(Runtime runtime, const std::string &worker_dir,
                                      std::vector<std::string> *searched) {
  std::vector<std::string> dirs;
  if (!worker_dir.empty()) {
    dirs.push_back(worker_dir);
  } else {
    std::string self = SelfDirectory();
    if (!self.empty()) {
      dirs.push_back(self);
      if (runtime == Runtime::kGo) dirs.push_back(self + "/../peers/go");
      if (runtime == Runtime::kBdwgc) dirs.push_back(self + "/../peers/bdwgc");
    }
  }
  if (searched != nullptr) *searched = dirs;
  for (const std::string &d : dirs) {
    std::string path = d + "/" + WorkerName(runtime);
    if (access(path.c_str(), X_OK) == 0) {
      char real[PATH_MAX];
      return realpath(path.c_str(), real) != nullptr ? std::string(real) : path;
    }
  }
  return std::nullopt;
}

Enforcement ChooseEnforcement(EnforceMode mode, const std::string &cgroup_root, std::string *note) {
  const std::string root = cgroup_root.empty() ? kDefaultCgroupRoot : cgroup_root;
  if (mode == EnforceMode::kWatchdog) {
    *note = "forced by --enforce watchdog";
    return Enforcement::kWatchdog;
  }
  std::string why = MemoryCgroup::Probe(root);
  if (why.empty()) {
    note->clear();
    return Enforcement::kCgroup;
  }
  if (mode == EnforceMode::kCgroup) throw std::runtime_error("--enforce cgroup: " + why);
  *note = "no writable cgroup v1 memory controller (" + why + ")";
  return Enforcement::kWatchdog;
}

void RequireCpuCgroups(const std::string &cpu_cgroup_root) {
  std::string why = CpuCgroup::Probe(cpu_cgroup_root.empty() ? kDefaultCpuCgroupRoot : cpu_cgroup_root);
  if (!why.empty()) {
    throw std::runtime_error("--cpu: no writable cgroup v1 cpu controller (" + why +
                             "); not running without the CPU quota");
  }
}

namespace {

// Removes the cgroups a SIGKILLed parent left under root, with a note for each.
void RemoveStaleCgroups(const std::string &root, Experiment *e) {
  std::vector<std::string> failed;
  std::vector<std::string> removed = Cgroup::RemoveStale(root, 10, &failed);
  for (const std::string &name : removed) {
    e->notes.push_back("Removed a stale cgroup of a dead parent: " + root + "/" + name);
  }
  for (const std::string &what : failed) e->notes.push_back("Could not remove a stale cgroup: " + root + "/" + what);
}

}  // namespace

Experiment RunExperiment(const Options &o, const std::string &command,
                         const std::function<void(const ProgressEvent &)> &on_progress) {
  Experiment e;
  e.command = command;
  e.scenario = ResolveScenario(o.scenario, o.cap_bytes, o.sets);
  std::vector<Policy> policies;
  for (const PolicySpec &spec : o.policies) policies.push_back(ResolvePolicy(spec, e.scenario));

  std::vector<std::pair<Runtime, std::string>> workers;
  for (Runtime r : o.runtimes) {
    std::vector<std::string> searched;
    auto path = FindWorker(r, o.worker_dir, &searched);
    if (path) {
      workers.emplace_back(r, *path);
      continue;
    }
    std::string dirs;
    for (const std::string &d : searched) dirs += (dirs.empty() ? "" : ", ") + d;
    std::string message =
        std::string(WorkerName(r)) + " not found (looked in " + (dirs.empty() ? "nowhere" : dirs) + ")";
    if (r == Runtime::kPacegc) throw std::runtime_error(message + "; build it or pass --worker-dir");
    e.notes.push_back(std::string("Skipped runtime ") + RuntimeName(r) + ": " + message +
                      (r == Runtime::kGo ? " — the Go peer needs golang-1.19-go at build time." : "."));
  }
  if (workers.empty()) throw std::runtime_error("no runtime left to run");

  e.enforcement = ChooseEnforcement(o.enforce, o.cgroup_root, &e.enforcement_note);
  const std::string cpu_root = o.cpu_cgroup_root.empty() ? kDefaultCpuCgroupRoot : o.cpu_cgroup_root;
  if (o.cpu_quota_us) {
    RequireCpuCgroups(cpu_root);
    e.cpu_quota_us = o.cpu_quota_us;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus > 0 && *o.cpu_quota_us >= static_cast<uint64_t>(cpus) * e.cpu_period_us) {
      e.notes.push_back("Note: the CPU quota " + CpuQuotaPercent(*o.cpu_quota_us, e.cpu_period_us) +
                        " is not below the machine's " + std::to_string(cpus) + " CPUs: it limits nothing.");
    }
  }
  // Cgroups left behind by an earlier parent that was SIGKILLed (the one end it cannot clean up after).
  if (e.enforcement == Enforcement::kCgroup) {
    RemoveStaleCgroups(o.cgroup_root.empty() ? kDefaultCgroupRoot : o.cgroup_root, &e);
  }
  if (o.cpu_quota_us) RemoveStaleCgroups(cpu_root, &e);

  std::vector<std::string> worker_paths;
  for (const auto &[runtime, path] : workers) {
    for (const Policy &p : policies) {
      Group g;
      g.runtime = runtime;
      g.policy = p;
      g.invocation = MakeInvocation(runtime, p, e.scenario);
      e.groups.push_back(std::move(g));
      worker_paths.push_back(path);
    }
  }

  size_t total = 0;
  for (const Group &g : e.groups) total += g.invocation.applicable ? o.runs : 0;
  size_t index = 0;
  for (unsigned run = 0; run < o.runs; ++run) {
    for (size_t gi = 0; gi < e.groups.size(); ++gi) {
      Group &g = e.groups[gi];
      if (!g.invocation.applicable) continue;
      if (Interrupted()) return e;
      ++index;
      ProgressEvent ev{ProgressEvent::kRunStart, index, total, &g, nullptr, nullptr};
      if (on_progress) on_progress(ev);
      RunRequest req;
      req.worker = worker_paths[gi];
      req.args = g.invocation.args;
      req.env = g.invocation.env;
      req.unset_env = PacingEnvironmentVariables();
      req.cap_bytes = e.scenario.cap_bytes;
      req.enforcement = e.enforcement;
      if (!o.cgroup_root.empty()) req.cgroup_root = o.cgroup_root;
      req.cpu_quota_us = e.cpu_quota_us;
      req.cpu_period_us = e.cpu_period_us;
      req.cpu_cgroup_root = cpu_root;
      req.sample_ms = e.scenario.sample_ms;
      req.timeout_s = o.timeout_s;
      req.on_progress = [&](const RunProgress &p) {
        ProgressEvent pe{ProgressEvent::kRunProgress, index, total, &g, &p, nullptr};
        if (on_progress) on_progress(pe);
      };
      g.runs.push_back(RunWorker(req));
      ProgressEvent end{ProgressEvent::kRunEnd, index, total, &g, nullptr, &g.runs.back()};
      if (on_progress) on_progress(end);
      if (g.runs.back().end == EndKind::kInterrupted) return e;
    }
  }
  return e;
}

}  // namespace pacegc::oomsim
