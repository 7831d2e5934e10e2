// tests/oomsim/oomsim_test_util.h — helpers of the OOM simulator tests: running the real binary, reading files,
// and finding leftover cgroups.
#ifndef PACEGC_TESTS_OOMSIM_OOMSIM_TEST_UTIL_H_
#define PACEGC_TESTS_OOMSIM_OOMSIM_TEST_UTIL_H_

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace oomsim_test {

struct Outcome {
  int status = -1;       // exit status, or -1 when a signal ended it
  std::string out, err;  // stdout and stderr
};

// Runs `command` through the shell with stdout and stderr captured into temporary files.
inline Outcome RunShell(const std::string &command) {
  char out_path[] = "/tmp/oomsim-test-out.XXXXXX";
  char err_path[] = "/tmp/oomsim-test-err.XXXXXX";
  int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
  close(out_fd);
  close(err_fd);
  std::string full = command + " >" + out_path + " 2>" + err_path;
  int rc = system(full.c_str());
  Outcome o;
  o.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  std::ifstream out(out_path), err(err_path);
  std::stringstream a, b;
  a << out.rdbuf();
  b << err.rdbuf();
  o.out = a.str();
  o.err = b.str();
  unlink(out_path);
  unlink(err_path);
  return o;
}

inline Outcome RunOomsim(const std::string &args) {
  return RunShell(std::string("env -u GOGC -u GOMEMLIMIT ") + PACEGC_OOMSIM_EXE + " " + args);
}

inline size_t CountLines(const std::string &text) {
  size_t n = 0;
  for (char c : text) n += c == '\n' ? 1 : 0;
  if (!text.empty() && text.back() != '\n') ++n;
  return n;
}

inline std::string ReadFile(const std::string &path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Entries of dir whose name starts with prefix.
inline std::vector<std::string> EntriesWithPrefix(const std::string &dir, const std::string &prefix) {
  std::vector<std::string> out;
  DIR *d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (struct dirent *e = readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind(prefix, 0) == 0) out.push_back(name);
  }
  closedir(d);
  return out;
}

}  // namespace oomsim_test

#endif  // PACEGC_TESTS_OOMSIM_OOMSIM_TEST_UTIL_H_
