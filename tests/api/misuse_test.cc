// tests/api/misuse_test.cc — every API entry point refuses what it cannot honour with the documented misuse line
// (include/pacegc/pacegc.h, pgc_free): "pacegc: <call>(<pointer>): <problem> (ignored)", the call does nothing
// and the program goes on — or, in verify builds, the line ends in "(aborting ...)" and the process aborts.
// Each case runs misuse_probe in a child process: one misuse, then collections (where a NULL finalizer or an
// unmapped root range used to crash).
#include <catch2/catch.hpp>

#include <string>

#include "common/run_probe.h"

namespace {

#if defined(PACEGC_VERIFY_HEAP)
constexpr bool kMisuseAborts = true;
#else
constexpr bool kMisuseAborts = false;
#endif

// abort(): the probe dies of SIGABRT; the shell that runs it reports that as -1 (signalled) or as 128 + 6.
bool Aborted(const pgc_test::ProbeOutcome &o) { return o.status == -1 || o.status == 128 + 6; }

pgc_test::ProbeOutcome RunMisuse(const std::string &which) {
  std::string probe = std::string(PACEGC_MISUSE_PROBE) + " " + which;
  return pgc_test::RunProbeWithEnv("PACEGC_ABORT_ON_MISUSE=0", probe.c_str());
}

void ExpectMisuse(const std::string &which, const std::string &line_start, const std::string &problem) {
  INFO(which);
  pgc_test::ProbeOutcome o = RunMisuse(which);
  INFO(o.stderr_text);
  size_t at = o.stderr_text.find("pacegc: " + line_start);
  REQUIRE(at != std::string::npos);
  std::string line = o.stderr_text.substr(at, o.stderr_text.find('\n', at) - at);
  CHECK(line.find(problem) != std::string::npos);
  if (kMisuseAborts) {
    CHECK(line.find("(aborting") != std::string::npos);
    CHECK(Aborted(o));
  } else {
    CHECK(line.find("(ignored)") != std::string::npos);
    CHECK(o.status == 0);
    CHECK(o.stderr_text.find("misuse probe ok 1 0") != std::string::npos);  // no finalizer ran on a non-object
  }
}

}  // namespace

TEST_CASE("pgc_register_finalizer refuses NULL, foreign, interior and freed pointers", "[api][misuse]") {
  ExpectMisuse("finalizer-null", "pgc_register_finalizer((nil)): ", "NULL");
  ExpectMisuse("finalizer-stack", "pgc_register_finalizer(0x", "not an object");
  ExpectMisuse("finalizer-static", "pgc_register_finalizer(0x", "not an object");
  ExpectMisuse("finalizer-malloc", "pgc_register_finalizer(0x", "not an object");
  ExpectMisuse("finalizer-interior", "pgc_register_finalizer(0x", "interior pointer");
  ExpectMisuse("finalizer-interior-large", "pgc_register_finalizer(0x", "interior pointer");
  ExpectMisuse("finalizer-freed", "pgc_register_finalizer(0x", "already freed");
  ExpectMisuse("finalizer-freed-large", "pgc_register_finalizer(0x", "already freed");
}

TEST_CASE("pgc_free refuses foreign, interior and freed pointers", "[api][misuse]") {
  ExpectMisuse("free-stack", "pgc_free(0x", "not an object");
  ExpectMisuse("free-interior", "pgc_free(0x", "interior pointer");
  ExpectMisuse("free-twice", "pgc_free(0x", "already freed");
  ExpectMisuse("free-twice-large", "pgc_free(0x", "already freed");
}

TEST_CASE("pgc_realloc refuses foreign, interior, freed and uncollectable pointers; pgc_strdup NULL",
          "[api][misuse][helpers]") {
  ExpectMisuse("realloc-stack", "pgc_realloc(0x", "not an object");
  ExpectMisuse("realloc-interior", "pgc_realloc(0x", "interior pointer");
  ExpectMisuse("realloc-freed", "pgc_realloc(0x", "already freed");
  ExpectMisuse("realloc-uncollectable", "pgc_realloc(0x", "uncollectable block");
  ExpectMisuse("strdup-null", "pgc_strdup(NULL)", "");
  ExpectMisuse("manual-free-uncollectable", "pgc_manual_free(0x", "uncollectable block");
}

TEST_CASE("pgc_register_weak_link refuses interior and foreign objects and misaligned links", "[api][misuse][weak]") {
  ExpectMisuse("weak-interior", "pgc_register_weak_link(0x", "interior pointer");
  ExpectMisuse("weak-stack", "pgc_register_weak_link(0x", "not an object");
  ExpectMisuse("weak-misaligned", "pgc_register_weak_link(0x", "pointer-aligned");
  if (!kMisuseAborts) {
    pgc_test::ProbeOutcome o = RunMisuse("weak-interior");  // ignored misuse: the call reports EINVAL
    CHECK(o.stderr_text.find("misuse probe rc 22") != std::string::npos);
  }
}

TEST_CASE("pgc_add_roots refuses ranges that are not mapped readable; later collections do not crash",
          "[api][misuse][roots]") {
  ExpectMisuse("roots-unmapped", "pgc_add_roots(0x", "not entirely mapped readable");
  ExpectMisuse("roots-prot-none", "pgc_add_roots(0x", "not entirely mapped readable");
  ExpectMisuse("roots-partly-mapped", "pgc_add_roots(0x", "not entirely mapped readable");
  pgc_test::ProbeOutcome ok = RunMisuse("roots-ok");  // readable across two mappings: accepted, no message
  INFO(ok.stderr_text);
  CHECK(ok.status == 0);
  CHECK(ok.stderr_text.find("pacegc: ") == std::string::npos);
  CHECK(ok.stderr_text.find("misuse probe ok 1 0") != std::string::npos);
}

TEST_CASE("a double free after the slot was handed out again: caught by the verify build's quarantine",
          "[api][misuse][free]") {
  pgc_test::ProbeOutcome o = RunMisuse("free-twice-after-reuse");
  INFO(o.stderr_text);
  if (kMisuseAborts) {
    // Quarantined until the next collection: never handed out again, so the second free is a free of a free slot.
    CHECK(o.stderr_text.find("slot not reused") != std::string::npos);
    CHECK(o.stderr_text.find("already freed; caught by the verify build's quarantine) (aborting") !=
          std::string::npos);
    CHECK(Aborted(o));
  } else {
    // What the header says a normal build cannot detect: the slot was reused, and the second pgc_free frees the
    // object that lives there now (no allocator can tell the stale pointer from the new one).
    CHECK(o.stderr_text.find("slot reused") != std::string::npos);
    CHECK(o.stderr_text.find("pacegc: ") == std::string::npos);
    CHECK(o.status == 0);
  }
}
