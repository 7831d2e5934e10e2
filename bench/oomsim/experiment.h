// bench/oomsim/experiment.h — from parsed options to an Experiment: find the workers, choose the enforcement, run
// every (runtime, policy) pair `runs` times round-robin (run 1 of every pair, then run 2, ... so drift in the
// machine hits all pairs alike), and report progress.
//
// Workers are looked up, in order, in --worker-dir (only there, when given), else in the directory of this program
// (/proc/self/exe: the installed layout, bin/ holds all of them), then in ../peers/go and ../peers/bdwgc relative to
// it (the build tree layout, where bench/peers/* build their workers in their own directories). A missing pacegc
// worker is an error; a missing peer worker skips that runtime with a note.
#ifndef PACEGC_BENCH_OOMSIM_EXPERIMENT_H_
#define PACEGC_BENCH_OOMSIM_EXPERIMENT_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cli.h"
#include "report.h"

namespace pacegc::oomsim {

// The directory holding the running executable ("" if /proc/self/exe cannot be read).
std::string SelfDirectory();

// The worker's path, or nullopt; *searched gets the directories looked in (for the message).
std::optional<std::string> FindWorker(Runtime runtime, const std::string &worker_dir,
                                      std::vector<std::string> *searched);

// The enforcement for the mode; throws std::runtime_error when kCgroup is forced and cgroups are not usable.
Enforcement ChooseEnforcement(EnforceMode mode, const std::string &cgroup_root, std::string *note);

// With a CPU quota: throws std::runtime_error naming --cpu when no cpu cgroup can be made under cpu_cgroup_root
// (a run asked to have a quota never runs without one).
void RequireCpuCgroups(const std::string &cpu_cgroup_root);

// Progress events of RunExperiment.
struct ProgressEvent {
  enum Kind { kRunStart, kRunProgress, kRunEnd } kind;
  size_t index = 0, total = 0;  // 1-based run number among all runs
  const Group *group = nullptr;
  const RunProgress *progress = nullptr;  // kRunProgress
  const RunResult *result = nullptr;      // kRunEnd
};

// Runs everything. On an interrupt it returns early (Interrupted() is then true); what ran so far is in the result.
// Throws std::runtime_error when nothing can run (pacegc worker missing, forced cgroups unusable, --cpu given and no
// cpu cgroup writable).
Experiment RunExperiment(const Options &options, const std::string &command,
                         const std::function<void(const ProgressEvent &)> &on_progress);

}  // namespace pacegc::oomsim

#endif  // PACEGC_BENCH_OOMSIM_EXPERIMENT_H_
