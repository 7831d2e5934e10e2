// tests/common/run_probe.h — runs a probe program in a child process with extra environment settings and collects
// its exit status and everything it printed (stdout and stderr together). For tests of start-up behaviour that
// ends a process (malformed settings exit with status 2), which cannot run inside the test process itself.
#ifndef PACEGC_TESTS_COMMON_RUN_PROBE_H_
#define PACEGC_TESTS_COMMON_RUN_PROBE_H_

#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace pgc_test {

struct ProbeOutcome {
  int status;  // exit status, or -1 if the probe did not exit normally
  std::string stderr_text;
};

// Runs `env ENV PROBE 2>&1`; env is a space-separated list of NAME=VALUE.
inline ProbeOutcome RunProbeWithEnv(const std::string &env, const char *probe) {
  std::string cmd = "env " + env + " " + probe + " 2>&1";
  FILE *f = popen(cmd.c_str(), "r");
  REQUIRE(f != nullptr);
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof(buf), f) != nullptr) out += buf;
  int rc = pclose(f);
  return ProbeOutcome{WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

}  // namespace pgc_test

#endif  // PACEGC_TESTS_COMMON_RUN_PROBE_H_
