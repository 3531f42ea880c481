// Config::load: which file, then the environment, then validation of the result; and changed_keys().
#include "riptide/performance/core/config.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "config_schema.hpp"

namespace riptide::performance {
namespace {

constexpr std::string_view kDefaultFile = "performance.toml";

std::string read_file(const std::filesystem::path& path, const std::string& named_by) {
  const std::string accepted = "the path of a readable TOML file";
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw detail::make_error(named_by, "(file)", path.string(), "is a directory", accepted);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw detail::make_error(named_by, "(file)", path.string(), std::string("cannot be read: ") + std::strerror(errno),
                             accepted);
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    throw detail::make_error(named_by, "(file)", path.string(), "reading failed", accepted);
  }
  return text.str();
}

}  // namespace

Config Config::load(const std::optional<std::filesystem::path>& path) {
  Config config;
  detail::Origins origins;
  const auto environment = detail::process_environment();

  std::optional<std::filesystem::path> file;
  std::string named_by;
  if (path) {
    file = *path;
    named_by = "Config::load";
  } else if (const auto it = environment.find(std::string(detail::kConfigVariable)); it != environment.end()) {
    if (it->second.empty()) {
      throw detail::make_error(it->first, "(file)", "", "is empty",
                               "the path of a readable TOML file, or leave RIPTIDE_PERF_CONFIG unset to use "
                               "./performance.toml when present");
    }
    file = it->second;
    named_by = it->first;
  } else if (std::error_code ec; std::filesystem::exists(kDefaultFile, ec)) {
    file = std::filesystem::path(kDefaultFile);
    named_by = "./performance.toml";
  }
  if (file) {
    detail::apply_toml(config, read_file(*file, named_by), file->string(), &origins);
  }
  detail::apply_environment(config, environment, &origins);
  detail::validate(config, origins, "defaults");
  return config;
}

std::vector<std::string> Config::changed_keys(const Config& other) const {
  std::vector<std::string> changed;
  for (const detail::Field& field : detail::fields()) {
    if (!field.is_alias() && detail::read(*this, field) != detail::read(other, field)) {
      changed.push_back(field.dotted());
    }
  }
  return changed;
}

}  // namespace riptide::performance
