// Unit tests for pacer/config: GOGC and GOMEMLIMIT in Go's syntax; every rejected form gets a message naming the
// variable and the value.
#include <catch2/catch.hpp>

#include <climits>
#include <string>

#include "pacer/config.h"

using namespace pacegc::pacer;

TEST_CASE("GOGC accepted forms", "[config]") {
  struct Case {
    const char *in;
    int want;
  };
  for (Case c : {Case{"100", 100}, Case{"0", 0}, Case{"50", 50}, Case{"off", -1}, Case{"-1", -1},
                 Case{"-200", -1}, Case{"+75", 75}, Case{"2147483647", 2147483647}, Case{"007", 7},
                 Case{"-0", 0}, Case{"+0", 0}, Case{"-00", 0}}) {  // "-0" is 0 as in Go, not off
    int v = 12345;
    std::string err;
    INFO(c.in);
    CHECK(ParseGogc(c.in, &v, &err));
    CHECK(v == c.want);
    CHECK(err.empty());
  }
}

TEST_CASE("GOGC rejected forms", "[config]") {
  for (const char *in : {"", "abc", "100%", "1e3", "10.5", " 100", "100 ", "OFF", "Off", "2147483648", "+",
                         "-", "99999999999999999999", "0x10"}) {
    int v = 12345;
    std::string err;
    INFO(in);
    CHECK_FALSE(ParseGogc(in, &v, &err));
    CHECK(v == 12345);  // untouched
    CHECK(err.find("GOGC") != std::string::npos);
    CHECK(err.find(std::string("\"") + in + "\"") != std::string::npos);
    CHECK(err.find("off") != std::string::npos);  // names the accepted forms
  }
}

TEST_CASE("GOMEMLIMIT accepted forms", "[config]") {
  struct Case {
    const char *in;
    int64_t want;
  };
  for (Case c : {Case{"off", INT64_MAX}, Case{"", INT64_MAX}, Case{"0", 0}, Case{"1234", 1234}, Case{"1234B", 1234},
                 Case{"1KiB", 1024}, Case{"460MiB", int64_t{460} << 20}, Case{"2GiB", int64_t{2} << 30},
                 Case{"1TiB", int64_t{1} << 40}, Case{"9223372036854775807", INT64_MAX},
                 Case{"9223372036854775807B", INT64_MAX}, Case{"8388607TiB", int64_t{8388607} << 40}}) {
    int64_t v = 7;
    std::string err;
    INFO(c.in);
    CHECK(ParseGomemlimit(c.in, &v, &err));
    CHECK(v == c.want);
  }
}

TEST_CASE("GOMEMLIMIT rejected forms (the ones users trip on)", "[config]") {
  for (const char *in : {"1G", "1GB", "1024Mi", "1M", "1K", "1KB", "1MB", "1gib", "1mib", "1.5GiB", "-1", "-1GiB",
                         " 1GiB", "1GiB ", "1 GiB", "GiB", "B", "9223372036854775808", "8388608TiB",
                         "99999999999999999999MiB", "0x10", "1iB", "1Ki"}) {
    int64_t v = 7;
    std::string err;
    INFO(in);
    CHECK_FALSE(ParseGomemlimit(in, &v, &err));
    CHECK(v == 7);
    CHECK(err.find("GOMEMLIMIT") != std::string::npos);
    CHECK(err.find(std::string("\"") + in + "\"") != std::string::npos);
    CHECK(err.find("MiB") != std::string::npos);
  }
}

TEST_CASE("PACEGC_AUTOMEMLIMIT: off or a fraction in (0, 1]", "[config]") {
  struct Case {
    const char *in;
    double want;
  };
  for (Case c : {Case{"off", 0.0}, Case{"0.9", 0.9}, Case{"1", 1.0}, Case{"1.0", 1.0}, Case{".5", 0.5},
                 Case{"0.05", 0.05}, Case{"0.999", 0.999}}) {
    double v = 7;
    std::string err;
    INFO(c.in);
    CHECK(ParseAutomemlimit(c.in, &v, &err));
    CHECK(v == Approx(c.want));
  }
  for (const char *in : {"", "0", "0.0", "1.01", "2", "-0.5", "+0.5", "on", "90%", "0.9 ", " 0.9", "1e-1", ".", "0..5",
                         "0.9x"}) {
    double v = 7;
    std::string err;
    INFO(in);
    CHECK_FALSE(ParseAutomemlimit(in, &v, &err));
    CHECK(v == 7);
    CHECK(err.find(std::string("malformed PACEGC_AUTOMEMLIMIT=\"") + in + "\"") == 0);
  }
}

TEST_CASE("the limit derived from the cgroup: ratio x limit, none without either", "[config]") {
  CHECK(AutoMemoryLimit(512 << 20, 0.9) == 483183820);
  CHECK(AutoMemoryLimit(512 << 20, 0.5) == 256 << 20);
  CHECK(AutoMemoryLimit(512 << 20, 1.0) == 512 << 20);
  CHECK(AutoMemoryLimit(512 << 20, 0.0) == INT64_MAX);  // off
  CHECK(AutoMemoryLimit(0, 0.9) == INT64_MAX);          // no cgroup limit
  CHECK(AutoMemoryLimit(1, 0.5) == 1);                  // never 0: a limit of 0 bytes would collect constantly
}

