// tests/threads/thread_test.cc — issue 14 as a program meets it: runs thread_probe and finalizer_probe
// (tests/threads/*_probe.c), each linked against the shipped shared and static libraries, in child processes, one
// mode per run. A probe that deadlocks is stopped by timeout(1) and fails (status 124) instead of hanging the suite.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "common/run_probe.h"

namespace {

// Under a sanitizer only the static probe runs. With the shared library, the sanitizer runtime (ahead of
// libpacegc.so in the lookup order) intercepts pthread_create and calls pacegc's as its "real" one, so pacegc's
// trampoline runs in the new thread before the sanitizer has set that thread up, and crashes (TSan: SEGV in its
// runtime). A sanitized library is never installed (tests/consumer/register.cmake); gc/thread_start.h documents it.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
const char *const kKinds[] = {"static"};
#else
const char *const kKinds[] = {"shared", "static"};
#endif

void RunMode(const char *probe, const char *mode, const std::string &env = "") {
  for (const char *kind : kKinds) {
    std::string cmd = std::string("timeout 120 " PACEGC_PROBE_DIR "/") + probe + "_probe_" + kind + " " + mode;
    pgc_test::ProbeOutcome out = pgc_test::RunProbeWithEnv(env, cmd.c_str());
    INFO(probe << "_probe_" << kind << " " << mode << " (" << env << "), status " << out.status << ":\n"
               << out.stderr_text);
    CHECK(out.status == 0);
    CHECK(out.stderr_text.find(std::string("ok: ") + mode) != std::string::npos);
    CHECK(out.stderr_text.find("FAIL") == std::string::npos);
  }
}

}  // namespace

TEST_CASE("a plain pthread thread that never calls pacegc keeps what its stack holds", "[threads][issue14]") {
  RunMode("thread", "scan");
}

TEST_CASE("threads are registered at start and unregistered on return, pthread_exit and cancellation",
          "[threads][issue14]") {
  RunMode("thread", "exit");
}

TEST_CASE("poll and epoll_wait inside pgc_do_blocking see no EINTR across collections", "[threads][blocking]") {
  RunMode("thread", "blocking");
}

TEST_CASE("read() outside a blocking region is restarted after the suspend signal", "[threads][blocking]") {
  RunMode("thread", "restart");
}

TEST_CASE("finalizers run on their own thread: an allocating thread holding their lock does not deadlock",
          "[finalizer][issue14]") {
#if defined(__SANITIZE_THREAD__)
  // GCC 12's TSan defers the suspend signal while a thread waits in pthread_mutex_lock on the program's mutex
  // (README, "Limits you must know"): the finalizer thread waiting for the lock the collecting thread holds never
  // acknowledges, so the collection waits forever. That is the TSan limitation, not this defect; the release,
  // ASan and UBSan builds run the case.
  WARN("skipped under ThreadSanitizer: a finalizer blocked in pthread_mutex_lock acknowledges no stop there");
  return;
#endif
  RunMode("finalizer", "deadlock");
  RunMode("finalizer", "deadlock", "PACEGC_FINALIZERS=thread");
}

TEST_CASE("pgc_collect returns after the finalizers it found have run", "[finalizer][issue14]") {
  RunMode("finalizer", "promise");
}

TEST_CASE("PACEGC_FINALIZERS=on-demand runs finalizers only in pgc_run_finalizers", "[finalizer][issue14]") {
  RunMode("finalizer", "on-demand", "PACEGC_FINALIZERS=on-demand");
}

TEST_CASE("a malformed PACEGC_FINALIZERS exits with status 2 and one line naming it", "[finalizer][settings]") {
  for (const char *kind : kKinds) {
    std::string probe = std::string(PACEGC_PROBE_DIR "/finalizer_probe_") + kind + " promise";
    pgc_test::ProbeOutcome out = pgc_test::RunProbeWithEnv("PACEGC_FINALIZERS=later", probe.c_str());
    INFO(kind << ": " << out.stderr_text);
    CHECK(out.status == 2);
    CHECK(out.stderr_text.find("PACEGC_FINALIZERS") != std::string::npos);
    CHECK(out.stderr_text.find("later") != std::string::npos);
    CHECK(std::count(out.stderr_text.begin(), out.stderr_text.end(), '\n') == 1);
  }
}
