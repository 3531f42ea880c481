#pragma once
// Headless Chromium for the dashboard tests: Debian's chromium with the flags that keep it offline and
// quiet, a fresh profile per run, and the DOM after a virtual-time budget (timers run, fetches complete).

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace riptide::test {

/// The chromium binary from RIPTIDE_PERF_TEST_CHROMIUM (set by CMake when chromium is installed).
inline std::string chromium_path() {
  const char* path = std::getenv("RIPTIDE_PERF_TEST_CHROMIUM");
  return path != nullptr && std::filesystem::exists(path) ? path : "";
}

/// Runs chromium on `url` with `mode` ("--dump-dom" or "--screenshot=<file>") and returns its stdout.
inline std::string run_chromium(const std::string& url, const std::string& mode, int virtual_time_ms = 15000,
                                const std::string& window = "1400,2400") {
  const auto profile = std::filesystem::temp_directory_path() /
                       ("riptide-chromium-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()));
  std::filesystem::create_directories(profile);
  const std::string command = chromium_path() +
                              " --headless --no-sandbox --disable-gpu --disable-background-networking"
                              " --disable-component-update --disable-sync --no-first-run --disable-quic"
                              " --hide-scrollbars --user-data-dir=" +
                              profile.string() + " --window-size=" + window +
                              " --virtual-time-budget=" + std::to_string(virtual_time_ms) + " " + mode + " '" + url +
                              "' 2>/dev/null";
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    std::array<char, 65536> buffer;
    std::size_t n;
    while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) out.append(buffer.data(), n);
    ::pclose(pipe);
  }
  std::error_code ignored;
  std::filesystem::remove_all(profile, ignored);
  return out;
}

/// The value of attribute `name` on the element with id `id` in serialized DOM `dom` ("" when absent).
inline std::string attribute_of(const std::string& dom, const std::string& id, const std::string& name) {
  const auto at = dom.find("id=\"" + id + "\"");
  if (at == std::string::npos) return "";
  const auto tag_start = dom.rfind('<', at);
  const auto tag_end = dom.find('>', at);
  const std::string tag = dom.substr(tag_start, tag_end - tag_start);
  const auto attr = tag.find(" " + name + "=\"");
  if (attr == std::string::npos) return "";
  const auto value_start = attr + name.size() + 3;
  return tag.substr(value_start, tag.find('"', value_start) - value_start);
}

/// The serialized element with id `id` up to its closing `</tag>` (for tables: the whole table).
inline std::string element_of(const std::string& dom, const std::string& id, const std::string& tag) {
  const auto at = dom.find("id=\"" + id + "\"");
  if (at == std::string::npos) return "";
  const auto start = dom.rfind('<', at);
  const auto end = dom.find("</" + tag + ">", at);
  return dom.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

}  // namespace riptide::test