TEST_CASE("GODEBUG: the trace keys, other keys ignored, the last setting wins", "[config]") {
  struct Case {
    const char *in;
    int gctrace, gcpacertrace, scavtrace;
  };
  for (Case c : {Case{"", 0, 0, 0}, Case{"gctrace=1", 1, 0, 0}, Case{"gcpacertrace=1", 0, 1, 0},
                 Case{"scavtrace=1", 0, 0, 1}, Case{"gctrace=1,gcpacertrace=1,scavtrace=1", 1, 1, 1},
                 Case{"gctrace=2", 2, 0, 0}, Case{"gctrace=0", 0, 0, 0}, Case{"gctrace=007", 7, 0, 0},
                 Case{"gctrace=1,gctrace=0", 0, 0, 0}, Case{"gctrace=0,gctrace=1", 1, 0, 0},
                 Case{"madvdontneed=1,gctrace=1,http2debug=2", 1, 0, 0},  // Go's keys pass through
                 Case{"asyncpreemptoff=yes,scavtrace=1", 0, 0, 1},         // an unknown key's value is Go's business
                 Case{"gctrace,scavtrace=1", 0, 0, 1},                      // no '=': skipped, as Go does
                 Case{",,gctrace=1,", 1, 0, 0}, Case{"GCTRACE=1", 0, 0, 0},  // keys are case-sensitive, as in Go
                 Case{"gctrace=2147483647", 2147483647, 0, 0}}) {
    GodebugSettings s;
    std::string err;
    INFO(c.in);
    CHECK(ParseGodebug(c.in, &s, &err));
    CHECK(err.empty());
    CHECK(s.gctrace == c.gctrace);
    CHECK(s.gcpacertrace == c.gcpacertrace);
    CHECK(s.scavtrace == c.scavtrace);
  }
}

TEST_CASE("GODEBUG: a known key with a malformed value is refused, naming key and value", "[config]") {
  struct Case {
    const char *in;
    const char *key;
    const char *value;
  };
  for (Case c : {Case{"gctrace=yes", "gctrace", "yes"}, Case{"gctrace=", "gctrace", ""},
                 Case{"gctrace=-1", "gctrace", "-1"}, Case{"gctrace=+1", "gctrace", "+1"},
                 Case{"gctrace= 1", "gctrace", " 1"}, Case{"gctrace=1.0", "gctrace", "1.0"},
                 Case{"gctrace=on", "gctrace", "on"}, Case{"gctrace=2147483648", "gctrace", "2147483648"},
                 Case{"scavtrace=1,gcpacertrace=true", "gcpacertrace", "true"},
                 Case{"gctrace=1,scavtrace=0x1", "scavtrace", "0x1"}, Case{"gctrace==1", "gctrace", "=1"}}) {
    GodebugSettings s;
    s.gctrace = 5;  // untouched on failure, even by the well-formed keys before the bad one
    std::string err;
    INFO(c.in);
    CHECK_FALSE(ParseGodebug(c.in, &s, &err));
    CHECK(s.gctrace == 5);
    CHECK(s.gcpacertrace == 0);
    CHECK(s.scavtrace == 0);
    CHECK(err.find("GODEBUG") != std::string::npos);
    CHECK(err.find(std::string(c.key) + "=\"" + c.value + "\"") != std::string::npos);
    CHECK(err.find(std::string(c.key) + "=1") != std::string::npos);  // the accepted form
  }
}

TEST_CASE("malformed values are quoted with escapes: a newline in a value cannot break the one-line message",
          "[config]") {
  CHECK(QuoteSetting("100") == "\"100\"");
  CHECK(QuoteSetting("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(QuoteSetting(std::string("1\n2\r\t\x1b[31m\x7f\xff", 12)) == "\"1\\n2\\r\\t\\x1b[31m\\x7f\\xff\"");
  CHECK(QuoteSetting(std::string("\0", 1)) == "\"\\x00\"");
  int percent = 0;
  int64_t bytes = 0;
  GodebugSettings settings;
  std::string gogc, gomemlimit, godebug;
  CHECK_FALSE(ParseGogc("1\nfake line", &percent, &gogc));
  CHECK_FALSE(ParseGomemlimit("1\nGiB", &bytes, &gomemlimit));
  CHECK_FALSE(ParseGodebug("gctrace=1\n", &settings, &godebug));
  for (const std::string &e : {gogc, gomemlimit, godebug}) {
    INFO(e);
    CHECK(e.find('\n') == std::string::npos);
    CHECK(e.find("\\n") != std::string::npos);
  }
  CHECK(gogc.find("malformed GOGC=\"1\\nfake line\"") == 0);
}
