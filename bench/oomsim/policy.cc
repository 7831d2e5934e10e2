// bench/oomsim/policy.cc — see policy.h for the policies and the per-runtime mapping.
#include "policy.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "size.h"
#include "usage_error.h"

namespace pacegc::oomsim {
namespace {

constexpr const char *kPolicyForms =
    "accepted: gogc[=N|off], limit[=SIZE], off-limit[=SIZE], ballast[=SIZE], tuner[=PCT], each optionally "
    "followed by :limiter=off; SIZE in GOMEMLIMIT syntax (e.g. 460MiB) or a percentage of the cap (e.g. 90%)";

[[noreturn]] void BadPolicy(const std::string &text, const std::string &why) {
  throw UsageError("--policy " + text + ": " + why + " (" + kPolicyForms + ")");
}

std::string GogcText(int gogc) {
  return gogc < 0 ? "off" : std::to_string(gogc);
}

// A size given as a percentage of the cap: rounded down to a MiB when at least one MiB.
uint64_t PercentOfCap(double pct, uint64_t cap) {
  uint64_t bytes = static_cast<uint64_t>(static_cast<double>(cap) * pct / 100.0);
  return bytes >= kMiB ? bytes / kMiB * kMiB : bytes;
}

// "80%", "12.5%".
std::string PctText(double pct) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%g%%", pct);
  return buf;
}

}  // namespace

PolicySpec ParsePolicy(const std::string &text) {
  PolicySpec p;
  p.text = text;
  // Modifiers after the first ':' ("limit=80%:limiter=off").
  size_t colon = text.find(':');
  std::string base = text.substr(0, colon);
  while (colon != std::string::npos) {
    size_t next = text.find(':', colon + 1);
    std::string mod = text.substr(colon + 1, next == std::string::npos ? std::string::npos : next - colon - 1);
    if (mod == "limiter=off") {
      p.limiter_off = true;
    } else if (mod == "limiter=on") {
      p.limiter_off = false;
    } else {
      BadPolicy(text, "unknown modifier ':" + mod + "'");
    }
    colon = next;
  }
  size_t eq = base.find('=');
  std::string name = base.substr(0, eq);
  std::optional<std::string> value;
  if (eq != std::string::npos) {
    value = base.substr(eq + 1);
    if (value->empty()) BadPolicy(text, "empty value after '='");
  }
  if (name == "gogc") {
    p.kind = PolicyKind::kGogc;
    if (value) {
      if (*value == "off") {
        p.gogc = -1;
      } else {
        auto v = ParseCount(*value, 0, 1000000);
        if (!v)
          BadPolicy(text, "'" + *value + "' is not a GOGC value (a whole number of percent up to 1000000, or off)");
        p.gogc = static_cast<int>(*v);
      }
    }
  } else if (name == "limit" || name == "off-limit" || name == "ballast") {
    p.kind = name == "limit" ? PolicyKind::kLimit : name == "off-limit" ? PolicyKind::kOffLimit : PolicyKind::kBallast;
    if (value && value->back() == '%') {
      std::string number = value->substr(0, value->size() - 1);
      char *end = nullptr;
      double pct = number.empty() ? -1 : strtod(number.c_str(), &end);
      if (number.empty() || *end != '\0' || !(pct > 0) || pct > 1000 || !std::isfinite(pct)) {
        BadPolicy(text, "'" + *value + "' is not a percentage of the cap in (0%, 1000%]");
      }
      p.size_pct = pct;
    } else if (value) {
      std::string error;
      auto v = ParseSize(*value, &error);
      if (!v) BadPolicy(text, error);
      if (*v == 0 && p.kind != PolicyKind::kBallast) BadPolicy(text, "the limit must be more than 0 bytes");
      p.size = *v;
    }
  } else if (name == "tuner") {
    p.kind = PolicyKind::kTuner;
    if (value) {
      std::string pct = *value;
      if (!pct.empty() && pct.back() == '%') pct.pop_back();
      auto v = ParseCount(pct, 1, 100);
      if (!v) BadPolicy(text, "'" + *value + "' is not a percentage of the cap in [1, 100]");
      p.tuner_pct = static_cast<int>(*v);
    }
  } else {
    BadPolicy(text, "unknown policy '" + name + "'");
  }
  return p;
}

