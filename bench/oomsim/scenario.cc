// bench/oomsim/scenario.cc — see scenario.h for the scenarios and their parameters.
#include "scenario.h"

#include <cmath>
#include <cstdlib>
#include <map>

#include "size.h"
#include "usage_error.h"

namespace pacegc::oomsim {
namespace {

struct ParamDef {
  const char *key;
  const char *default_value;
  const char *help;
};

using Params = std::map<std::string, std::string>;

struct ScenarioDef {
  const char *name;
  const char *summary;
  uint64_t default_cap_bytes;
  uint64_t fixed_limit_bytes;  // 0: 90% of the cap
  std::vector<ParamDef> params;
  // Builds the phase list from the effective parameters; cap is the resolved cap.
  std::vector<Phase> (*expand)(const std::string &scenario, const Params &params, uint64_t cap);
};

[[noreturn]] void Bad(const std::string &scenario, const std::string &key, const std::string &why) {
  throw UsageError("--set " + key + " (scenario " + scenario + "): " + why);
}

uint64_t Size(const std::string &scenario, const std::string &key, const std::string &value) {
  std::string error;
  auto v = ParseSize(value, &error);
  if (!v) Bad(scenario, key, error);
  return *v;
}

// SIZE, or a percentage of the cap ("75%", "12.5%"), rounded down to a MiB when at least one MiB.
uint64_t SizeOrPercent(const std::string &scenario, const std::string &key, const std::string &value, uint64_t cap) {
  if (!value.empty() && value.back() == '%') {
    std::string number = value.substr(0, value.size() - 1);
    char *end = nullptr;
    double pct = number.empty() ? -1 : strtod(number.c_str(), &end);
    if (number.empty() || *end != '\0' || !(pct > 0) || pct > 1000 || !std::isfinite(pct)) {
      Bad(scenario, key, "'" + value + "' is not a percentage of the cap in (0%, 1000%]");
    }
    uint64_t bytes = static_cast<uint64_t>(static_cast<double>(cap) * pct / 100.0);
    return bytes >= kMiB ? bytes / kMiB * kMiB : bytes;
  }
  return Size(scenario, key, value);
}

uint64_t Count(const std::string &scenario, const std::string &key, const std::string &value, uint64_t hi) {
  auto v = ParseCount(value, 1, hi);
  if (!v) Bad(scenario, key, "'" + value + "' is not a whole number in [1, " + std::to_string(hi) + "]");
  return *v;
}

std::vector<std::string> SplitList(const std::string &text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t pos = text.find(sep, start);
    out.push_back(text.substr(start, pos == std::string::npos ? std::string::npos : pos - start));
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  return out;
}

constexpr uint64_t kMaxPhases = 4096;  // the workers' limit

std::vector<Phase> ExpandLiveList(const std::string &s, const Params &p, uint64_t cap) {
  uint64_t churn = Size(s, "churn", p.at("churn"));
  std::vector<Phase> phases;
  for (const std::string &item : SplitList(p.at("live"), ',')) {
    if (item.empty()) Bad(s, "live", "empty entry in '" + p.at("live") + "'; want SIZE[,SIZE...]");
    phases.push_back({SizeOrPercent(s, "live", item, cap), churn});
  }
  if (phases.size() > kMaxPhases) Bad(s, "live", "more than 4096 phases");
  return phases;
}

std::vector<Phase> ExpandSteady(const std::string &s, const Params &p, uint64_t cap) {
  uint64_t live = SizeOrPercent(s, "live", p.at("live"), cap);
  uint64_t churn = Size(s, "churn", p.at("churn"));
  uint64_t count = Count(s, "count", p.at("count"), kMaxPhases);
  return std::vector<Phase>(count, Phase{live, churn});
}

std::vector<Phase> ExpandSpike(const std::string &s, const Params &p, uint64_t cap) {
  uint64_t base = SizeOrPercent(s, "base", p.at("base"), cap);
  uint64_t peak = SizeOrPercent(s, "peak", p.at("peak"), cap);
  uint64_t churn = Size(s, "churn", p.at("churn"));
  return {{base, churn}, {peak, churn}, {base, churn}, {base, churn}};
}

std::vector<Phase> ExpandLeak(const std::string &s, const Params &p, uint64_t cap) {
  uint64_t step = SizeOrPercent(s, "step", p.at("step"), cap);
  if (step == 0) Bad(s, "step", "must be more than 0 bytes");
  uint64_t churn = Size(s, "churn", p.at("churn"));
  uint64_t count;
  if (p.at("count") == "auto") {
    uint64_t target = cap + cap / 2;
    count = (target + step - 1) / step;
    if (count > kMaxPhases) Bad(s, "step", "reaching 150% of the cap takes more than 4096 phases; raise step");
  } else {
    count = Count(s, "count", p.at("count"), kMaxPhases);
  }
  std::vector<Phase> phases;
  for (uint64_t i = 1; i <= count; ++i) phases.push_back({step * i, churn});
  return phases;
}

std::vector<Phase> ExpandSawtooth(const std::string &s, const Params &p, uint64_t cap) {
  uint64_t low = SizeOrPercent(s, "low", p.at("low"), cap);
  uint64_t high = SizeOrPercent(s, "high", p.at("high"), cap);
  uint64_t churn = Size(s, "churn", p.at("churn"));
  uint64_t count = Count(s, "count", p.at("count"), kMaxPhases / 2);
  std::vector<Phase> phases;
  for (uint64_t i = 0; i < count; ++i) {
    phases.push_back({low, churn});
    phases.push_back({high, churn});
  }
  return phases;
}

const std::vector<ScenarioDef> &Defs() {
  static const std::vector<ScenarioDef> defs = {
      {"step",
       "live heap steps up while garbage churns (the pacer-problem figure)",
       512 * kMiB,
       0,
       {{"live", "64MiB,128MiB,192MiB,256MiB", "live heap of each phase (SIZE or % of cap, comma-separated)"},
        {"churn", "1GiB", "garbage allocated in each phase"}},
       ExpandLiveList},
      {"spiral",
       "live heap passes the soft limit (the CPU limiter's death-spiral guard)",
       2 * kGiB,
       460 * kMiB,
       {{"live", "256MiB,448MiB,512MiB,576MiB", "live heap of each phase (SIZE or % of cap, comma-separated)"},
        {"churn", "1GiB", "garbage allocated in each phase"}},
       ExpandLiveList},
      {"steady",
       "constant live heap, constant churn",
       512 * kMiB,
       0,
       {{"live", "25%", "live heap (SIZE or % of cap)"},
        {"churn", "1GiB", "garbage allocated in each phase"},
        {"count", "4", "number of phases"}},
       ExpandSteady},
      {"spike",
       "a transient live spike to near the cap and back",
       512 * kMiB,
       0,
       {{"base", "12.5%", "live heap before and after the spike (SIZE or % of cap)"},
        {"peak", "75%", "live heap of the spike (SIZE or % of cap)"},
        {"churn", "512MiB", "garbage allocated in each of the 4 phases"}},
       ExpandSpike},
      {"leak",
       "live heap grows every phase until killed or count phases",
       512 * kMiB,
       0,
       {{"step", "6.25%", "live-heap growth per phase (SIZE or % of cap)"},
        {"churn", "128MiB", "garbage allocated in each phase"},
        {"count", "auto", "number of phases, or auto: until live reaches 150% of the cap"}},
       ExpandLeak},
      {"sawtooth",
       "live heap oscillates between low and high",
       512 * kMiB,
       0,
       {{"low", "12.5%", "live heap of the low phases (SIZE or % of cap)"},
        {"high", "50%", "live heap of the high phases (SIZE or % of cap)"},
        {"churn", "256MiB", "garbage allocated in each phase"},
        {"count", "4", "number of low/high periods (2 phases each)"}},
       ExpandSawtooth},
  };
  return defs;
}

const ParamDef kCommonParams[] = {
    {"phases", "", "LIVE:CHURN,... the phase list itself (replaces the scenario's parameters)"},
    {"object", "64", "object size in bytes of live nodes and garbage"},
    {"limit", "", "the soft limit of the limit/off-limit policies (default 90% of the cap, or the scenario's)"},
    {"sample_ms", "20", "sampling period in ms of the worker's samples and the parent's memory series"},
    {"limiter", "on", "on|off: the GC CPU limiter of policies without :limiter= (off: PACEGC_CPU_LIMITER=off)"},
};

std::string AcceptedKeys(const ScenarioDef &def) {
  std::string keys;
  for (const ParamDef &p : def.params) keys += (keys.empty() ? "" : ", ") + std::string(p.key);
  for (const ParamDef &p : kCommonParams) keys += ", " + std::string(p.key);
  return keys;
}

std::vector<Phase> ParsePhaseList(const std::string &scenario, const std::string &text) {
  std::vector<Phase> phases;
  for (const std::string &item : SplitList(text, ',')) {
    size_t colon = item.find(':');
    if (colon == std::string::npos) Bad(scenario, "phases", "'" + item + "' is not LIVE:CHURN (e.g. 64MiB:1GiB)");
    phases.push_back(
        {Size(scenario, "phases", item.substr(0, colon)), Size(scenario, "phases", item.substr(colon + 1))});
  }
  if (phases.size() > kMaxPhases) Bad(scenario, "phases", "more than 4096 phases");
  return phases;
}

}  // namespace

std::vector<std::string> ScenarioNames() {
  std::vector<std::string> names;
  for (const ScenarioDef &d : Defs()) names.push_back(d.name);
  return names;
}

Scenario ResolveScenario(const std::string &name, std::optional<uint64_t> cap, const std::vector<std::string> &sets) {
  const ScenarioDef *def = nullptr;
  for (const ScenarioDef &d : Defs()) {
    if (name == d.name) def = &d;
  }
  if (def == nullptr) {
    std::string names;
    for (const std::string &n : ScenarioNames()) names += (names.empty() ? "" : ", ") + n;
    throw UsageError("--scenario: unknown scenario '" + name + "' (accepted: " + names + ")");
  }
  Scenario s;
  s.name = def->name;
  s.cap_bytes = cap.value_or(def->default_cap_bytes);

  Params params;
  for (const ParamDef &p : def->params) params[p.key] = p.default_value;
  std::optional<std::string> phases_text, object_text, limit_text, sample_text, limiter_text;
  for (const std::string &set : sets) {
    size_t eq = set.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw UsageError("--set: '" + set + "' is not KEY=VALUE (keys of scenario " + s.name + ": " + AcceptedKeys(*def) +
                       ")");
    }
    std::string key = set.substr(0, eq), value = set.substr(eq + 1);
    if (value.empty()) Bad(s.name, key, "empty value");
    if (key == "phases") {
      phases_text = value;
    } else if (key == "object") {
      object_text = value;
    } else if (key == "limit") {
      limit_text = value;
    } else if (key == "sample_ms") {
      sample_text = value;
    } else if (key == "limiter") {
      limiter_text = value;
    } else if (params.count(key) != 0) {
      params[key] = value;
    } else {
      throw UsageError("--set: unknown key '" + key + "' for scenario " + s.name + " (accepted: " + AcceptedKeys(*def) +
                       ")");
    }
  }

