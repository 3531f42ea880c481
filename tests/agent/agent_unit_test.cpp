// The agent's decisions without running a program: riptide-run's command line and the environment it
// builds, whether an agent starts in a process, and what an executable's ELF headers say.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "riptide/performance/agent/agent_launch.hpp"
#include "riptide/performance/agent/executable_inspection.hpp"
#include "riptide/performance/agent/run_command.hpp"
#include "riptide/performance/core/error.hpp"

namespace rp = riptide::performance;

namespace {

rp::ConfigError::Details refusal_of(const std::vector<std::string>& arguments) {
  try {
    static_cast<void>(rp::parse_run_command(arguments));
  } catch (const rp::ConfigError& error) {
    return error.details();
  }
  ADD_FAILURE() << "accepted";
  return {};
}

std::map<std::string, std::string> g_environment;
const char* fake_environment(const char* name) {
  const auto it = g_environment.find(name);
  return it == g_environment.end() ? nullptr : it->second.c_str();
}

std::string value_of(const std::vector<std::pair<std::string, std::string>>& variables, const std::string& name) {
  for (const auto& [key, value] : variables) {
    if (key == name) return value;
  }
  return "<unset>";
}

std::filesystem::path temporary_file(const std::string& name, const std::string& contents) {
  const auto path = std::filesystem::temp_directory_path() / (name + "." + std::to_string(::getpid()));
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

}  // namespace

TEST(RunCommand, ReadsOptionsUntilTheProgram) {
  const auto command =
      rp::parse_run_command({"--port", "3100", "--bind=::1", "--config", "perf.toml", "redis-server", "--port", "7"});
  EXPECT_EQ(command.port, 3100);
  EXPECT_EQ(command.bind, "::1");
  EXPECT_EQ(command.config, "perf.toml");
  EXPECT_EQ(command.program, (std::vector<std::string>{"redis-server", "--port", "7"}));  // its options stay its own
  EXPECT_EQ(rp::parse_run_command({"--", "--odd-name"}).program, std::vector<std::string>{"--odd-name"});
  EXPECT_TRUE(rp::parse_run_command({"--help"}).help);
  EXPECT_EQ(rp::parse_run_command({"--port=0", "sh"}).port, 0);
}

TEST(RunCommand, RefusesWhatItDoesNotUnderstandAndSaysWhatItAccepts) {
  const auto port = refusal_of({"--port", "70000", "sh"});
  EXPECT_EQ(port.key, "--port");
  EXPECT_EQ(port.value, "70000");
  EXPECT_NE(port.accepted.find("0 to 65535"), std::string::npos);
  EXPECT_EQ(refusal_of({"--port", "3x", "sh"}).key, "--port");
  EXPECT_EQ(refusal_of({"--port"}).problem, "needs a value");
  EXPECT_EQ(refusal_of({"--verbose", "sh"}).key, "--verbose");
  EXPECT_EQ(refusal_of({"--bind="}).key, "--bind");
  const auto missing = refusal_of({"--port", "3000"});
  EXPECT_EQ(missing.key, "PROGRAM");
  EXPECT_EQ(missing.source, "riptide-run");
}

TEST(RunCommand, PreloadsJemallocAndTheAgentInFrontOfWhatWasThere) {
  g_environment = {};
  const auto command = rp::parse_run_command({"--port", "0", "--bind", "127.0.0.1", "--config", "p.toml", "prog"});
  auto variables = rp::agent_environment(command, "/opt/lib/libriptide_agent.so", fake_environment);
  EXPECT_EQ(value_of(variables, "LD_PRELOAD"), "libjemalloc.so.2:/opt/lib/libriptide_agent.so");
  EXPECT_EQ(value_of(variables, "MALLOC_CONF"), rp::kAgentMallocConf);
  EXPECT_EQ(value_of(variables, "RIPTIDE_PERF_HTTP_PORT"), "0");
  EXPECT_EQ(value_of(variables, "RIPTIDE_PERF_HTTP_BIND"), "127.0.0.1");
  EXPECT_EQ(value_of(variables, "RIPTIDE_PERF_CONFIG"), "p.toml");

  // The user's own preloads stay (after ours), and their jemalloc options win (later options override).
  g_environment = {{"LD_PRELOAD", "libmine.so"}, {"MALLOC_CONF", "lg_prof_sample:17"}};
  variables = rp::agent_environment(rp::parse_run_command({"prog"}), "/a.so", fake_environment);
  EXPECT_EQ(value_of(variables, "LD_PRELOAD"), "libjemalloc.so.2:/a.so:libmine.so");
  EXPECT_EQ(value_of(variables, "MALLOC_CONF"), std::string{rp::kAgentMallocConf} + ",lg_prof_sample:17");
  EXPECT_EQ(value_of(variables, "RIPTIDE_PERF_HTTP_PORT"), "<unset>");  // the configuration decides
}

TEST(AgentLaunch, StartsOnceInTheProcessThatAskedAndNotInItsChildren) {
  EXPECT_TRUE(rp::decide_agent_launch(nullptr, nullptr, 100).start);
  EXPECT_TRUE(rp::decide_agent_launch("100", nullptr, 100).start);  // the same process after exec
  const auto child = rp::decide_agent_launch("100", nullptr, 200);
  EXPECT_FALSE(child.start);
  EXPECT_TRUE(child.quiet);
  EXPECT_TRUE(rp::decide_agent_launch("100", "1", 200).start);
  EXPECT_FALSE(rp::decide_agent_launch("100", "0", 200).start);
}

TEST(AgentLaunch, ExplainsValuesItDoesNotAccept) {
  const auto bad_pid = rp::decide_agent_launch("12ab", nullptr, 100);
  EXPECT_FALSE(bad_pid.start);
  EXPECT_FALSE(bad_pid.quiet);
  EXPECT_NE(bad_pid.reason.find("RIPTIDE_AGENT_PID='12ab'"), std::string::npos) << bad_pid.reason;
  const auto bad_children = rp::decide_agent_launch(nullptr, "yes", 100);
  EXPECT_FALSE(bad_children.start);
  EXPECT_NE(bad_children.reason.find("1 (children start their own agent) or 0"), std::string::npos);
  EXPECT_FALSE(rp::decide_agent_launch("-5", nullptr, 100).start);
}

TEST(ExecutableInspection, TellsDynamicFromStaticAndFindsAnOwnMalloc) {
  const auto dynamic = rp::inspect_executable(RIPTIDE_PERF_TEST_DYNAMIC_PROGRAM);
  EXPECT_EQ(dynamic.linkage, rp::ExecutableLinkage::dynamic);
  EXPECT_FALSE(dynamic.defines_malloc);
  EXPECT_EQ(rp::inspect_executable(RIPTIDE_PERF_TEST_STATIC_PROGRAM).linkage, rp::ExecutableLinkage::static_binary);
  const auto own = rp::inspect_executable(RIPTIDE_PERF_TEST_OWN_MALLOC_PROGRAM);
  EXPECT_EQ(own.linkage, rp::ExecutableLinkage::dynamic);
  EXPECT_TRUE(own.defines_malloc);
  const auto script = temporary_file("agent_script", "#!/bin/sh\necho hi\n");
  EXPECT_EQ(rp::inspect_executable(script).linkage, rp::ExecutableLinkage::not_elf);
  std::filesystem::remove(script);
}

TEST(ExecutableInspection, ATruncatedOrMissingFileIsAnErrorNotACrash) {
  std::ifstream real(RIPTIDE_PERF_TEST_DYNAMIC_PROGRAM, std::ios::binary);
  std::string head(200, '\0');
  real.read(head.data(), static_cast<std::streamsize>(head.size()));
  const auto truncated = temporary_file("agent_truncated", head);
  try {
    static_cast<void>(rp::inspect_executable(truncated));
    ADD_FAILURE() << "a 200-byte ELF was read";
  } catch (const rp::Error& error) {
    EXPECT_NE(std::string{error.what()}.find("truncated or corrupt ELF"), std::string::npos) << error.what();
  }
  std::filesystem::remove(truncated);
  EXPECT_THROW(static_cast<void>(rp::inspect_executable("/nonexistent/program")), rp::Error);
}

TEST(ExecutableInspection, FindsProgramsAsExecvpWould) {
  EXPECT_EQ(rp::find_program("sh", "/nonexistent:/bin"), std::filesystem::path{"/bin/sh"});
  EXPECT_TRUE(rp::find_program("no-such-program-here", "/bin:/usr/bin").empty());
  EXPECT_EQ(rp::find_program("/bin/sh", ""), std::filesystem::path{"/bin/sh"});
  const auto not_executable = temporary_file("agent_not_executable", "data");
  std::filesystem::permissions(not_executable,
                               std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_TRUE(rp::find_program(not_executable.string(), "").empty());
  std::filesystem::remove(not_executable);
}
