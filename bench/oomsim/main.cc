// bench/oomsim/main.cc — pacegc-oomsim: the OOM simulator's command-line front end (issue 5).
//
// Parses the options (cli.h), runs the experiment (experiment.h: every (runtime, policy) pair as a worker under a
// real cap, runner.h), shows progress on stderr (a bar redrawn in place when stderr is a terminal, one line per run
// otherwise), prints the table on stdout and writes the CSV, JSON and SVG files asked for (report.h, svg.h).
//
// Signals: SIGINT/SIGTERM kill the running worker, remove its cgroup, and exit with 128+N after saying so; the
// parent never dies with its child (the child is in its own process group and is the only one the kernel kills).
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli.h"
#include "experiment.h"
#include "report.h"
#include "scenario.h"
#include "size.h"
#include "svg.h"
#include "usage_error.h"

using namespace pacegc::oomsim;

namespace {

std::string ShellQuote(const std::string &arg) {
  bool plain = !arg.empty();
  for (char c : arg) {
    plain = plain && (isalnum(static_cast<unsigned char>(c)) || strchr("_-+=:,./%@", c) != nullptr);
  }
  if (plain) return arg;
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool quiet) : quiet_(quiet), tty_(isatty(STDERR_FILENO) != 0) {}

  void operator()(const ProgressEvent &ev, size_t phases_total) {
    if (quiet_) return;
    std::string who = std::string(RuntimeName(ev.group->runtime)) + " " + ev.group->policy.label;
    char head[64];
    snprintf(head, sizeof(head), "[%zu/%zu] ", ev.index, ev.total);
    switch (ev.kind) {
      case ProgressEvent::kRunStart:
        if (!tty_) fprintf(stderr, "pacegc-oomsim: %sstarting %s\n", head, who.c_str());
        break;
      case ProgressEvent::kRunProgress: {
        if (!tty_) break;
        const RunProgress &p = *ev.progress;
        if (p.elapsed_s - last_draw_s_ < 0.1 && p.elapsed_s > 0.05) break;
        last_draw_s_ = p.elapsed_s;
        const int width = 20;
        int filled = phases_total == 0 ? 0 : static_cast<int>(width * p.phases_done / phases_total);
        std::string bar(static_cast<size_t>(filled), '#');
        bar += std::string(static_cast<size_t>(width - filled), '.');
        fprintf(stderr, "\r\033[K%s%s [%s] phase %d/%zu  %.1f s  %s MiB  gc %llu", head, who.c_str(), bar.c_str(),
                p.phase, phases_total, p.elapsed_s, FormatMiB(p.usage_bytes).c_str(),
                static_cast<unsigned long long>(p.gc));
        fflush(stderr);
        break;
      }
      case ProgressEvent::kRunEnd: {
        const RunResult &r = *ev.result;
        std::string peak = r.peak_bytes ? ", peak " + FormatMiB(*r.peak_bytes) + " MiB" : "";
        if (tty_) fprintf(stderr, "\r\033[K");
        fprintf(stderr, "pacegc-oomsim: %s%s: %s (%.2f s%s)\n", head, who.c_str(), r.end_detail.c_str(), r.elapsed_s,
                peak.c_str());
        if (r.end == EndKind::kExited || r.end == EndKind::kSignaled || r.end == EndKind::kStartFailed) {
          for (const std::string &line : r.stderr_tail) fprintf(stderr, "    worker stderr: %s\n", line.c_str());
        }
        last_draw_s_ = -1;
        break;
      }
    }
  }

 private:
  bool quiet_, tty_;
  double last_draw_s_ = -1;
};

bool WriteOutput(const std::string &path, const char *what, const std::function<void(std::ostream &)> &write) {
  if (path.empty()) return true;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (out) write(out);
  out.flush();
  if (!out) {
    fprintf(stderr, "pacegc-oomsim: cannot write the %s to %s: %s\n", what, path.c_str(), strerror(errno));
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string command = "pacegc-oomsim";
  for (const std::string &a : args) command += " " + ShellQuote(a);

  Options options;
  try {
    options = ParseOptions(args);
    if (options.help) {
      fputs(UsageText().c_str(), stdout);
      return 0;
    }
    if (options.list) {
      fputs(DescribeScenarios().c_str(), stdout);
      return 0;
    }
    // Resolve once up front, so a bad --scenario / --set / policy value fails before anything runs.
    Scenario s = ResolveScenario(options.scenario, options.cap_bytes, options.sets);
    for (const PolicySpec &p : options.policies) ResolvePolicy(p, s);
  } catch (const UsageError &e) {
    fprintf(stderr, "pacegc-oomsim: %s\n", e.what());
    return 2;
  }

  InstallInterruptHandlers();
  ProgressPrinter printer(options.quiet);
  Experiment experiment;
  try {
    size_t phases_total = ResolveScenario(options.scenario, options.cap_bytes, options.sets).phases.size();
    experiment = RunExperiment(options, command, [&](const ProgressEvent &ev) { printer(ev, phases_total); });
  } catch (const UsageError &e) {
    fprintf(stderr, "pacegc-oomsim: %s\n", e.what());
    return 2;
  } catch (const std::exception &e) {
    fprintf(stderr, "pacegc-oomsim: %s\n", e.what());
    return 1;
  }
  if (Interrupted()) {
    int sig = InterruptSignal();
    fprintf(stderr, "pacegc-oomsim: interrupted by signal %d; the running worker was killed and its cgroup removed\n",
            sig);
    return 128 + sig;
  }
  for (const std::string &note : experiment.notes) fprintf(stderr, "pacegc-oomsim: %s\n", note.c_str());
  if (!options.quiet && experiment.enforcement == Enforcement::kWatchdog) {
    fprintf(stderr, "pacegc-oomsim: cap enforced by the RSS watchdog: %s\n", experiment.enforcement_note.c_str());
  }

  std::ostringstream table;
  WriteTable(table, experiment);
  fputs(table.str().c_str(), stdout);
  fflush(stdout);

  bool ok = WriteOutput(options.csv_path, "CSV", [&](std::ostream &o) { WriteCsv(o, experiment); });
  ok = WriteOutput(options.json_path, "JSON", [&](std::ostream &o) { WriteJson(o, experiment); }) && ok;
  ok = WriteOutput(options.svg_path, "SVG", [&](std::ostream &o) { WriteSvg(o, experiment); }) && ok;

  for (const Group &g : experiment.groups) {
    for (const RunResult &r : g.runs) {
      if (r.end == EndKind::kExited || r.end == EndKind::kSignaled || r.end == EndKind::kStartFailed ||
          r.end == EndKind::kTimeout || !r.cgroup_removed) {
        ok = false;
      }
    }
  }
  return ok ? 0 : 1;
}