  if (object_text) {
    auto v = ParseCount(*object_text, 8, uint64_t{1} << 20);
    if (!v) Bad(s.name, "object", "'" + *object_text + "' is not a whole number of bytes in [8, 1048576]");
    s.object_size = *v;
  }
  if (sample_text) {
    auto v = ParseCount(*sample_text, 1, 60000);
    if (!v) Bad(s.name, "sample_ms", "'" + *sample_text + "' is not a whole number of ms in [1, 60000]");
    s.sample_ms = static_cast<unsigned>(*v);
  }
  if (limiter_text) {
    if (*limiter_text != "on" && *limiter_text != "off") {
      Bad(s.name, "limiter", "'" + *limiter_text + "' is not on or off");
    }
    s.limiter_off = *limiter_text == "off";
  }
  if (limit_text) {
    s.limit_bytes = SizeOrPercent(s.name, "limit", *limit_text, s.cap_bytes);
  } else if (def->fixed_limit_bytes != 0) {
    s.limit_bytes = def->fixed_limit_bytes;
  } else {
    uint64_t l = s.cap_bytes / 10 * 9;
    s.limit_bytes = l >= kMiB ? l / kMiB * kMiB : l;
  }
  if (s.limit_bytes == 0) Bad(s.name, "limit", "the soft limit must be more than 0 bytes");

