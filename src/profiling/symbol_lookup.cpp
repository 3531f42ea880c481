#include "riptide/performance/profiling/symbol_lookup.hpp"

#include <elf.h>
#include <link.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <system_error>

#include "riptide/performance/profiling/symbolizer.hpp"

namespace riptide::performance {
namespace {

constexpr std::string_view kAccepted =
    "hex addresses with a 0x prefix (1 to 16 hex digits) separated by '+', e.g. 0x4005d0+0x4006a0";

// Requests come from the network: echo only a short prefix so the error stays small whatever was sent.
std::string echo(std::string_view text) {
  constexpr std::size_t kMaxEcho = 40;
  std::string out(text.substr(0, kMaxEcho));
  if (text.size() > kMaxEcho) out += "...";
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string hex(std::uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  char buffer[16];
  std::size_t n = 0;
  do {
    buffer[sizeof buffer - 1 - n++] = kDigits[value & 0xf];
    value >>= 4;
  } while (value != 0);
  return "0x" + std::string(buffer + sizeof buffer - n, n);
}

SymbolRequest refused(SymbolRequestProblem problem, std::string message) {
  SymbolRequest request;
  request.problem = problem;
  request.message = std::move(message);
  return request;
}

// Notes are 4-byte aligned in 64-bit objects too, except in segments that declare 8-byte alignment.
std::string build_id_in_notes(const unsigned char* notes, std::size_t size, std::size_t align) {
  std::size_t offset = 0;
  const auto aligned = [align](std::size_t n) { return (n + align - 1) / align * align; };
  while (offset + sizeof(ElfW(Nhdr)) <= size) {
    ElfW(Nhdr) header;
    std::memcpy(&header, notes + offset, sizeof header);
    const std::size_t name_offset = offset + sizeof header;
    const std::size_t desc_offset = name_offset + aligned(header.n_namesz);
    const std::size_t next = desc_offset + aligned(header.n_descsz);
    if (desc_offset > size || header.n_descsz > size - desc_offset) break;
    if (header.n_type == NT_GNU_BUILD_ID && header.n_namesz == 4 && std::memcmp(notes + name_offset, "GNU", 4) == 0) {
      static constexpr char kDigits[] = "0123456789abcdef";
      std::string id;
      for (std::size_t i = 0; i < header.n_descsz; ++i) {
        const unsigned char byte = notes[desc_offset + i];
        id += kDigits[byte >> 4];
        id += kDigits[byte & 0xf];
      }
      return id;
    }
    if (next <= offset) break;
    offset = next;
  }
  return {};
}

int collect_object(struct dl_phdr_info* info, std::size_t /*size*/, void* data) {
  auto& objects = *static_cast<std::vector<LoadedObject>*>(data);
  LoadedObject object;
  object.path = info->dlpi_name != nullptr ? info->dlpi_name : "";
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
    const auto& phdr = info->dlpi_phdr[i];
    const std::uint64_t start = info->dlpi_addr + phdr.p_vaddr;
    if (phdr.p_type == PT_LOAD) {
      object.segments.emplace_back(start, start + phdr.p_memsz);
    } else if (phdr.p_type == PT_NOTE && object.build_id.empty()) {
      // PT_NOTE lies inside a PT_LOAD segment, so it is mapped and readable in this process.
      object.build_id =
          build_id_in_notes(reinterpret_cast<const unsigned char*>(start), phdr.p_memsz, phdr.p_align == 8 ? 8 : 4);
    }
  }
  objects.push_back(std::move(object));
  return 0;
}

}  // namespace

SymbolRequest parse_symbol_request(std::string_view text, const SymbolRequestLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return refused(SymbolRequestProblem::too_large,
                   "symbol request of " + std::to_string(text.size()) + " bytes is larger than the limit of " +
                       std::to_string(limits.max_bytes) + " bytes; accepted: at most " +
                       std::to_string(limits.max_addresses) + " " + std::string(kAccepted));
  }
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  SymbolRequest request;
  if (text.empty()) return request;
  std::size_t position = 0;
  while (true) {
    const std::size_t end = text.find('+');
    const std::string_view word = text.substr(0, end);
    ++position;
    if (position > limits.max_addresses) {
      return refused(SymbolRequestProblem::too_large,
                     "symbol request has more than " + std::to_string(limits.max_addresses) +
                         " addresses; accepted: at most " + std::to_string(limits.max_addresses) + " per request");
    }
    const bool prefixed = word.size() > 2 && word[0] == '0' && (word[1] == 'x' || word[1] == 'X');
    std::uint64_t value = 0;
    bool valid = prefixed && word.size() <= 2 + 16;
    for (std::size_t i = 2; valid && i < word.size(); ++i) {
      const int digit = hex_digit(word[i]);
      valid = digit >= 0;
      value = value << 4 | static_cast<std::uint64_t>(digit < 0 ? 0 : digit);
    }
    if (!valid) {
      return refused(SymbolRequestProblem::malformed,
                     "symbol request: address " + std::to_string(position) + " ('" + echo(word) +
                         "') is not a hex address; accepted: " + std::string(kAccepted));
    }
    request.addresses.push_back(value);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return request;
}

std::string answer_symbol_request(const std::vector<std::uint64_t>& addresses, Symbolizer& symbolizer) {
  std::string answer = "num_symbols: 1\n";
  for (const std::uint64_t address : addresses) {
    // The symbolizer takes return addresses and looks up the byte before; pprof sends the instruction.
    if (address == 0 || address == UINT64_MAX) continue;
    const auto frame = symbolizer.resolve(address + 1);
    if (!frame->has_symbol || frame->function.empty()) continue;
    answer += hex(address);
    answer += ' ';
    for (const char c : frame->function) answer += c == '\n' || c == '\r' ? ' ' : c;  // one line per address
    answer += '\n';
  }
  symbolizer.trim();
  return answer;
}

std::vector<LoadedObject> loaded_objects() {
  std::vector<LoadedObject> objects;
  dl_iterate_phdr(collect_object, &objects);
  for (std::size_t i = 0; i < objects.size(); ++i) {
    auto& object = objects[i];
    if (i == 0 && object.path.empty()) {
      // The loader lists the executable first, without a name.
      std::error_code error;
      object.path = std::filesystem::read_symlink("/proc/self/exe", error).string();
    }
    struct stat status {};
    if (!object.path.empty() && ::stat(object.path.c_str(), &status) == 0) {
      object.device = status.st_dev;
      object.inode = status.st_ino;
    }
  }
  return objects;
}

std::string build_id_of_mapping(const std::vector<LoadedObject>& objects, std::uint64_t start, std::uint64_t limit,
                                const std::string& path) {
  struct stat status {};
  if (path.empty() || ::stat(path.c_str(), &status) != 0) return {};
  for (const auto& object : objects) {
    if (object.build_id.empty() || object.inode == 0 || object.device != status.st_dev ||
        object.inode != status.st_ino) {
      continue;
    }
    for (const auto& [segment_start, segment_limit] : object.segments) {
      if (segment_start < limit && start < segment_limit) return object.build_id;
    }
  }
  return {};
}

}  // namespace riptide::performance
