#include "riptide/performance/agent/executable_inspection.hpp"

#include <elf.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>
#include <vector>

#include "riptide/performance/core/error.hpp"

namespace riptide::performance {
namespace {

class ElfImage {
 public:
  ElfImage(const std::filesystem::path& path, std::vector<char> bytes) : path_(path), bytes_(std::move(bytes)) {}

  // A T at `offset`, or an Error naming the file when it would read past the end.
  template <typename T>
  T read(std::uint64_t offset) const {
    if (offset > bytes_.size() || bytes_.size() - offset < sizeof(T)) {
      throw Error(path_.string() + " is a truncated or corrupt ELF file (a header at byte " + std::to_string(offset) +
                  " lies past its end, " + std::to_string(bytes_.size()) + " bytes)");
    }
    T value;
    std::memcpy(&value, bytes_.data() + offset, sizeof(T));
    return value;
  }
  [[nodiscard]] std::string_view string_at(std::uint64_t table, std::uint64_t table_size, std::uint64_t index) const {
    if (index >= table_size || table > bytes_.size() || bytes_.size() - table < table_size) return {};
    const char* start = bytes_.data() + table + index;
    return {start, strnlen(start, table_size - index)};
  }
  [[nodiscard]] std::size_t size() const { return bytes_.size(); }

 private:
  std::filesystem::path path_;
  std::vector<char> bytes_;
};

bool defines_malloc(const ElfImage& image, const Elf64_Ehdr& header) {
  for (std::uint16_t i = 0; i < header.e_shnum; ++i) {
    const auto section = image.read<Elf64_Shdr>(header.e_shoff + std::uint64_t{i} * header.e_shentsize);
    if (section.sh_type != SHT_DYNSYM || section.sh_entsize < sizeof(Elf64_Sym)) continue;
    if (section.sh_link >= header.e_shnum) continue;
    const auto strings = image.read<Elf64_Shdr>(header.e_shoff + std::uint64_t{section.sh_link} * header.e_shentsize);
    for (std::uint64_t offset = 0; offset + section.sh_entsize <= section.sh_size; offset += section.sh_entsize) {
      const auto symbol = image.read<Elf64_Sym>(section.sh_offset + offset);
      if (symbol.st_shndx == SHN_UNDEF || ELF64_ST_TYPE(symbol.st_info) != STT_FUNC) continue;
      if (image.string_at(strings.sh_offset, strings.sh_size, symbol.st_name) == "malloc") return true;
    }
  }
  return false;
}

}  // namespace

ExecutableFacts inspect_executable(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw Error("cannot read " + path.string() + ": " + std::strerror(errno));
  std::vector<char> bytes{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
  const ElfImage image(path, std::move(bytes));
  ExecutableFacts facts;
  if (image.size() < EI_NIDENT) {
    facts.linkage = ExecutableLinkage::not_elf;
    return facts;
  }
  const auto identity = image.read<std::array<unsigned char, EI_NIDENT>>(0);
  if (std::memcmp(identity.data(), ELFMAG, SELFMAG) != 0) {
    facts.linkage = ExecutableLinkage::not_elf;
    return facts;
  }
  if (identity[EI_CLASS] != ELFCLASS64 || identity[EI_DATA] != ELFDATA2LSB) return facts;
  const auto header = image.read<Elf64_Ehdr>(0);
  if (header.e_phentsize < sizeof(Elf64_Phdr) || (header.e_shnum > 0 && header.e_shentsize < sizeof(Elf64_Shdr))) {
    throw Error(path.string() + " has inconsistent ELF headers (entry sizes)");
  }
  bool interpreter = false;
  for (std::uint16_t i = 0; i < header.e_phnum; ++i) {
    const auto segment = image.read<Elf64_Phdr>(header.e_phoff + std::uint64_t{i} * header.e_phentsize);
    interpreter = interpreter || segment.p_type == PT_INTERP;
  }
  facts.linkage = interpreter ? ExecutableLinkage::dynamic : ExecutableLinkage::static_binary;
  facts.defines_malloc = interpreter && defines_malloc(image, header);
  return facts;
}

std::filesystem::path find_program(const std::string& program, const std::string& search_path) {
  if (program.empty()) return {};
  if (program.find('/') != std::string::npos) {
    return ::access(program.c_str(), X_OK) == 0 ? std::filesystem::path{program} : std::filesystem::path{};
  }
  std::stringstream directories(search_path);
  std::string directory;
  while (std::getline(directories, directory, ':')) {
    const std::filesystem::path candidate = std::filesystem::path{directory.empty() ? "." : directory} / program;
    std::error_code error;
    if (std::filesystem::is_regular_file(candidate, error) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return {};
}

}  // namespace riptide::performance
