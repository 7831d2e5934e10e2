/* fork_probe — fork() before the library's first collection, while other threads allocate (issue 16, item 1).
 *
 * A program as any other: the library initialises at load time, then main() turns GOGC off (so no collection
 * runs in the parent and the fork handlers cannot have been installed by one), starts 3 threads that allocate and
 * free large objects (each call takes the heap lock), and forks 200 times. Every child allocates, collects and
 * exits 0 under an alarm: a child that inherited the heap lock (or the registry lock) held by a thread it does not
 * have would hang, and the alarm turns the hang into a failure instead of a stalled test (after 3 failures the
 * probe stops forking).
 *
 * Exit status 0 and "fork probe ok" on success; otherwise 1 with a line saying which child failed how. */
#include <pacegc/pacegc.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { kThreads = 3, kForks = 200, kChildAlarmSeconds = 10, kMaxFailures = 3 };

static atomic_int g_stop;
static atomic_long g_allocations;

static void *Allocator(void *arg) {
  (void)arg;
  pgc_register_thread();
  while (!atomic_load(&g_stop)) {
    /* Large objects (> 32 KiB) take the heap lock on every allocation and every free. */
    void *big = pgc_malloc(40 * 1024);
    void *small = pgc_malloc(48);
    if (big == NULL || small == NULL) {
      fprintf(stderr, "fork probe: parent allocation failed\n");
      _exit(1);
    }
    memset(big, 7, 64);
    pgc_free(big);
    pgc_free(small);
    atomic_fetch_add(&g_allocations, 1);
  }
  pgc_unregister_thread();
  return NULL;
}

static int Child(void) {
  alarm(kChildAlarmSeconds);
  for (int i = 0; i < 64; ++i) {
    void *p = pgc_malloc(i % 2 ? 40 * 1024 : 64);
    if (p == NULL) return 3;
    memset(p, 1, 64);
  }
  pgc_collect();
  return 0;
}

int main(void) {
  pgc_set_gc_percent(-1);
  pthread_t threads[kThreads];
  for (int i = 0; i < kThreads; ++i) pthread_create(&threads[i], NULL, Allocator, NULL);
  while (atomic_load(&g_allocations) < 100) sched_yield();

  int failures = 0;
  for (int i = 0; i < kForks && failures < kMaxFailures; ++i) {
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork probe: fork");
      return 1;
    }
    if (pid == 0) _exit(Child());
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) {
      perror("fork probe: waitpid");
      return 1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ++failures;
      if (WIFSIGNALED(status)) {
        fprintf(stderr, "fork probe: child %d killed by signal %d%s\n", i, WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (it hung: alarm)" : "");
      } else {
        fprintf(stderr, "fork probe: child %d exited with status %d\n", i, WEXITSTATUS(status));
      }
    }
  }
  atomic_store(&g_stop, 1);
  for (int i = 0; i < kThreads; ++i) pthread_join(threads[i], NULL);
  pgc_stats s;
  memset(&s, 0, sizeof(s));
  s.size = sizeof(s);
  pgc_read_stats(&s);
  fprintf(stderr, "fork probe: %d of %d children failed; parent collections %llu\n", failures, kForks,
          (unsigned long long)s.num_gc);
  if (failures != 0) return 1;
  if (s.num_gc != 0) {
    fprintf(stderr, "fork probe: the parent collected, so the forks did not all happen before its first collection\n");
    return 1;
  }
  fprintf(stderr, "fork probe ok\n");
  return 0;
}
