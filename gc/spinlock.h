// gc/spinlock.h — a small lock for critical sections of a few dozen instructions (the partial lists of heap.h).
//
// Test-and-test-and-set with a CPU pause, then sched_yield once the holder has been seen for a while: a holder that
// was descheduled (more threads than cores) gets the CPU back instead of the waiters burning their time slices. No
// futex, no syscall on the uncontended path, nothing a signal handler could not interrupt safely. It is taken inside
// allocation critical sections (threads.h), where a thread must not wait for anything the collector holds: the
// holders of this lock never wait for the heap lock or the registry lock while they hold it.
#ifndef PACEGC_GC_SPINLOCK_H_
#define PACEGC_GC_SPINLOCK_H_

#include <sched.h>

#include <atomic>
#include <cstdint>

namespace pacegc::internal {

// The spin-wait hint: lets the other hardware thread of the core run, and saves power, while a loop polls.
inline void CpuRelax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

class SpinLock {
 public:
  constexpr SpinLock() = default;
  void Lock() {
    if (__builtin_expect(!held_.exchange(true, std::memory_order_acquire), 1)) return;
    LockSlow();
  }
  void Unlock() { held_.store(false, std::memory_order_release); }

 private:
  void LockSlow() {
    for (uint32_t spins = 0;; ++spins) {
      while (held_.load(std::memory_order_relaxed)) {
        if (++spins < 64) {
          CpuRelax();
        } else {
          sched_yield();
        }
      }
      if (!held_.exchange(true, std::memory_order_acquire)) return;
    }
  }

  std::atomic<bool> held_{false};
};

}  // namespace pacegc::internal

#endif  // PACEGC_GC_SPINLOCK_H_
