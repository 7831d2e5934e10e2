// bench/oomsim/report.cc — see report.h.
#include "report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "size.h"

namespace pacegc::oomsim {
namespace {

std::string Fixed(double v, int decimals) {
  char buf[64];
  snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

// A number in the table / CSV: integers without decimals, small fractions with enough digits to read.
std::string Num(double v, int decimals) {
  return Fixed(v, decimals);
}

struct Column {
  const char *csv;   // CSV base name
  const char *head;  // table heading
  int decimals;
  std::optional<double> RunMetrics::*field;
};

const Column kColumns[] = {
    {"peak_mib", "peak MiB", 0, &RunMetrics::peak_mib},
    {"gc_cycles", "GC cycles", 0, &RunMetrics::gc_cycles},
    {"gc_cpu", "GC CPU", 3, &RunMetrics::gc_cpu},
    {"wall_s", "wall s", 2, &RunMetrics::wall_s},
    {"churn_mib_s", "churn MiB/s", 0, &RunMetrics::churn_mib_s},
    {"pause_p50_ms", "p50 ms", 2, &RunMetrics::pause_p50_ms},
    {"pause_p99_ms", "p99 ms", 2, &RunMetrics::pause_p99_ms},
    {"pause_max_ms", "max ms", 2, &RunMetrics::pause_max_ms},
    {"limiter_on_s", "limiter on s", 2, &RunMetrics::limiter_on_s},
};

std::vector<RunMetrics> MetricsOf(const Group &g) {
  std::vector<RunMetrics> m;
  for (const RunResult &r : g.runs) m.push_back(ComputeMetrics(r));
  return m;
}

Summary ColumnSummary(const std::vector<RunMetrics> &m, std::optional<double> RunMetrics::*field) {
  std::vector<std::optional<double>> values;
  for (const RunMetrics &r : m) values.push_back(r.*field);
  return Summarize(values);
}

// "404" or "404 [398–410]".
std::string Cell(const Summary &s, int decimals, size_t runs) {
  if (!s.median) return "-";
  std::string text = Num(*s.median, decimals);
  if (runs > 1 && s.count > 1) text += " [" + Num(*s.min, decimals) + "–" + Num(*s.max, decimals) + "]";
  if (runs > 1 && s.count < runs) text += " (" + std::to_string(s.count) + " of " + std::to_string(runs) + ")";
  return text;
}

std::string SurvivedText(const std::vector<RunMetrics> &m) {
  size_t ok = 0;
  for (const RunMetrics &r : m) ok += r.survived ? 1 : 0;
  if (m.size() == 1) return m[0].survived ? "yes" : "no: " + m[0].end_short;
  std::map<std::string, int> endings;
  for (const RunMetrics &r : m) {
    if (!r.survived) ++endings[r.end_short];
  }
  std::string text = std::to_string(ok) + "/" + std::to_string(m.size());
  if (ok == m.size()) return "yes (" + text + ")";
  if (ok == 0) text = "no (" + text + ")";
  for (const auto &[end, count] : endings) text += "; " + end + " ×" + std::to_string(count);
  return text;
}

std::string SurvivedWord(const std::vector<RunMetrics> &m) {
  size_t ok = 0;
  for (const RunMetrics &r : m) ok += r.survived ? 1 : 0;
  return ok == m.size() ? "yes" : ok == 0 ? "no" : "partial";
}

std::string KilledPhases(const std::vector<RunMetrics> &m) {
  std::vector<int> phases;
  for (const RunMetrics &r : m) {
    if (r.killed_phase != 0 && std::find(phases.begin(), phases.end(), r.killed_phase) == phases.end()) {
      phases.push_back(r.killed_phase);
    }
  }
  std::string text;
  for (int p : phases) text += (text.empty() ? "" : ";") + std::to_string(p);
  return text;
}

std::string PhasesText(const Scenario &s) {
  std::string text;
  for (const Phase &p : s.phases) {
    text += (text.empty() ? "" : ", ") + FormatMiB(p.live_bytes) + ":" + FormatMiB(p.churn_bytes);
  }
  return text + " (live MiB : churn MiB)";
}

void JsonNumber(std::ostream &out, std::optional<double> v) {
  if (!v || !std::isfinite(*v)) {
    out << "null";
    return;
  }
  char buf[64];
  if (*v == std::floor(*v) && std::fabs(*v) < 9e15) {
    snprintf(buf, sizeof(buf), "%.0f", *v);
  } else {
    snprintf(buf, sizeof(buf), "%.6g", *v);
  }
  out << buf;
}

void JsonU64(std::ostream &out, std::optional<uint64_t> v) {
  if (v) {
    out << *v;
  } else {
    out << "null";
  }
}

void JsonLine(std::ostream &out, const std::optional<Line> &line) {
  if (!line) {
    out << "null";
    return;
  }
  out << "{";
  bool first = true;
  for (const auto &[k, v] : line->fields) {
    out << (first ? "" : ",") << JsonString(k) << ":";
    first = false;
    // Numbers stay numbers; `na` becomes null; anything else stays a string.
    char *end = nullptr;
    double d = strtod(v.c_str(), &end);
    if (v == "na") {
      out << "null";
    } else if (!v.empty() && *end == '\0' && std::isfinite(d) && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9'))) {
      out << v;
    } else {
      out << JsonString(v);
    }
  }
  out << "}";
}

// One column of the worker samples as a JSON array.
template <typename F>
void JsonSeries(std::ostream &out, const std::vector<WorkerSample> &samples, F get) {
  out << "[";
  for (size_t i = 0; i < samples.size(); ++i) {
    if (i != 0) out << ",";
    get(samples[i]);
  }
  out << "]";
}

}  // namespace

RunMetrics ComputeMetrics(const RunResult &run) {
  RunMetrics m;
  m.survived = run.end == EndKind::kSurvived;
  m.end_kind = EndKindName(run.end);
  auto phase_words = [&]() {
    if (run.phases.empty()) return std::string(" before its first phase");
    return " in phase " + std::to_string(run.phases.back().n) + " (live " + FormatMiB(run.phases.back().live_bytes) +
           " MiB)";
  };
  if (run.killed_by_cap()) {
    m.killed_phase = run.last_phase();
    m.end_short = "killed" + phase_words();
  } else if (run.end == EndKind::kHeapExhausted) {
    m.killed_phase = run.last_phase();
    m.end_short = "out of memory" + phase_words();
  } else if (!m.survived) {
    m.end_short = run.end_detail;
  } else {
    m.end_short = "survived";
  }
  if (run.peak_bytes) m.peak_mib = static_cast<double>(*run.peak_bytes) / static_cast<double>(kMiB);

  const WorkerSample *last = run.samples.empty() ? nullptr : &run.samples.back();
  const std::optional<Line> &res = run.result;
  auto from_result_u64 = [&](const char *key) -> std::optional<double> {
    if (!res) return std::nullopt;
    auto v = res->U64(key);
    return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
  };
  m.gc_cycles = from_result_u64("gc_cycles");
  if (!m.gc_cycles && last != nullptr && last->gc) m.gc_cycles = static_cast<double>(*last->gc);
  if (res) m.gc_cpu = res->Double("gc_cpu_fraction");
  if (!m.gc_cpu && last != nullptr) m.gc_cpu = last->gc_cpu;
  if (m.survived && res && res->Double("wall_s")) {
    m.wall_s = res->Double("wall_s");
  } else if (run.end != EndKind::kStartFailed) {
    m.wall_s = run.elapsed_s;
  }
  double churn_bytes = 0, churn_s = 0;
  for (const PhaseRecord &p : run.phases) {
    if (p.churn_s && p.churn_bytes > 0) {
      churn_bytes += static_cast<double>(p.churn_bytes);
      churn_s += *p.churn_s;
    }
  }
  if (churn_s > 0) m.churn_mib_s = churn_bytes / static_cast<double>(kMiB) / churn_s;
  auto ms = [&](const char *key) -> std::optional<double> {
    auto v = from_result_u64(key);
    return v ? std::optional<double>(*v / 1e6) : std::nullopt;
  };
  m.pause_p50_ms = ms("pause_p50_ns");
  m.pause_p99_ms = ms("pause_p99_ns");
  m.pause_max_ms = ms("pause_max_ns");
  if (auto v = from_result_u64("limiter_on_ns")) m.limiter_on_s = *v / 1e9;
  return m;
}

Summary Summarize(const std::vector<std::optional<double>> &values) {
  std::vector<double> v;
  for (const auto &x : values) {
    if (x && std::isfinite(*x)) v.push_back(*x);
  }
  Summary s;
  s.count = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  s.median = n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  s.min = v.front();
  s.max = v.back();
  return s;
}

std::string CsvField(const std::string &text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string JsonString(const std::string &text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c >= 0x80) {  // non-ASCII bytes as \u00XX: the output is ASCII whatever a worker printed
          char buf[8];
          snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string CpuQuotaWords(const Experiment &e) {
  if (!e.cpu_quota_us) return "";
  return CpuQuotaPercent(*e.cpu_quota_us, e.cpu_period_us) + " of one CPU";
}

std::optional<double> CpuQuotaCpus(const Experiment &e) {
  if (!e.cpu_quota_us) return std::nullopt;
  return static_cast<double>(*e.cpu_quota_us) / static_cast<double>(e.cpu_period_us);
}

void WriteTable(std::ostream &out, const Experiment &e) {
  const Scenario &s = e.scenario;
  out << "## pacegc-oomsim: scenario " << s.name;
  if (e.cpu_quota_us) out << " under a CPU quota of " << CpuQuotaWords(e);
  out << "\n\n";
  out << "- Command: `" << e.command << "`\n";
  out << "- Cap " << FormatSize(s.cap_bytes) << ", enforced by ";
  if (e.enforcement == Enforcement::kCgroup) {
    out << "a cgroup v1 memory cgroup per run (memory.limit_in_bytes; peak = memory.max_usage_in_bytes)";
  } else {
    out << "the RSS watchdog (VmRSS sampled every 5 ms, SIGKILL above the cap; peak = highest VmHWM seen)";
  }
  if (!e.enforcement_note.empty()) out << " — " << e.enforcement_note;
  out << "\n";
  if (e.cpu_quota_us) {
    out << "- CPU quota " << CpuQuotaWords(e) << " per run, every runtime alike: a cgroup v1 cpu cgroup per run "
        << "(cpu.cfs_quota_us " << *e.cpu_quota_us << " per cpu.cfs_period_us " << e.cpu_period_us << ")\n";
  } else {
    out << "- CPU: no quota\n";
  }
  out << "- Phases: " << PhasesText(s) << "; objects of " << s.object_size << " bytes; scenario soft limit "
      << FormatSize(s.limit_bytes) << "\n";
  size_t runs = 0;
  for (const Group &g : e.groups) runs = std::max(runs, g.runs.size());
  if (runs > 1) out << "- " << runs << " runs per row, round-robin: median [min–max]\n";
  out << "\n";
  out << "| runtime | policy | survived |";
  for (const Column &c : kColumns) out << " " << c.head << " |";
  out << "\n|---|---|---|";
  for (size_t i = 0; i < std::size(kColumns); ++i) out << "---:|";
  out << "\n";
  for (const Group &g : e.groups) {
    out << "| " << RuntimeName(g.runtime) << " | " << g.policy.label << " | ";
    if (!g.invocation.applicable) {
      out << g.invocation.na_reason << " |";
      for (size_t i = 0; i < std::size(kColumns); ++i) out << " |";
      out << "\n";
      continue;
    }
    std::vector<RunMetrics> m = MetricsOf(g);
    out << SurvivedText(m) << " |";
    bool none_survived = SurvivedWord(m) == "no";
    bool all_killed = true;  // by the cap (not out of their own heap, not crashed)
    for (const RunResult &r : g.runs) all_killed = all_killed && r.killed_by_cap();
    for (const Column &c : kColumns) {
      std::string cell = Cell(ColumnSummary(m, c.field), c.decimals, m.size());
      if (none_survived && cell != "-") {
        if (c.field == &RunMetrics::gc_cycles) cell += all_killed ? " before the kill" : " before it died";
        if (c.field == &RunMetrics::wall_s) cell += all_killed ? " to kill" : " until it died";
      }
      out << " " << cell << " |";
    }
    out << "\n";
  }
  for (const std::string &note : e.notes) out << "\n" << note << "\n";
  for (const std::string &note : LimiterNotes(e)) out << "\n" << note << "\n";
}

std::vector<std::string> LimiterNotes(const Experiment &e) {
  std::vector<std::string> notes;
  for (const Group &g : e.groups) {
    if (!g.policy.limiter_off || !g.invocation.applicable) continue;
    double on_s = 0;
    for (const RunResult &r : g.runs) on_s = std::max(on_s, ComputeMetrics(r).limiter_on_s.value_or(0));
    if (on_s > 0) {
      notes.push_back("Warning: " + std::string(RuntimeName(g.runtime)) + " " + g.policy.label + ": " +
                      kCpuLimiterVariable + "=off was set, yet the limiter was on for " + Fixed(on_s, 2) +
                      " s: this build of the library does not honour the variable.");
    }
  }
  return notes;
}

namespace {

// The quota in CPUs as the CSV writes it: "0.3", "1.5"; "" without a quota.
std::string CpuQuotaCsv(const Experiment &e) {
  if (!e.cpu_quota_us) return "";
  char buf[32];
  snprintf(buf, sizeof(buf), "%.6g", *CpuQuotaCpus(e));
  return buf;
}

}  // namespace

void WriteCsv(std::ostream &out, const Experiment &e) {
  out << "runtime,policy,settings,scenario,cap_mib,enforcement,cpu_quota,runs,survived,survived_runs,end,killed_phase";
  for (const Column &c : kColumns) out << "," << c.csv << "," << c.csv << "_min," << c.csv << "_max";
  out << "\n";
  for (const Group &g : e.groups) {
    out << RuntimeName(g.runtime) << "," << CsvField(g.policy.name) << ","
        << CsvField(g.invocation.applicable ? g.invocation.settings : g.invocation.na_reason) << ","
        << CsvField(e.scenario.name) << "," << FormatMiB(e.scenario.cap_bytes) << "," << EnforcementName(e.enforcement)
        << "," << CpuQuotaCsv(e) << "," << g.runs.size() << ",";
    if (!g.invocation.applicable) {
      out << "n/a,0," << CsvField(g.invocation.na_reason) << ",";
      for (size_t i = 0; i < std::size(kColumns); ++i) out << ",,,";
      out << "\n";
      continue;
    }
    std::vector<RunMetrics> m = MetricsOf(g);
    size_t ok = 0;
    for (const RunMetrics &r : m) ok += r.survived ? 1 : 0;
    out << SurvivedWord(m) << "," << ok << "," << CsvField(SurvivedText(m)) << "," << KilledPhases(m);
    for (const Column &c : kColumns) {
      Summary s = ColumnSummary(m, c.field);
      int d = c.decimals + 1;
      out << "," << (s.median ? Num(*s.median, d) : "") << "," << (s.min ? Num(*s.min, d) : "") << ","
          << (s.max ? Num(*s.max, d) : "");
    }
    out << "\n";
  }
}

void WriteJson(std::ostream &out, const Experiment &e) {
  const Scenario &s = e.scenario;
  out << "{\n\"tool\":\"pacegc-oomsim\",\n\"command\":" << JsonString(e.command) << ",\n";
  out << "\"enforcement\":" << JsonString(EnforcementName(e.enforcement))
      << ",\"enforcement_note\":" << JsonString(e.enforcement_note) << ",\n";
  out << "\"cpu_quota\":";  // in CPUs (0.3 = 30% of one CPU); null: no quota
  JsonNumber(out, CpuQuotaCpus(e));
  out << ",\"cpu_quota_us\":";
  JsonU64(out, e.cpu_quota_us);
  out << ",\"cpu_period_us\":";
  JsonU64(out, e.cpu_quota_us ? std::optional<uint64_t>(e.cpu_period_us) : std::nullopt);
  out << ",\n";
  out << "\"scenario\":{\"name\":" << JsonString(s.name) << ",\"cap_bytes\":" << s.cap_bytes
      << ",\"limit_bytes\":" << s.limit_bytes << ",\"object_size\":" << s.object_size
      << ",\"sample_ms\":" << s.sample_ms << ",\"params\":{";
  for (size_t i = 0; i < s.params.size(); ++i) {
    out << (i ? "," : "") << JsonString(s.params[i].first) << ":" << JsonString(s.params[i].second);
  }
  out << "},\"phases\":[";
  for (size_t i = 0; i < s.phases.size(); ++i) {
    out << (i ? "," : "") << "{\"live_bytes\":" << s.phases[i].live_bytes
        << ",\"churn_bytes\":" << s.phases[i].churn_bytes << "}";
  }
  out << "]},\n\"notes\":[";
  for (size_t i = 0; i < e.notes.size(); ++i) out << (i ? "," : "") << JsonString(e.notes[i]);
  out << "],\n\"groups\":[\n";
  for (size_t gi = 0; gi < e.groups.size(); ++gi) {
    const Group &g = e.groups[gi];
    out << (gi ? ",\n" : "") << "{\"runtime\":" << JsonString(RuntimeName(g.runtime))
        << ",\"policy\":" << JsonString(g.policy.name) << ",\"label\":" << JsonString(g.policy.label)
        << ",\"applicable\":" << (g.invocation.applicable ? "true" : "false")
        << ",\"na_reason\":" << JsonString(g.invocation.na_reason)
        << ",\"settings\":" << JsonString(g.invocation.settings) << ",\"soft_limit_bytes\":";
    if (g.policy.limit_bytes != 0) {
      out << g.policy.limit_bytes;
    } else {
      out << "null";
    }
    out << ",\"ballast_bytes\":" << g.policy.ballast_bytes << ",\n\"runs\":[";
    for (size_t ri = 0; ri < g.runs.size(); ++ri) {
      const RunResult &r = g.runs[ri];
      RunMetrics m = ComputeMetrics(r);
      out << (ri ? ",\n" : "\n") << "{\"run\":" << ri + 1 << ",\"end\":" << JsonString(EndKindName(r.end))
          << ",\"end_detail\":" << JsonString(r.end_detail) << ",\"survived\":" << (m.survived ? "true" : "false")
          << ",\"killed_phase\":";
      if (m.killed_phase != 0) {
        out << m.killed_phase;
      } else {
        out << "null";
      }
      out << ",\"elapsed_s\":";
      JsonNumber(out, r.elapsed_s);
      out << ",\"exit_code\":" << r.exit_code << ",\"term_signal\":" << r.term_signal << ",\"peak_bytes\":";
      JsonU64(out, r.peak_bytes);
      out << ",\"oom_kills\":" << r.oom_kills << ",\"cgroup\":" << JsonString(r.cgroup_path)
          << ",\"cgroup_removed\":" << (r.cgroup_removed ? "true" : "false") << ",\"cpu_cgroup\":";
      if (r.cpu_cgroup_path.empty()) {
        out << "null";
      } else {
        out << JsonString(r.cpu_cgroup_path);
      }
      out << ",\"cpu_stat\":";
      if (r.cpu_stat) {
        out << "{\"nr_periods\":" << r.cpu_stat->nr_periods << ",\"nr_throttled\":" << r.cpu_stat->nr_throttled
            << ",\"throttled_time_ns\":" << r.cpu_stat->throttled_time_ns << "}";
      } else {
        out << "null";
      }
      out << ",\n \"metrics\":{";
      bool first = true;
      for (const Column &c : kColumns) {
        out << (first ? "" : ",") << JsonString(c.csv) << ":";
        first = false;
        JsonNumber(out, m.*(c.field));
      }
      out << "},\n \"start\":";
      JsonLine(out, r.start);
      out << ",\"result\":";
      JsonLine(out, r.result);
      out << ",\n \"phases\":[";
      for (size_t i = 0; i < r.phases.size(); ++i) {
        const PhaseRecord &p = r.phases[i];
        out << (i ? "," : "") << "{\"n\":" << p.n << ",\"live_bytes\":" << p.live_bytes
            << ",\"churn_bytes\":" << p.churn_bytes << ",\"start_s\":";
        JsonNumber(out, p.start_s);
        out << ",\"done_s\":";
        JsonNumber(out, p.done_s);
        out << ",\"churn_s\":";
        JsonNumber(out, p.churn_s);
        out << ",\"gc_cpu\":";
        JsonNumber(out, p.gc_cpu);
        out << "}";
      }
      out << "],\n \"usage\":{\"source\":"
          << JsonString(r.enforcement == Enforcement::kCgroup ? "cgroup memory.usage_in_bytes" : "VmRSS")
          << ",\"t_s\":[";
      for (size_t i = 0; i < r.usage.size(); ++i) {
        out << (i ? "," : "");
        JsonNumber(out, std::floor(r.usage[i].t_s * 1000.0 + 0.5) / 1000.0);
      }
      out << "],\"bytes\":[";
      for (size_t i = 0; i < r.usage.size(); ++i) out << (i ? "," : "") << r.usage[i].bytes;
      out << "]},\n \"samples\":{\"t_s\":";
      JsonSeries(out, r.samples,
                 [&](const WorkerSample &w) { JsonNumber(out, std::floor(w.t_s * 1000.0 + 0.5) / 1000.0); });
      out << ",\"heap_alloc\":";
      JsonSeries(out, r.samples, [&](const WorkerSample &w) { JsonU64(out, w.heap_alloc); });
      out << ",\"heap_goal\":";
      JsonSeries(out, r.samples, [&](const WorkerSample &w) { JsonU64(out, w.heap_goal); });
      out << ",\"total\":";
      JsonSeries(out, r.samples, [&](const WorkerSample &w) { JsonU64(out, w.total); });
      out << ",\"live\":";
      JsonSeries(out, r.samples, [&](const WorkerSample &w) { JsonU64(out, w.live); });
      out << ",\"gc\":";
      JsonSeries(out, r.samples, [&](const WorkerSample &w) { JsonU64(out, w.gc); });
      out << ",\"limiter\":";
      JsonSeries(out, r.samples, [&](const WorkerSample &w) { JsonU64(out, w.limiter); });
      out << "},\n \"stderr_tail\":[";
      for (size_t i = 0; i < r.stderr_tail.size(); ++i) out << (i ? "," : "") << JsonString(r.stderr_tail[i]);
      out << "]}";
    }
    out << "]}";
  }
  out << "\n]\n}\n";
}

}  // namespace pacegc::oomsim