  if (phases_text) {
    s.phases = ParsePhaseList(s.name, *phases_text);
    s.params.emplace_back("phases", *phases_text);
  } else {
    s.phases = def->expand(s.name, params, s.cap_bytes);
    for (const ParamDef &p : def->params) s.params.emplace_back(p.key, params[p.key]);
  }
  s.params.emplace_back("object", std::to_string(s.object_size));
  s.params.emplace_back("limit", FormatSize(s.limit_bytes));
  s.params.emplace_back("sample_ms", std::to_string(s.sample_ms));
  s.params.emplace_back("limiter", s.limiter_off ? "off" : "on");
  if (s.phases.empty()) Bad(s.name, "phases", "no phases");
  return s;
}

std::string PhasesArgument(const std::vector<Phase> &phases) {
  std::string out;
  for (const Phase &p : phases) {
    if (!out.empty()) out += ',';
    out += FormatSize(p.live_bytes) + ":" + FormatSize(p.churn_bytes);
  }
  return out;
}

std::string DescribeScenarios() {
  std::string out;
  for (const ScenarioDef &d : Defs()) {
    out += std::string(d.name) + ": " + d.summary + "\n";
    out += "    cap " + FormatSize(d.default_cap_bytes) + ", soft limit " +
           (d.fixed_limit_bytes != 0 ? FormatSize(d.fixed_limit_bytes) : std::string("90% of the cap")) + "\n";
    for (const ParamDef &p : d.params)
      out += "    " + std::string(p.key) + "=" + p.default_value + "  " + p.help + "\n";
    Scenario s = ResolveScenario(d.name, std::nullopt, {});
    out += "    phases at the default cap: " + PhasesArgument(s.phases) + "\n";
  }
  out += "every scenario also takes:\n";
  for (const ParamDef &p : kCommonParams) {
    out += "    " + std::string(p.key) + (p.default_value[0] != '\0' ? "=" + std::string(p.default_value) : "") + "  " +
           p.help + "\n";
  }
  return out;
}

}  // namespace pacegc::oomsim