std::vector<Runtime> ParseRuntimes(const std::string &text) {
  std::vector<Runtime> out;
  size_t start = 0;
  for (;;) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    Runtime r;
    if (item == "pacegc") {
      r = Runtime::kPacegc;
    } else if (item == "go") {
      r = Runtime::kGo;
    } else if (item == "bdwgc") {
      r = Runtime::kBdwgc;
    } else {
      throw UsageError("--runtime: unknown runtime '" + item + "' in '" + text + "' (accepted: pacegc, go, bdwgc)");
    }
    for (Runtime seen : out) {
      if (seen == r) throw UsageError("--runtime: '" + item + "' listed twice in '" + text + "'");
    }
    out.push_back(r);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

const char *RuntimeName(Runtime r) {
  switch (r) {
    case Runtime::kPacegc:
      return "pacegc";
    case Runtime::kGo:
      return "go";
    case Runtime::kBdwgc:
      return "bdwgc";
  }
  return "?";
}

const char *WorkerName(Runtime r) {
  switch (r) {
    case Runtime::kPacegc:
      return "pacegc-oomsim-worker";
    case Runtime::kGo:
      return "oomsim-worker-go";
    case Runtime::kBdwgc:
      return "oomsim-worker-bdwgc";
  }
  return "?";
}

Policy ResolvePolicy(const PolicySpec &spec, const Scenario &scenario) {
  Policy p;
  p.spec = spec;
  switch (spec.kind) {
    case PolicyKind::kGogc:
      p.gogc = spec.gogc;
      p.name = "gogc=" + GogcText(p.gogc);
      p.label = "GOGC=" + GogcText(p.gogc);
      break;
    case PolicyKind::kLimit:
    case PolicyKind::kOffLimit:
      p.gogc = spec.kind == PolicyKind::kLimit ? 100 : -1;
      p.limit_bytes = spec.size_pct ? PercentOfCap(*spec.size_pct, scenario.cap_bytes)
                                    : spec.size.value_or(scenario.limit_bytes);
      if (p.limit_bytes == 0) {
        throw UsageError("--policy " + spec.text + ": " + PctText(*spec.size_pct) + " of the " +
                         FormatSize(scenario.cap_bytes) + " cap is 0 bytes");
      }
      p.name = std::string(spec.kind == PolicyKind::kLimit ? "limit=" : "off-limit=") + FormatSize(p.limit_bytes);
      p.label = "GOGC=" + GogcText(p.gogc) + ", GOMEMLIMIT=" + FormatSize(p.limit_bytes);
      if (spec.size_pct) p.label += " (" + PctText(*spec.size_pct) + " of cap)";
      break;
    case PolicyKind::kBallast:
      p.ballast_bytes = PercentOfCap(spec.size_pct.value_or(50), scenario.cap_bytes);
      if (spec.size && !spec.size_pct) p.ballast_bytes = *spec.size;
      p.name = "ballast=" + FormatSize(p.ballast_bytes);
      p.label = p.ballast_bytes == 0 ? std::string("no ballast (0B), GOGC=100")
                                     : "ballast " + FormatSize(p.ballast_bytes) + ", GOGC=100";
      break;
    case PolicyKind::kTuner:
      p.tuner_pct = spec.tuner_pct;
      p.name = "tuner=" + std::to_string(p.tuner_pct);
      p.label = "tuner " + std::to_string(p.tuner_pct) + "% of cap";
      break;
  }
  p.limiter_off = spec.limiter_off.value_or(scenario.limiter_off);
  if (p.limiter_off) {
    p.name += ":limiter=off";
    p.label += ", CPU limiter off";
  }
  return p;
}

const std::vector<std::string> &PacingEnvironmentVariables() {
  static const std::vector<std::string> vars = {"GOGC",           "GOMEMLIMIT",           kCpuLimiterVariable,
                                                kAutoMemLimitVariable, "GC_MAXIMUM_HEAP_SIZE", "GC_FREE_SPACE_DIVISOR"};
  return vars;
}

Invocation MakeInvocation(Runtime runtime, const Policy &policy, const Scenario &scenario) {
  Invocation inv;
  inv.args = {"--phases",    PhasesArgument(scenario.phases),   "--object-size", std::to_string(scenario.object_size),
              "--sample-ms", std::to_string(scenario.sample_ms)};
  auto set = [&](const std::string &k, const std::string &v) {
    inv.env.emplace_back(k, v);
    inv.settings += (inv.settings.empty() ? "" : " ") + k + "=" + v;
  };
  auto arg = [&](const std::string &k, const std::string &v) {
    inv.args.push_back(k);
    inv.args.push_back(v);
    inv.settings += (inv.settings.empty() ? "" : " ") + k + " " + v;
  };

  if (policy.limiter_off && runtime != Runtime::kPacegc) {
    inv.applicable = false;
    inv.na_reason = runtime == Runtime::kGo ? "n/a: Go 1.19 cannot turn its GC CPU limiter off"
                                            : "n/a: bdwgc has no GC CPU limiter";
    return inv;
  }
  if (runtime == Runtime::kBdwgc) {
    switch (policy.spec.kind) {
      case PolicyKind::kGogc:
        inv.settings = policy.gogc == 100 ? "default pacing (free-space divisor 3)"
                                          : "default pacing (free-space divisor 3; GOGC=" + GogcText(policy.gogc) +
                                                " has no bdwgc equivalent)";
        break;
      case PolicyKind::kLimit:
      case PolicyKind::kOffLimit:
        set("GC_MAXIMUM_HEAP_SIZE", std::to_string(policy.limit_bytes));
        break;
      case PolicyKind::kBallast:
        if (policy.ballast_bytes != 0) {
          arg("--ballast", FormatSize(policy.ballast_bytes));
        } else {
          inv.settings = "default pacing (free-space divisor 3), no ballast";
        }
        break;
      case PolicyKind::kTuner:
        inv.applicable = false;
        inv.na_reason = "n/a: bdwgc has no GOGC";
        break;
    }
    return inv;
  }

  // pacegc and Go read GOGC and GOMEMLIMIT themselves.
  set("GOGC", GogcText(policy.gogc));
  if (policy.limit_bytes != 0) set("GOMEMLIMIT", FormatSize(policy.limit_bytes));
  // Without GOMEMLIMIT pacegc would take 90% of the worker's cgroup limit as its soft limit: a policy without a
  // limit (gogc, ballast, tuner) must run without one, as Go 1.19 does (it reads no cgroup limit).
  if (policy.limit_bytes == 0 && runtime == Runtime::kPacegc) set(kAutoMemLimitVariable, "off");
  if (policy.ballast_bytes != 0) arg("--ballast", FormatSize(policy.ballast_bytes));
  if (policy.tuner_pct != 0) {
    arg("--tuner-pct", std::to_string(policy.tuner_pct));
    arg("--cap", FormatSize(scenario.cap_bytes));
  }
  if (policy.limiter_off) set(kCpuLimiterVariable, "off");
  return inv;
}

}  // namespace pacegc::oomsim
