// malloc/symbolize.h — names for code addresses, for the find-leak report (malloc/leak.h).
//
// A frame is printed as "function (module+0xOFFSET)": the function from the module's ELF symbol table (.symtab when
// the file has one, as unstripped programs and libraries do, so static functions are named; otherwise .dynsym, the
// exported names every shared library keeps, and the program's own with -rdynamic), demangled; the module and the
// offset are always there, so `addr2line -f -e MODULE 0xOFFSET` gives the file and line where the module has
// debug information. No name is guessed: an address inside no sized function symbol prints as "?" rather than as
// the nearest exported name, which is what dladdr would say and is often wrong for static functions.
//
// How: dladdr1 finds the module and its load bias; the module's file is mapped read-only (never written, so the
// collector's root scan, which covers writable mappings only, does not read it) and its function symbols are
// sorted once. Files are found by the loader's names (the program itself through /proc/self/exe), when the report
// is made: a library replaced on disk since it was loaded (a package upgrade) gives the new file's names, which can
// be wrong for the old code; a file truncated in place while mapped would fault (SIGBUS). Modules without a file
// (the vDSO) and paths that are not regular files get no names.
//
// Not thread-safe: one Symbolizer per reporting thread, or a lock around it (leak.cc holds its report lock).
// Allocates with malloc (the drop-in's own, guarded against sampling by the caller).
#ifndef PACEGC_MALLOC_SYMBOLIZE_H_
#define PACEGC_MALLOC_SYMBOLIZE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pacegc::internal::drop_in {

class Symbolizer {
 public:
  Symbolizer() = default;
  Symbolizer(const Symbolizer &) = delete;
  Symbolizer &operator=(const Symbolizer &) = delete;
  ~Symbolizer();

  // Appends the description of the return address `pc` (the call is at pc - 1) to *out.
  void Describe(uintptr_t pc, std::string *out);

 private:
  struct Symbol {
    uint64_t lo, size;    // link-time address and size
    uint32_t name;        // offset in the module's string table
  };
  struct Module {
    std::string path;     // what the loader calls it ("" for the program)
    std::string display;  // its file name
    const char *strtab = nullptr;
    size_t strtab_size = 0;
    void *map = nullptr;  // the file, read-only
    size_t map_size = 0;
    std::vector<Symbol> symbols;  // function symbols, by address
  };
  Module *Load(const char *loader_name);

  std::vector<Module *> modules_;
};

}  // namespace pacegc::internal::drop_in

#endif  // PACEGC_MALLOC_SYMBOLIZE_H_
