// tests/stress/fork_test.cc — fork() before the first collection while three threads allocate (issue 16, item 1).
// The scenario needs a process in which no collection has run yet, so it runs in a program of its own
// (fork_probe.c), started as any program starts the library.
#include <catch2/catch.hpp>

#include <string>

#include "common/run_probe.h"

TEST_CASE("200 forks under allocation from 3 threads before the first collection: no child hangs",
          "[stress][fork]") {
  pgc_test::ProbeOutcome o = pgc_test::RunProbeWithEnv("PACEGC_FORK_PROBE=1", PACEGC_FORK_PROBE);
  INFO(o.stderr_text);
  CHECK(o.status == 0);
  CHECK(o.stderr_text.find("fork probe ok") != std::string::npos);
}
