// tests/unit/no_userfaultfd.c — runs a program with userfaultfd(2) refused, to test the dirty-page tracker's
// fallback as a program meets it: a seccomp filter (the usual reason in containers) makes the system call fail
// with ENOSYS, then argv[1] is executed with argv[1..]. dirty_unavailable (tests/unit/CMakeLists.txt) runs
// unit_tests "[dirty]" this way and expects detection to say UNAVAILABLE with the reason, and every test to skip.
// Exits 77 (ctest: skipped) where seccomp filters cannot be installed.
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: no_userfaultfd PROGRAM [ARGS...]\n");
    return 2;
  }
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_userfaultfd, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    perror("no_userfaultfd: cannot install the seccomp filter (skipped)");
    return 77;
  }
  execv(argv[1], argv + 1);
  perror("no_userfaultfd: execv");
  return 1;
}
