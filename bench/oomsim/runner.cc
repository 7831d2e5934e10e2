// bench/oomsim/runner.cc — see runner.h for the life of a run.
#include "runner.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string_view>
#include <thread>

extern char **environ;

namespace pacegc::oomsim {
namespace {

// ---- Interrupts -------------------------------------------------------------------------------------------------
// The handler only stores the signal and writes one byte to a non-blocking self-pipe that RunWorker polls.
volatile sig_atomic_t g_interrupt_signal = 0;
int g_interrupt_pipe[2] = {-1, -1};

void OnInterrupt(int sig) {
  int saved = errno;
  g_interrupt_signal = sig;
  if (g_interrupt_pipe[1] >= 0) {
    char c = 1;
    ssize_t ignored = write(g_interrupt_pipe[1], &c, 1);
    (void)ignored;
  }
  errno = saved;
}

double NowS() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

void SleepMs(unsigned ms) {
  struct timespec ts = {static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// ---- RSS watchdog -----------------------------------------------------------------------------------------------
class Watchdog {
 public:
  Watchdog(pid_t pid, uint64_t cap_bytes, unsigned period_ms) : pid_(pid), cap_(cap_bytes), period_ms_(period_ms) {}
  ~Watchdog() { Stop(); }

  // Starts the thread with SIGINT/SIGTERM blocked in it, so the interrupt always reaches the main thread.
  void Start() {
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    thread_ = std::thread([this] { Loop(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  bool killed() const { return killed_.load(); }
  uint64_t rss() const { return rss_.load(); }
  uint64_t hwm() const { return hwm_.load(); }
  uint64_t kill_rss() const { return kill_rss_.load(); }

 private:
  void Loop() {
    const std::string path = "/proc/" + std::to_string(pid_) + "/status";
    while (!stop_.load()) {
      std::ifstream in(path);
      std::string line;
      uint64_t rss = 0, hwm = 0;
      while (std::getline(in, line)) {
        unsigned long long kib = 0;
        if (sscanf(line.c_str(), "VmRSS: %llu kB", &kib) == 1) rss = kib * 1024;
        if (sscanf(line.c_str(), "VmHWM: %llu kB", &kib) == 1) hwm = kib * 1024;
      }
      rss_.store(rss);
      if (hwm > hwm_.load()) hwm_.store(hwm);
      if (rss > hwm_.load()) hwm_.store(rss);
      // The pid cannot have been reused: the runner stops this thread before it reaps the child.
      if (rss > cap_ && !killed_.load()) {
        kill_rss_.store(rss);
        killed_.store(true);
        kill(pid_, SIGKILL);
      }
      SleepMs(period_ms_);
    }
  }

  pid_t pid_;
  uint64_t cap_;
  unsigned period_ms_;
  std::thread thread_;
  std::atomic<bool> stop_{false}, killed_{false};
  std::atomic<uint64_t> rss_{0}, hwm_{0}, kill_rss_{0};
};

void ClosePair(int fds[2]) {
  for (int i = 0; i < 2; ++i) {
    if (fds[i] >= 0) close(fds[i]);
    fds[i] = -1;
  }
}

// The environment for the worker: the parent's minus unset_env and the keys being set, plus the settings.
std::vector<std::string> BuildEnvironment(const RunRequest &req) {
  std::vector<std::string> out;
  for (char **e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string_view key = entry.substr(0, entry.find('='));
    bool drop = false;
    for (const std::string &u : req.unset_env) drop = drop || key == u;
    for (const auto &kv : req.env) drop = drop || key == kv.first;
    if (!drop) out.emplace_back(entry);
  }
  for (const auto &kv : req.env) out.push_back(kv.first + "=" + kv.second);
  return out;
}

std::string SignalName(int sig) {
  const char *abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// Per-run state of the reading loop.
struct Reader {
  RunResult *result;
  double fork_s;
  std::optional<double> worker_origin_s;  // parent time of the worker's t_ms = 0
  std::string out_buffer, err_buffer;

  double Align(const Line &line) {
    auto t_ms = line.Double("t_ms");
    if (!worker_origin_s) worker_origin_s = NowS() - fork_s;
    return t_ms ? *worker_origin_s + *t_ms / 1000.0 : NowS() - fork_s;
  }

  void OnStdoutLine(std::string_view text) {
    auto line = ParseLine(text);
    if (!line) {
      if (!text.empty() && result->unparsed_lines.size() < 20) result->unparsed_lines.emplace_back(text);
      return;
    }
    if (line->event == "start") {
      worker_origin_s = NowS() - fork_s;
      result->start = *line;
    } else if (line->event == "phase") {
      PhaseRecord p;
      p.n = static_cast<int>(line->U64("n").value_or(result->phases.size() + 1));
      p.live_bytes = line->U64("live").value_or(0);
      p.churn_bytes = line->U64("churn").value_or(0);
      p.start_s = Align(*line);
      result->phases.push_back(p);
    } else if (line->event == "phasedone") {
      int n = static_cast<int>(line->U64("n").value_or(0));
      for (PhaseRecord &p : result->phases) {
        if (p.n == n) {
          p.done_s = Align(*line);
          p.churn_s = line->Double("churn_s");
          p.gc_cpu = line->Double("gc_cpu");
        }
      }
    } else if (line->event == "sample") {
      WorkerSample s;
      s.t_s = Align(*line);
      s.heap_alloc = line->U64("heap_alloc");
      s.heap_goal = line->U64("heap_goal");
      s.total = line->U64("total");
      s.live = line->U64("live");
      s.gc = line->U64("gc");
      s.limiter = line->U64("limiter");
      s.gc_cpu = line->Double("gc_cpu");
      result->samples.push_back(s);
    } else if (line->event == "result") {
      result->result = *line;
    } else if (result->unparsed_lines.size() < 20) {
      result->unparsed_lines.emplace_back(text);
    }
  }

  void OnStderrLine(std::string_view text) {
    if (text.empty()) return;
    result->stderr_tail.emplace_back(text);
    if (result->stderr_tail.size() > 20) result->stderr_tail.erase(result->stderr_tail.begin());
  }

  // Appends data and handles every complete line. Returns the number of stdout lines handled.
  int Feed(bool is_stdout, const char *data, size_t n) {
    std::string &buf = is_stdout ? out_buffer : err_buffer;
    buf.append(data, n);
    int lines = 0;
    size_t start = 0;
    for (size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view text(buf.data() + start, nl - start);
      if (is_stdout) {
        OnStdoutLine(text);
        ++lines;
      } else {
        OnStderrLine(text);
      }
    }
    buf.erase(0, start);
    return lines;
  }

  void Flush() {
    if (!out_buffer.empty()) OnStdoutLine(out_buffer);
    if (!err_buffer.empty()) OnStderrLine(err_buffer);
    out_buffer.clear();
    err_buffer.clear();
  }
};

}  // namespace

const char *EnforcementName(Enforcement e) {
  return e == Enforcement::kCgroup ? "cgroup-v1" : "watchdog";
}

const char *EndKindName(EndKind e) {
  switch (e) {
    case EndKind::kSurvived:
      return "survived";
    case EndKind::kOomKilled:
      return "oom-killed";
    case EndKind::kWatchdogKilled:
      return "watchdog-killed";
    case EndKind::kHeapExhausted:
      return "heap-exhausted";
    case EndKind::kTimeout:
      return "timeout";
    case EndKind::kInterrupted:
      return "interrupted";
    case EndKind::kExited:
      return "exited";
    case EndKind::kSignaled:
      return "signaled";
    case EndKind::kStartFailed:
      return "start-failed";
  }
  return "?";
}

void InstallInterruptHandlers() {
  if (g_interrupt_pipe[0] < 0 && pipe2(g_interrupt_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    g_interrupt_pipe[0] = g_interrupt_pipe[1] = -1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: blocking calls return EINTR and the loop looks at the flag
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

bool Interrupted() {
  return g_interrupt_signal != 0;
}
int InterruptSignal() {
  return g_interrupt_signal;
}

RunResult RunWorker(const RunRequest &req) {
  RunResult result;
  result.enforcement = req.enforcement;

  // ---- 1. the cgroup ----
  MemoryCgroup cgroup;
  if (req.enforcement == Enforcement::kCgroup) {
    std::string error;
    if (!cgroup.Create(req.cgroup_root, req.cap_bytes, &error)) {
      result.end = EndKind::kStartFailed;
      result.end_detail = error;
      return result;
    }
    result.cgroup_path = cgroup.path();
  }
  CpuCgroup cpu_cgroup;
  if (req.cpu_quota_us) {
    // The memory cgroup's name when there is one, so the run's two directories pair up by name.
    std::string name = cgroup.path().empty() ? "" : cgroup.path().substr(cgroup.path().rfind('/') + 1);
    std::string error;
    if (!cpu_cgroup.Create(req.cpu_cgroup_root, *req.cpu_quota_us, req.cpu_period_us, &error, name)) {
      result.end = EndKind::kStartFailed;
      result.end_detail = error;
      return result;  // the memory cgroup's destructor removes it
    }
    result.cpu_cgroup_path = cpu_cgroup.path();
  }

  // ---- 2. fork ----
  std::vector<std::string> env = BuildEnvironment(req);
  std::vector<char *> envp, argv;
  for (std::string &e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args;
  args.push_back(req.worker);
  args.insert(args.end(), req.args.begin(), req.args.end());
  for (std::string &a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int out[2] = {-1, -1}, err[2] = {-1, -1}, go[2] = {-1, -1};
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0 || devnull < 0) {
    result.end = EndKind::kStartFailed;
    result.end_detail = std::string("cannot create pipes: ") + strerror(errno);
    ClosePair(out), ClosePair(err), ClosePair(go);
    if (devnull >= 0) close(devnull);
    return result;
  }
  const pid_t parent = getpid();
  const double fork_s = NowS();
  pid_t pid = fork();
  if (pid < 0) {
    result.end = EndKind::kStartFailed;
    result.end_detail = std::string("fork: ") + strerror(errno);
    ClosePair(out), ClosePair(err), ClosePair(go);
    close(devnull);
    return result;
  }
  if (pid == 0) {
    // The child: async-signal-safe calls only.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    setpgid(0, 0);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, nullptr);
    sigaction(SIGINT, &dfl, nullptr);
    sigaction(SIGTERM, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(devnull, STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    char c = 0;
    ssize_t n;
    do {
      n = read(go[0], &c, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) _exit(126);  // the parent could not place us in the cgroup
    execve(argv[0], argv.data(), envp.data());
    static const char kMsg[] = "pacegc-oomsim: execve of the worker failed\n";
    ssize_t ignored = write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
    (void)ignored;
    _exit(127);
  }
  close(out[1]), close(err[1]), close(go[0]), close(devnull);
  out[1] = err[1] = go[0] = -1;

  // ---- 3. place the child, then release it ----
  Watchdog watchdog(pid, req.cap_bytes, req.watchdog_period_ms);
  bool placed = true;
  std::string place_error;
  if (req.enforcement == Enforcement::kCgroup) {
    placed = cgroup.Attach(pid, &place_error);
  } else {
    watchdog.Start();
  }
  if (placed && req.cpu_quota_us) placed = cpu_cgroup.Attach(pid, &place_error);
  if (placed) {
    char c = 'g';
    placed = write(go[1], &c, 1) == 1;
    if (!placed) place_error = std::string("cannot release the worker: ") + strerror(errno);
  }
  close(go[1]);
  go[1] = -1;
  if (!placed) kill(pid, SIGKILL);
  if (placed && req.on_started) req.on_started(pid, cgroup.path());

  // ---- 4. read lines and sample memory until both pipes close ----
  Reader reader{&result, fork_s, std::nullopt, {}, {}};
  bool out_open = true, err_open = true, killed_by_us = false, timed_out = false, interrupted = false;
  bool series_done = false;
  double next_sample_s = fork_s;
  RunProgress progress;
  auto report_progress = [&](uint64_t usage) {
    if (!req.on_progress) return;
    progress.elapsed_s = NowS() - fork_s;
    progress.phase = result.last_phase();
    progress.phases_done = 0;
    for (const PhaseRecord &p : result.phases) progress.phases_done += p.done_s ? 1 : 0;
    if (usage != 0) progress.usage_bytes = usage;
    if (!result.samples.empty() && result.samples.back().gc) progress.gc = *result.samples.back().gc;
    req.on_progress(progress);
  };
  char buf[65536];
  while (out_open || err_open) {
    double now = NowS();
    if (now >= next_sample_s) {
      uint64_t usage = 0;
      if (req.enforcement == Enforcement::kCgroup) {
        usage = cgroup.UsageBytes().value_or(0);
      } else {
        usage = watchdog.rss();
      }
      // The series ends when the worker does (its `result` line, a kill): memory freed while the process is torn
      // down, before its pipes close, is not the workload's.
      if (!series_done) {
        series_done = result.result.has_value() || killed_by_us || watchdog.killed() ||
                      (req.enforcement == Enforcement::kCgroup && cgroup.OomKillCount().value_or(0) > 0);
      }
      if (placed && usage != 0 && !series_done) result.usage.push_back({now - fork_s, usage});
      report_progress(usage);
      next_sample_s += req.sample_ms / 1000.0;
      if (next_sample_s < now) next_sample_s = now + req.sample_ms / 1000.0;
    }
    if (!killed_by_us) {
      if (Interrupted()) {
        interrupted = killed_by_us = true;
        kill(pid, SIGKILL);
      } else if (req.timeout_s > 0 && now - fork_s > req.timeout_s) {
        timed_out = killed_by_us = true;
        kill(pid, SIGKILL);
      }
    }
    struct pollfd fds[3];
    int nfds = 0;
    int out_index = -1, err_index = -1;
    if (out_open) out_index = nfds, fds[nfds++] = {out[0], POLLIN, 0};
    if (err_open) err_index = nfds, fds[nfds++] = {err[0], POLLIN, 0};
    if (g_interrupt_pipe[0] >= 0) fds[nfds++] = {g_interrupt_pipe[0], POLLIN, 0};
    int timeout_ms = static_cast<int>((next_sample_s - NowS()) * 1000.0) + 1;
    if (timeout_ms < 0) timeout_ms = 0;
    int ready = poll(fds, static_cast<nfds_t>(nfds), timeout_ms);
    if (ready < 0) continue;  // EINTR: the loop looks at the interrupt flag
    for (int i = 0; i < nfds; ++i) {
      if (fds[i].revents == 0) continue;
      if (i == out_index || i == err_index) {
        ssize_t n = read(fds[i].fd, buf, sizeof(buf));
        if (n > 0) {
          int phase_before = result.last_phase();
          reader.Feed(i == out_index, buf, static_cast<size_t>(n));
          if (result.last_phase() != phase_before) report_progress(0);
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
          (i == out_index ? out_open : err_open) = false;
        }
      } else {
        char drain[64];
        while (read(fds[i].fd, drain, sizeof(drain)) > 0) {
        }
      }
    }
  }
  reader.Flush();
  close(out[0]), close(err[0]);

  // ---- 5. wait (without reaping), stop the watchdog, reap, read, remove ----
  siginfo_t info;
  memset(&info, 0, sizeof(info));
  while (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
  }
  result.elapsed_s = NowS() - fork_s;
  watchdog.Stop();
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }

  if (req.enforcement == Enforcement::kCgroup) {
    result.peak_bytes = cgroup.MaxUsageBytes();
    result.oom_kills = cgroup.OomKillCount().value_or(0);
  } else {
    if (watchdog.hwm() != 0) result.peak_bytes = watchdog.hwm();
    result.watchdog_kill_rss = watchdog.kill_rss();
  }
  if (req.cpu_quota_us) result.cpu_stat = cpu_cgroup.Stat();
  Cgroup *cgroups[] = {&cgroup, &cpu_cgroup};
  for (Cgroup *cg : cgroups) {
    std::string error;
    if (!cg->Remove(&error)) {
      result.cgroup_removed = false;
      result.stderr_tail.push_back("pacegc-oomsim: " + error);
    }
  }

  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
  auto phase_words = [&]() {
    if (result.phases.empty()) return std::string(" before its first phase");
    const PhaseRecord &p = result.phases.back();
    return " in phase " + std::to_string(p.n) + " (live " + std::to_string(p.live_bytes >> 20) + " MiB)";
  };
  char when[48];
  snprintf(when, sizeof(when), " at %.2f s", result.elapsed_s);
  if (!placed) {
    result.end = EndKind::kStartFailed;
    result.end_detail = place_error;
  } else if (interrupted) {
    result.end = EndKind::kInterrupted;
    result.end_detail = "interrupted by " + SignalName(InterruptSignal()) + phase_words();
  } else if (timed_out) {
    result.end = EndKind::kTimeout;
    result.end_detail =
        "killed after the " + std::to_string(static_cast<int>(req.timeout_s)) + " s timeout" + phase_words();
  } else if (result.term_signal == SIGKILL && req.enforcement == Enforcement::kCgroup && result.oom_kills > 0) {
    result.end = EndKind::kOomKilled;
    result.end_detail = "OOM-killed by the cgroup" + phase_words() + when;
  } else if (result.term_signal == SIGKILL && watchdog.killed()) {
    result.end = EndKind::kWatchdogKilled;
    result.end_detail = "killed by the RSS watchdog (VmRSS " + std::to_string(watchdog.kill_rss() >> 20) +
                        " MiB > cap)" + phase_words() + when;
  } else if (result.term_signal != 0) {
    result.end = EndKind::kSignaled;
    result.end_detail = "died of " + SignalName(result.term_signal) + phase_words() + when;
  } else if (result.exit_code == kWorkerOutOfMemoryStatus) {
    result.end = EndKind::kHeapExhausted;
    result.end_detail = "out of memory (the runtime's allocation failed)" + phase_words() + when;
    if (!result.stderr_tail.empty()) result.end_detail += ": " + result.stderr_tail.back();
  } else if (result.exit_code == 0 && result.result) {
    result.end = EndKind::kSurvived;
    result.end_detail = "survived";
  } else {
    result.end = EndKind::kExited;
    result.end_detail = result.exit_code == 0 ? "exited 0 without a result line"
                                              : "exited with status " + std::to_string(result.exit_code);
    result.end_detail += phase_words();
    if (!result.stderr_tail.empty()) result.end_detail += ": " + result.stderr_tail.back();
  }
  return result;
}

}  // namespace pacegc::oomsim
