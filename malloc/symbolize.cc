// malloc/symbolize.cc — see symbolize.h.
#include "malloc/symbolize.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace pacegc::internal::drop_in {
namespace {

// The section of type `type`, or nullptr. Every offset is checked against the file's size: a module can be
// replaced on disk while the process runs, and a truncated or foreign file must give no names, not a crash.
const Elf64_Shdr *FindSection(const uint8_t *file, size_t size, uint32_t type) {
  const auto *eh = reinterpret_cast<const Elf64_Ehdr *>(file);
  if (eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > size ||
      eh->e_shnum > (size - eh->e_shoff) / sizeof(Elf64_Shdr)) {
    return nullptr;
  }
  const auto *sh = reinterpret_cast<const Elf64_Shdr *>(file + eh->e_shoff);
  for (uint16_t i = 0; i < eh->e_shnum; ++i) {
    if (sh[i].sh_type == type) return &sh[i];
  }
  return nullptr;
}

bool Within(const Elf64_Shdr *s, size_t size) { return s->sh_offset <= size && s->sh_size <= size - s->sh_offset; }

std::string Basename(const std::string &path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

Symbolizer::~Symbolizer() {
  for (Module *m : modules_) {
    if (m->map != nullptr) munmap(m->map, m->map_size);
    delete m;
  }
}

Symbolizer::Module *Symbolizer::Load(const char *loader_name) {
  const std::string path = loader_name == nullptr ? std::string() : std::string(loader_name);
  for (Module *m : modules_) {
    if (m->path == path) return m;
  }
  auto *m = new Module;
  m->path = path;
  std::string file = path.empty() ? std::string("/proc/self/exe") : path;
  if (path.empty()) {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    m->display = n > 0 ? Basename(std::string(buf, static_cast<size_t>(n))) : std::string("(program)");
  } else {
    m->display = Basename(path);
  }
  modules_.push_back(m);

  // Only files: the vDSO's name ("linux-vdso.so.1") has no slash and no file; a path that is now something else
  // (a FIFO) must not block the reporter (O_NONBLOCK, then S_ISREG).
  if (!path.empty() && path.find('/') == std::string::npos) return m;
  int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return m;
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= static_cast<off_t>(sizeof(Elf64_Ehdr))) {
    void *map = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (map != MAP_FAILED) {
      m->map = map;
      m->map_size = static_cast<size_t>(st.st_size);
    }
  }
  close(fd);
  if (m->map == nullptr) return m;

  const auto *file_bytes = static_cast<const uint8_t *>(m->map);
  const size_t size = m->map_size;
  const auto *eh = reinterpret_cast<const Elf64_Ehdr *>(file_bytes);
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64) return m;
  const Elf64_Shdr *symtab = FindSection(file_bytes, size, SHT_SYMTAB);
  if (symtab == nullptr) symtab = FindSection(file_bytes, size, SHT_DYNSYM);
  if (symtab == nullptr || !Within(symtab, size) || symtab->sh_entsize != sizeof(Elf64_Sym)) return m;
  const auto *sections = reinterpret_cast<const Elf64_Shdr *>(file_bytes + eh->e_shoff);
  if (symtab->sh_link >= eh->e_shnum) return m;
  const Elf64_Shdr *strtab = &sections[symtab->sh_link];
  if (!Within(strtab, size)) return m;
  m->strtab = reinterpret_cast<const char *>(file_bytes + strtab->sh_offset);
  m->strtab_size = strtab->sh_size;

  const auto *syms = reinterpret_cast<const Elf64_Sym *>(file_bytes + symtab->sh_offset);
  const size_t count = symtab->sh_size / sizeof(Elf64_Sym);
  for (size_t i = 0; i < count; ++i) {
    const Elf64_Sym &s = syms[i];
    const int type = ELF64_ST_TYPE(s.st_info);
    if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s.st_size == 0 || s.st_shndx == SHN_UNDEF ||
        s.st_name >= m->strtab_size) {
      continue;
    }
    m->symbols.push_back(Symbol{s.st_value, s.st_size, s.st_name});
  }
  std::sort(m->symbols.begin(), m->symbols.end(), [](const Symbol &a, const Symbol &b) { return a.lo < b.lo; });
  return m;
}

void Symbolizer::Describe(uintptr_t pc, std::string *out) {
  const uintptr_t call = pc - 1;  // the call instruction, not the one after it
  Dl_info info;
  link_map *lm = nullptr;
  if (dladdr1(reinterpret_cast<void *>(call), &info, reinterpret_cast<void **>(&lm), RTLD_DL_LINKMAP) == 0 ||
      lm == nullptr) {
    char buf[32];
    snprintf(buf, sizeof(buf), "0x%lx", static_cast<unsigned long>(pc));
    out->append(buf);
    return;
  }
  // The program is the link map with the empty name; vDSO and such have names but no file.
  Module *m = Load(lm->l_name != nullptr && lm->l_name[0] != '\0' ? lm->l_name : nullptr);
  const uint64_t offset = call - lm->l_addr;  // a link-time address: what the symbol table and addr2line use

  const char *name = nullptr;
  auto it = std::upper_bound(m->symbols.begin(), m->symbols.end(), offset,
                             [](uint64_t a, const Symbol &s) { return a < s.lo; });
  // The last symbol starting at or below the address, and the ones before it with the same start (aliases) or
  // that enclose it (a nested symbol is rare; the nearest one that contains the address wins).
  while (it != m->symbols.begin()) {
    --it;
    if (offset - it->lo < it->size) {
      name = m->strtab + it->name;
      break;
    }
    if (it->lo + 65536 < offset) break;  // no enclosing symbol this far back
  }
  if (name != nullptr && memchr(name, '\0', m->strtab_size - static_cast<size_t>(name - m->strtab)) == nullptr) {
    name = nullptr;
  }
  if (name != nullptr) {
    int status = 0;
    char *demangled = abi::__cxa_demangle(name, nullptr, nullptr, &status);
    out->append(status == 0 && demangled != nullptr ? demangled : name);
    free(demangled);
  } else {
    out->append("?");
  }
  char buf[64];
  snprintf(buf, sizeof(buf), "+0x%lx)", static_cast<unsigned long>(offset));
  out->append(" (");
  out->append(m->display);
  out->append(buf);
}

}  // namespace pacegc::internal::drop_in
