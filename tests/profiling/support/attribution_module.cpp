// The attribution host's plug-in: loaded with dlopen after the host's first heap profiles, it keeps every
// row it is handed, as a module that caches query results and never evicts them would. The leak report
// must name module_leak_step at this file's line, although the module was not loaded when the
// symbolizer first read the process's modules.
#include <malloc.h>

#include <atomic>
#include <cstddef>
#include <deque>
#include <string>

namespace {

constexpr std::size_t kRowBytes = 1000;
// std::deque<std::string> keeps 512-byte blocks of 16 strings.
constexpr std::size_t kStringsPerBlock = 512 / sizeof(std::string);

std::deque<std::string>& cached_rows() {
  static auto* rows = new std::deque<std::string>;  // never freed: the module's leak
  return *rows;
}

std::size_t carried_bytes = 0;  // handed over but less than a row yet
std::atomic<std::size_t> string_bytes{0};
std::atomic<std::size_t> row_count{0};
std::atomic<int> leak_line{0};

}  // namespace

extern "C" {

// Keeps `bytes` more of rows (whole rows; the remainder carries over to the next call). The string bodies
// and the deque's blocks are allocated on one line.
__attribute__((visibility("default"), noinline)) void module_leak_step(std::size_t bytes) {
  carried_bytes += bytes;
  auto& rows = cached_rows();
  for (; carried_bytes >= kRowBytes; carried_bytes -= kRowBytes) {
    rows.emplace_back(kRowBytes, 'm'), leak_line = __LINE__;
    string_bytes += malloc_usable_size(rows.back().data());
    ++row_count;
  }
}

// The line of module_leak_step that allocates; 0 before its first row.
__attribute__((visibility("default"))) int module_leak_line() {
  return leak_line.load();
}

// What the module really holds now: the rows' bodies and the deque's blocks and map.
__attribute__((visibility("default"))) std::size_t module_live_bytes() {
  const std::size_t rows = row_count.load();
  const std::size_t blocks = rows / kStringsPerBlock + 1;
  return string_bytes.load() + blocks * 512 + (blocks + 8) * sizeof(void*);
}

}  // extern "C"
