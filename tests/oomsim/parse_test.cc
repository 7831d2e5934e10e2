// tests/oomsim/parse_test.cc — sizes, scenarios, policies and options of pacegc-oomsim; bad input is also checked by
// running the binary (exit status 2 and exactly one line on stderr naming the input).
#include <pacegc/pacegc.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <string>

#include "cgroup.h"
#include "cli.h"
#include "oomsim_test_util.h"
#include "policy.h"
#include "scenario.h"
#include "size.h"
#include "usage_error.h"

using namespace pacegc::oomsim;

namespace {

std::string Error(std::function<void()> f) {
  try {
    f();
  } catch (const UsageError &e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("sizes: the parent's parser agrees with pgc_parse_memory_limit", "[oomsim][parse]") {
  const char *inputs[] = {"0",
                          "1",
                          "4096",
                          "1B",
                          "1KiB",
                          "64MiB",
                          "460MiB",
                          "2GiB",
                          "1TiB",
                          "8388607TiB",
                          "8388608TiB",
                          "9223372036854775807",
                          "9223372036854775808",
                          "1G",
                          "1GB",
                          "1Mi",
                          "MiB",
                          "-1",
                          " 1",
                          "1 MiB",
                          "1.5GiB",
                          "0x10",
                          "64mib"};
  for (const char *text : inputs) {
    INFO(text);
    std::string error;
    auto mine = ParseSize(text, &error);
    int64_t theirs = 0;
    char buf[256];
    int rc = pgc_parse_memory_limit(text, &theirs, buf, sizeof(buf));
    CHECK(mine.has_value() == (rc == 0));
    if (mine && rc == 0) CHECK(*mine == static_cast<uint64_t>(theirs));
    if (!mine) CHECK(error.find(std::string("'") + text + "'") != std::string::npos);
  }
  std::string error;
  CHECK_FALSE(ParseSize("off", &error).has_value());  // every size here is finite
}

TEST_CASE("sizes: FormatSize is exact and parses back", "[oomsim][parse]") {
  CHECK(FormatSize(512 * kMiB) == "512MiB");
  CHECK(FormatSize(2 * kGiB) == "2GiB");
  CHECK(FormatSize(1000) == "1000B");
  CHECK(FormatSize(0) == "0B");
  CHECK(FormatSize(1536 * 1024) == "1536KiB");
  for (uint64_t v : {uint64_t{1}, uint64_t{4096}, 460 * kMiB, 3 * kGiB + 1, uint64_t{1} << 40}) {
    std::string error;
    CHECK(ParseSize(FormatSize(v), &error) == v);
  }
  CHECK(FormatMiB(460 * kMiB) == "460");
  CHECK(FormatMiB(kMiB + kMiB / 2) == "1.5");
}

TEST_CASE("scenarios: step and spiral match SCENARIOS.md", "[oomsim][parse]") {
  Scenario step = ResolveScenario("step", std::nullopt, {});
  CHECK(step.cap_bytes == 512 * kMiB);
  CHECK(step.limit_bytes == 460 * kMiB);
  CHECK(step.object_size == 64);
  REQUIRE(step.phases.size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    CHECK(step.phases[i].live_bytes == (i + 1) * 64 * kMiB);
    CHECK(step.phases[i].churn_bytes == kGiB);
  }
  CHECK(PhasesArgument(step.phases) == "64MiB:1GiB,128MiB:1GiB,192MiB:1GiB,256MiB:1GiB");

  Scenario spiral = ResolveScenario("spiral", std::nullopt, {});
  CHECK(spiral.cap_bytes == 2 * kGiB);
  CHECK(spiral.limit_bytes == 460 * kMiB);  // fixed by the scenario, not 90% of the cap
  CHECK(PhasesArgument(spiral.phases) == "256MiB:1GiB,448MiB:1GiB,512MiB:1GiB,576MiB:1GiB");
  // A different cap moves the default limit of step (90%), not spiral's.
  CHECK(ResolveScenario("step", 64 * kMiB, {}).limit_bytes == 57 * kMiB);
  CHECK(ResolveScenario("spiral", 1 * kGiB, {}).limit_bytes == 460 * kMiB);
}

TEST_CASE("scenarios: every scenario resolves and has a cap, a limit and phases", "[oomsim][parse]") {
  for (const std::string &name : ScenarioNames()) {
    INFO(name);
    Scenario s = ResolveScenario(name, std::nullopt, {});
    CHECK(s.cap_bytes > 0);
    CHECK(s.limit_bytes > 0);
    CHECK(s.limit_bytes <= s.cap_bytes);
    CHECK_FALSE(s.phases.empty());
  }
  Scenario spike = ResolveScenario("spike", std::nullopt, {});
  REQUIRE(spike.phases.size() == 4);
  CHECK(spike.phases[1].live_bytes == 384 * kMiB);  // 75% of 512MiB: near the cap
  CHECK(spike.phases[2].live_bytes == 64 * kMiB);
  Scenario leak = ResolveScenario("leak", std::nullopt, {});
  CHECK(leak.phases.back().live_bytes >= 768 * kMiB);  // count=auto: until 150% of the cap
  CHECK(ResolveScenario("leak", std::nullopt, {"count=3"}).phases.size() == 3);
  Scenario saw = ResolveScenario("sawtooth", std::nullopt, {"count=2"});
  REQUIRE(saw.phases.size() == 4);
  CHECK(saw.phases[0].live_bytes == 64 * kMiB);
  CHECK(saw.phases[1].live_bytes == 256 * kMiB);
  CHECK(ResolveScenario("steady", 1 * kGiB, {}).phases[0].live_bytes == 256 * kMiB);  // 25% of the cap
}

TEST_CASE("scenarios: --set overrides and rejects bad keys and values", "[oomsim][parse]") {
  Scenario s =
      ResolveScenario("step", 64 * kMiB, {"phases=8MiB:64MiB,16MiB:64MiB", "object=32", "limit=50MiB", "sample_ms=5"});
  REQUIRE(s.phases.size() == 2);
  CHECK(s.phases[1].live_bytes == 16 * kMiB);
  CHECK(s.phases[1].churn_bytes == 64 * kMiB);
  CHECK(s.object_size == 32);
  CHECK(s.limit_bytes == 50 * kMiB);
  CHECK(s.sample_ms == 5);
  CHECK(ResolveScenario("step", std::nullopt, {"live=32MiB,50%"}).phases[1].live_bytes == 256 * kMiB);

  CHECK_THAT(Error([] { ResolveScenario("stair", std::nullopt, {}); }),
             Catch::Contains("unknown scenario 'stair'") && Catch::Contains("step"));
  CHECK_THAT(Error([] { ResolveScenario("step", std::nullopt, {"colour=red"}); }),
             Catch::Contains("unknown key 'colour'") && Catch::Contains("phases"));
  CHECK_THAT(Error([] { ResolveScenario("step", std::nullopt, {"phases=64MiB"}); }),
             Catch::Contains("'64MiB' is not LIVE:CHURN"));
  CHECK_THAT(Error([] { ResolveScenario("step", std::nullopt, {"phases=64MB:1GiB"}); }), Catch::Contains("'64MB'"));
  CHECK_THAT(Error([] { ResolveScenario("step", std::nullopt, {"object=4"}); }), Catch::Contains("object"));
  CHECK_THAT(Error([] { ResolveScenario("step", std::nullopt, {"noequals"}); }), Catch::Contains("KEY=VALUE"));
  CHECK_THAT(Error([] { ResolveScenario("spike", std::nullopt, {"peak=75pct"}); }), Catch::Contains("peak"));
  CHECK_THAT(Error([] { ResolveScenario("spike", std::nullopt, {"peak=-5%"}); }), Catch::Contains("percentage"));
  CHECK_THAT(Error([] { ResolveScenario("leak", std::nullopt, {"count=zero"}); }), Catch::Contains("count"));
}

TEST_CASE("policies: forms, defaults from the scenario, and errors", "[oomsim][parse]") {
  Scenario step = ResolveScenario("step", std::nullopt, {});
  Policy gogc = ResolvePolicy(ParsePolicy("gogc"), step);
  CHECK(gogc.gogc == 100);
  CHECK(gogc.limit_bytes == 0);
  CHECK(gogc.name == "gogc=100");
  CHECK(ResolvePolicy(ParsePolicy("gogc=off"), step).gogc == -1);
  CHECK(ResolvePolicy(ParsePolicy("gogc=50"), step).gogc == 50);

  Policy limit = ResolvePolicy(ParsePolicy("limit"), step);
  CHECK(limit.gogc == 100);
  CHECK(limit.limit_bytes == 460 * kMiB);
  CHECK(limit.name == "limit=460MiB");
  Policy off = ResolvePolicy(ParsePolicy("off-limit=400MiB"), step);
  CHECK(off.gogc == -1);
  CHECK(off.limit_bytes == 400 * kMiB);
  Policy ballast = ResolvePolicy(ParsePolicy("ballast"), step);
  CHECK(ballast.ballast_bytes == 256 * kMiB);  // half the cap
  CHECK(ballast.gogc == 100);
  CHECK(ResolvePolicy(ParsePolicy("ballast=1GiB"), step).ballast_bytes == kGiB);
  CHECK(ResolvePolicy(ParsePolicy("tuner"), step).tuner_pct == 70);
  CHECK(ResolvePolicy(ParsePolicy("tuner=80"), step).tuner_pct == 80);

  CHECK_THAT(Error([] { ParsePolicy("gogc=abc"); }), Catch::Contains("gogc=abc") && Catch::Contains("accepted"));
  CHECK_THAT(Error([] { ParsePolicy("limit=1GB"); }), Catch::Contains("'1GB'"));
  CHECK_THAT(Error([] { ParsePolicy("limit="); }), Catch::Contains("empty value"));
  CHECK_THAT(Error([] { ParsePolicy("limit=0"); }), Catch::Contains("more than 0"));
  CHECK_THAT(Error([] { ParsePolicy("off-limit=0B"); }), Catch::Contains("more than 0"));
  CHECK_THAT(Error([] { ParsePolicy("tuner=150"); }), Catch::Contains("tuner=150"));
  CHECK_THAT(Error([] { ParsePolicy("fast"); }), Catch::Contains("unknown policy 'fast'"));
}

TEST_CASE("policies: sizes as a percentage of the cap, and ballast=0", "[oomsim][parse]") {
  Scenario step = ResolveScenario("step", std::nullopt, {});  // cap 512MiB
  Policy l70 = ResolvePolicy(ParsePolicy("limit=70%"), step);
  CHECK(l70.limit_bytes == 358 * kMiB);  // 358.4 MiB rounded down to a MiB
  CHECK(l70.gogc == 100);
  CHECK(l70.name == "limit=358MiB");
  CHECK_THAT(l70.label, Catch::Contains("70% of cap"));
  CHECK(ResolvePolicy(ParsePolicy("off-limit=95%"), step).limit_bytes == 486 * kMiB);
  CHECK(ResolvePolicy(ParsePolicy("off-limit=95%"), step).gogc == -1);
  CHECK(ResolvePolicy(ParsePolicy("ballast=25%"), step).ballast_bytes == 128 * kMiB);
  // The percentage follows --cap.
  Scenario big = ResolveScenario("step", 1 * kGiB, {});
  CHECK(ResolvePolicy(ParsePolicy("limit=75%"), big).limit_bytes == 768 * kMiB);

  Policy none = ResolvePolicy(ParsePolicy("ballast=0"), step);
  CHECK(none.ballast_bytes == 0);
  CHECK(none.gogc == 100);
  CHECK(none.name == "ballast=0B");
  Invocation inv = MakeInvocation(Runtime::kPacegc, none, step);
  for (const std::string &a : inv.args) CHECK(a != "--ballast");
  Invocation binv = MakeInvocation(Runtime::kBdwgc, none, step);
  for (const std::string &a : binv.args) CHECK(a != "--ballast");

  CHECK_THAT(Error([] { ParsePolicy("limit=0%"); }), Catch::Contains("'0%'"));
  CHECK_THAT(Error([] { ParsePolicy("limit=abc%"); }), Catch::Contains("'abc%'"));
  CHECK_THAT(Error([] { ParsePolicy("ballast=%"); }), Catch::Contains("'%'"));
  // 0.1% of a 1MiB cap is under a byte.
  Scenario tiny = ResolveScenario("step", kMiB, {});
  CHECK_THAT(Error([&] { ResolvePolicy(ParsePolicy("limit=0.00001%"), tiny); }), Catch::Contains("0 bytes"));
}

TEST_CASE("policies without a limit run pacegc with PACEGC_AUTOMEMLIMIT=off; Go and bdwgc get nothing",
          "[oomsim][parse]") {
  Scenario step = ResolveScenario("step", std::nullopt, {});
  auto env_of = [](const Invocation &inv, const std::string &key) -> std::string {
    for (const auto &kv : inv.env) {
      if (kv.first == key) return kv.second;
    }
    return "<unset>";
  };
  for (const char *text : {"gogc", "gogc=off", "ballast", "tuner"}) {
    INFO(text);
    Policy p = ResolvePolicy(ParsePolicy(text), step);
    Invocation inv = MakeInvocation(Runtime::kPacegc, p, step);
    CHECK(env_of(inv, "PACEGC_AUTOMEMLIMIT") == "off");
    CHECK_THAT(inv.settings, Catch::Contains("PACEGC_AUTOMEMLIMIT=off"));
    CHECK(env_of(inv, "GOMEMLIMIT") == "<unset>");
    CHECK(env_of(MakeInvocation(Runtime::kGo, p, step), "PACEGC_AUTOMEMLIMIT") == "<unset>");  // Go 1.19: no such
    CHECK(env_of(MakeInvocation(Runtime::kBdwgc, p, step), "PACEGC_AUTOMEMLIMIT") == "<unset>");
  }
  for (const char *text : {"limit", "off-limit=80%"}) {  // an explicit GOMEMLIMIT wins anyway: not set
    INFO(text);
    Invocation inv = MakeInvocation(Runtime::kPacegc, ResolvePolicy(ParsePolicy(text), step), step);
    CHECK(env_of(inv, "PACEGC_AUTOMEMLIMIT") == "<unset>");
    CHECK(env_of(inv, "GOMEMLIMIT") != "<unset>");
  }
  const auto &vars = PacingEnvironmentVariables();  // and the caller's own setting never leaks into a run
  CHECK(std::find(vars.begin(), vars.end(), "PACEGC_AUTOMEMLIMIT") != vars.end());
}

TEST_CASE("policies: the :limiter=off modifier and --set limiter", "[oomsim][parse]") {
  Scenario step = ResolveScenario("step", std::nullopt, {});
  auto env_of = [](const Invocation &inv, const std::string &key) -> std::string {
    for (const auto &kv : inv.env) {
      if (kv.first == key) return kv.second;
    }
    return "<unset>";
  };
  Policy on = ResolvePolicy(ParsePolicy("limit"), step);
  CHECK_FALSE(on.limiter_off);
  CHECK(env_of(MakeInvocation(Runtime::kPacegc, on, step), "PACEGC_CPU_LIMITER") == "<unset>");

  Policy off = ResolvePolicy(ParsePolicy("off-limit=80%:limiter=off"), step);
  CHECK(off.limiter_off);
  CHECK(off.gogc == -1);
  CHECK(off.limit_bytes == 409 * kMiB);
  CHECK(off.name == "off-limit=409MiB:limiter=off");
  CHECK_THAT(off.label, Catch::Contains("CPU limiter off"));
  Invocation p = MakeInvocation(Runtime::kPacegc, off, step);
  CHECK(p.applicable);
  CHECK(env_of(p, "PACEGC_CPU_LIMITER") == "off");
  CHECK(env_of(p, "GOGC") == "off");
  CHECK_THAT(p.settings, Catch::Contains("PACEGC_CPU_LIMITER=off"));
  Invocation g = MakeInvocation(Runtime::kGo, off, step);
  CHECK_FALSE(g.applicable);
  CHECK_THAT(g.na_reason, Catch::Contains("Go"));
  Invocation b = MakeInvocation(Runtime::kBdwgc, off, step);
  CHECK_FALSE(b.applicable);
  CHECK_THAT(b.na_reason, Catch::Contains("bdwgc"));

  // The parent strips the variable from the environment it passes on, like GOGC.
  const auto &vars = PacingEnvironmentVariables();
  CHECK(std::find(vars.begin(), vars.end(), "PACEGC_CPU_LIMITER") != vars.end());

  // --set limiter=off is the default of every policy; an explicit :limiter=on wins.
  Scenario all_off = ResolveScenario("spiral", std::nullopt, {"limiter=off"});
  CHECK(all_off.limiter_off);
  CHECK(ResolvePolicy(ParsePolicy("gogc"), all_off).limiter_off);
  CHECK_FALSE(ResolvePolicy(ParsePolicy("limit:limiter=on"), all_off).limiter_off);
  CHECK_FALSE(ResolveScenario("spiral", std::nullopt, {"limiter=on"}).limiter_off);

  CHECK_THAT(Error([] { ParsePolicy("limit:limiter=maybe"); }), Catch::Contains(":limiter=maybe"));
  CHECK_THAT(Error([] { ParsePolicy("limit:"); }), Catch::Contains("unknown modifier"));
  CHECK_THAT(Error([] { ResolveScenario("step", std::nullopt, {"limiter=no"}); }),
             Catch::Contains("limiter") && Catch::Contains("'no'"));
}

TEST_CASE("policies: the environment and arguments of each runtime", "[oomsim][parse]") {
  Scenario step = ResolveScenario("step", std::nullopt, {});
  auto env_of = [](const Invocation &inv, const std::string &key) -> std::string {
    for (const auto &kv : inv.env) {
      if (kv.first == key) return kv.second;
    }
    return "<unset>";
  };
  Invocation p = MakeInvocation(Runtime::kPacegc, ResolvePolicy(ParsePolicy("off-limit"), step), step);
  CHECK(p.applicable);
  CHECK(env_of(p, "GOGC") == "off");
  CHECK(env_of(p, "GOMEMLIMIT") == "460MiB");
  REQUIRE(p.args.size() >= 2);
  CHECK(p.args[0] == "--phases");
  CHECK(p.args[1] == "64MiB:1GiB,128MiB:1GiB,192MiB:1GiB,256MiB:1GiB");

  Invocation g = MakeInvocation(Runtime::kGo, ResolvePolicy(ParsePolicy("gogc"), step), step);
  CHECK(env_of(g, "GOGC") == "100");
  CHECK(env_of(g, "GOMEMLIMIT") == "<unset>");

  Invocation t = MakeInvocation(Runtime::kPacegc, ResolvePolicy(ParsePolicy("tuner"), step), step);
  std::string args;
  for (const std::string &a : t.args) args += a + " ";
  CHECK_THAT(args, Catch::Contains("--tuner-pct 70 --cap 512MiB"));

  Invocation b = MakeInvocation(Runtime::kBdwgc, ResolvePolicy(ParsePolicy("limit"), step), step);
  CHECK(env_of(b, "GC_MAXIMUM_HEAP_SIZE") == std::to_string(460 * kMiB));
  CHECK(env_of(b, "GOGC") == "<unset>");
  Invocation bb = MakeInvocation(Runtime::kBdwgc, ResolvePolicy(ParsePolicy("ballast"), step), step);
  args.clear();
  for (const std::string &a : bb.args) args += a + " ";
  CHECK_THAT(args, Catch::Contains("--ballast 256MiB"));
  Invocation bt = MakeInvocation(Runtime::kBdwgc, ResolvePolicy(ParsePolicy("tuner"), step), step);
  CHECK_FALSE(bt.applicable);
  CHECK(bt.na_reason == "n/a: bdwgc has no GOGC");
}

TEST_CASE("options: defaults, lists and forms", "[oomsim][parse]") {
  Options d = ParseOptions({});
  CHECK(d.scenario == "step");
  REQUIRE(d.policies.size() == 4);
  CHECK(d.policies[3].kind == PolicyKind::kBallast);
  REQUIRE(d.runtimes.size() == 1);
  CHECK(d.runtimes[0] == Runtime::kPacegc);

  Options o = ParseOptions({"--scenario=spiral", "--cap", "1GiB", "--policy", "gogc,limit", "--policy=tuner=80",
                            "--runtime", "pacegc,bdwgc", "--runs", "3", "--set", "object=32", "--enforce", "watchdog"});
  CHECK(o.scenario == "spiral");
  CHECK(o.cap_bytes == kGiB);
  REQUIRE(o.policies.size() == 3);
  CHECK(o.policies[2].tuner_pct == 80);
  CHECK(o.runtimes.size() == 2);
  CHECK(o.runs == 3);
  CHECK(o.sets.size() == 1);
  CHECK(o.enforce == EnforceMode::kWatchdog);

  CHECK_THAT(Error([] { ParseOptions({"--runs", "0"}); }), Catch::Contains("--runs"));
  CHECK_THAT(Error([] { ParseOptions({"--cap"}); }), Catch::Contains("needs a value"));
  CHECK_THAT(Error([] { ParseOptions({"--cap", "512KiB"}); }), Catch::Contains("below 1MiB"));
  CHECK_THAT(Error([] { ParseOptions({"--runtime", "java"}); }), Catch::Contains("'java'"));
  CHECK_THAT(Error([] { ParseOptions({"--policy", "gogc", "--policy", "gogc"}); }), Catch::Contains("twice"));
  CHECK_THAT(Error([] { ParseOptions({"--csv", "a", "--svg", "a"}); }), Catch::Contains("different files"));
  CHECK_THAT(Error([] { ParseOptions({"--list=yes"}); }), Catch::Contains("takes no value"));
}

TEST_CASE("options: --cpu as a percentage of one CPU or a number of CPUs", "[oomsim][parse]") {
  const std::pair<const char *, uint64_t> good[] = {
      {"30%", 30000},     {"0.3", 30000},      {"10%", 10000},   {"0.1", 10000},     {"1", 100000},
      {"150%", 150000},   {"1.5", 150000},     {"1%", 1000},     {"0.01", 1000},     {"2.5%", 2500},
      {"33.333%", 33333}, {"0.333333", 33333}, {"100%", 100000}, {"1024", 102400000}};
  for (const auto &[text, quota_us] : good) {
    INFO(text);
    std::string error;
    CHECK(ParseCpuQuota(text, &error) == quota_us);
    CHECK(error.empty());
  }
  for (const char *text : {"", "0", "0%", "0.0", "-30%", "-0.3", "+30%", "abc", "30 %", " 30%", "30%%", "%", ".3", "3.",
                           "0.5%", "0.001", "1e3", "0x10", "30MiB", "1,5", "1.2.3", "1025", "200000%",
                           "99999999999999999999%"}) {
    INFO(text);
    std::string error;
    CHECK_FALSE(ParseCpuQuota(text, &error).has_value());
    CHECK_THAT(error, Catch::Contains(std::string("'") + text + "'"));
  }
  std::string error;
  ParseCpuQuota("0", &error);
  CHECK_THAT(error, Catch::Contains("below") && Catch::Contains("1%"));
  ParseCpuQuota("-30%", &error);
  CHECK_THAT(error, Catch::Contains("30%") && Catch::Contains("0.3"));  // says what is accepted

  CHECK_FALSE(ParseOptions({}).cpu_quota_us.has_value());
  CHECK(ParseOptions({}).cpu_cgroup_root.empty());
  CHECK(ParseOptions({"--cpu", "30%"}).cpu_quota_us == 30000);
  CHECK(ParseOptions({"--cpu=0.1"}).cpu_quota_us == 10000);
  CHECK(ParseOptions({"--cpu", "1%", "--cpu", "50%"}).cpu_quota_us == 50000);  // the last one counts
  CHECK(ParseOptions({"--cpu-cgroup-root", "/tmp/cpu"}).cpu_cgroup_root == "/tmp/cpu");
  CHECK_THAT(Error([] { ParseOptions({"--cpu", "0"}); }), Catch::StartsWith("--cpu: '0'"));
  CHECK_THAT(Error([] { ParseOptions({"--cpu=-30%"}); }), Catch::StartsWith("--cpu: '-30%'"));
  CHECK_THAT(Error([] { ParseOptions({"--cpu"}); }), Catch::Contains("--cpu needs a value"));
  CHECK_THAT(Error([] { ParseOptions({"--cpu-cgroup-root="}); }), Catch::Contains("--cpu-cgroup-root"));

  CHECK(CpuQuotaPercent(30000) == "30%");
  CHECK(CpuQuotaPercent(150000) == "150%");
  CHECK(CpuQuotaPercent(33333) == "33.33%");
  CHECK(CpuQuotaPercent(2500) == "2.5%");
}

TEST_CASE("the binary: bad input exits 2 with one line naming it", "[oomsim][parse][binary]") {
  const std::pair<const char *, const char *> cases[] = {
      {"--cap 512MB", "512MB"},       {"--cap", "--cap"},
      {"--policy limit=1GB", "1GB"},  {"--policy fast", "fast"},
      {"--policy gogc=abc", "abc"},   {"--scenario stair", "stair"},
      {"--set colour=red", "colour"}, {"--set phases=64MiB", "64MiB"},
      {"--runs 0", "--runs"},         {"--runtime java", "java"},
      {"--enforce maybe", "maybe"},   {"--frobnicate", "--frobnicate"},
      {"--policy limit=2.5GiB", "2.5GiB"}, {"--policy limit:limiter=of", "limiter=of"},
      {"--policy limit=0%", "0%"},         {"--set limiter=2", "limiter"},
      {"--timeout -1", "--timeout"},       {"--policy ballast=-1MiB", "-1MiB"},
      {"--cpu 0", "--cpu: '0'"},           {"--cpu -30%", "--cpu: '-30%'"},
      {"--cpu 30percent", "30percent"},    {"--cpu", "--cpu"},
      {"--cpu-cgroup-root ''", "--cpu-cgroup-root"},
  };
  for (const auto &[args, needle] : cases) {
    INFO(args);
    oomsim_test::Outcome o = oomsim_test::RunOomsim(args);
    CHECK(o.status == 2);
    CHECK(oomsim_test::CountLines(o.err) == 1);
    CHECK_THAT(o.err, Catch::StartsWith("pacegc-oomsim: ") && Catch::Contains(needle));
    CHECK(o.out.empty());
  }
}

TEST_CASE("the binary: --cpu without a writable cpu cgroup fails before running anything", "[oomsim][parse][binary]") {
  oomsim_test::Outcome o = oomsim_test::RunOomsim("--cpu 30% --cpu-cgroup-root /nonexistent/cpu --policy gogc");
  CHECK(o.status == 1);
  CHECK(oomsim_test::CountLines(o.err) == 1);
  CHECK_THAT(o.err, Catch::StartsWith("pacegc-oomsim: --cpu: ") && Catch::Contains("/nonexistent/cpu") &&
                        Catch::Contains("not running without the CPU quota"));
  CHECK(o.out.empty());  // no table: nothing ran
}

TEST_CASE("the binary: --help and --list", "[oomsim][parse][binary]") {
  oomsim_test::Outcome help = oomsim_test::RunOomsim("--help");
  CHECK(help.status == 0);
  CHECK_THAT(help.out, Catch::Contains("--policy") && Catch::Contains("--enforce"));
  CHECK_THAT(help.out, Catch::Contains("--cpu QUOTA") && Catch::Contains("--cpu-cgroup-root DIR") &&
                           Catch::Contains("30%") && Catch::Contains("0.3"));
  oomsim_test::Outcome list = oomsim_test::RunOomsim("--list");
  CHECK(list.status == 0);
  for (const std::string &name : ScenarioNames()) CHECK_THAT(list.out, Catch::Contains(name + ":"));
}

TEST_CASE("the worker: bad arguments exit 2 with one line", "[oomsim][parse][binary]") {
  for (const char *args : {"", "--phases 8MiB", "--phases 8MiB:1GB", "--object-size 3 --phases 8MiB:8MiB",
                           "--tuner-pct 70 --phases 8MiB:8MiB", "--bogus"}) {
    INFO(args);
    oomsim_test::Outcome o = oomsim_test::RunShell(std::string(PACEGC_OOMSIM_WORKER) + " " + args);
    CHECK(o.status == 2);
    CHECK(oomsim_test::CountLines(o.err) == 1);
    CHECK_THAT(o.err, Catch::StartsWith("pacegc-oomsim-worker: "));
  }
}
