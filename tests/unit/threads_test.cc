// Unit tests for gc/threads: the registry's counting, automatic registration, and removal at thread exit.
// (Registration at thread start, blocking regions and the finalizer thread are tested as a program meets them, in
// tests/threads/.)
#include <catch2/catch.hpp>

#include <pacegc/pacegc.h>
#include <pthread.h>

#include <atomic>
#include <thread>

#include "gc/threads.h"

using namespace pacegc::internal;

namespace {
size_t RegisteredCount() {
  threads::LockRegistry();
  size_t n = threads::Count();
  threads::UnlockRegistry();
  return n;
}
}  // namespace

TEST_CASE("the main thread is registered at load time", "[threads]") {
  CHECK(t_current != nullptr);
  CHECK(t_current->stack_lo < t_current->stack_hi);
  int local = 0;
  auto addr = reinterpret_cast<uintptr_t>(&local);
  CHECK(addr >= t_current->stack_lo);
  CHECK(addr < t_current->stack_hi);
}

TEST_CASE("registration is counted and a thread is removed at zero", "[threads]") {
  size_t before = RegisteredCount();
  std::atomic<bool> ok{true};
  std::thread th([&] {
    // Registered from its start (pthread_create is interposed: gc/thread_start.h); drop that registration first.
    if (t_current == nullptr || RegisteredCount() != before + 1) ok = false;
    pgc_unregister_thread();
    if (t_current != nullptr || RegisteredCount() != before) ok = false;
    if (pgc_register_thread() != 0) ok = false;
    if (RegisteredCount() != before + 1) ok = false;
    if (pgc_register_thread() != 0) ok = false;  // nested: counted
    if (RegisteredCount() != before + 1) ok = false;
    pgc_unregister_thread();
    if (t_current == nullptr || RegisteredCount() != before + 1) ok = false;
    pgc_unregister_thread();
    if (t_current != nullptr || RegisteredCount() != before) ok = false;
  });
  th.join();
  CHECK(ok);
  CHECK(RegisteredCount() == before);
}

TEST_CASE("a thread is registered by its first allocation and removed when it exits", "[threads]") {
  size_t before = RegisteredCount();
  std::atomic<size_t> during{0};
  std::thread th([&] {
    pgc_unregister_thread();  // as a thread pacegc did not see being created
    void *p = pgc_malloc(64);
    during = (p != nullptr && t_current != nullptr) ? RegisteredCount() : 0;
  });
  th.join();
  CHECK(during == before + 1);
  CHECK(RegisteredCount() == before);  // the exit hook unregistered it
}

TEST_CASE("a thread that exits still registered (explicitly) is removed", "[threads]") {
  size_t before = RegisteredCount();
  std::thread th([] {
    pgc_register_thread();
    pgc_register_thread();  // two registrations, never undone
  });
  th.join();
  CHECK(RegisteredCount() == before);
  pgc_collect();  // the collector does not wait for it
  CHECK(RegisteredCount() == before);
}
