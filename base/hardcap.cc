// base/hardcap.cc — see hardcap.h.
#include "base/hardcap.h"

#include <atomic>

namespace pacegc::internal::hardcap {
namespace {

std::atomic<int64_t> g_limit{kNone};
std::atomic<uint64_t> g_counted{0};
thread_local uint64_t t_refusals = 0;

}  // namespace

int64_t Limit() { return g_limit.load(std::memory_order_relaxed); }

int64_t SetLimit(int64_t bytes) {
  if (bytes < 0) return Limit();
  return g_limit.exchange(bytes, std::memory_order_relaxed);
}

bool TryCharge(uint64_t n) {
  const int64_t limit = g_limit.load(std::memory_order_relaxed);
  if (limit == kNone) {
    g_counted.fetch_add(n, std::memory_order_relaxed);
    return true;
  }
  uint64_t counted = g_counted.load(std::memory_order_relaxed);
  do {
    if (n > static_cast<uint64_t>(limit) || counted > static_cast<uint64_t>(limit) - n) {
      ++t_refusals;
      return false;
    }
  } while (!g_counted.compare_exchange_weak(counted, counted + n, std::memory_order_relaxed));
  return true;
}

void ForceCharge(uint64_t n) { g_counted.fetch_add(n, std::memory_order_relaxed); }

void Uncharge(uint64_t n) { g_counted.fetch_sub(n, std::memory_order_relaxed); }

uint64_t Counted() { return g_counted.load(std::memory_order_relaxed); }

uint64_t ThreadRefusals() { return t_refusals; }

}  // namespace pacegc::internal::hardcap
