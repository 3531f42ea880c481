// riptide-run and its agent on real programs nobody here wrote: Debian's redis-server (serving
// redis-benchmark, forking for BGSAVE, shut down by SHUTDOWN) and Debian's python3 with a leak in C-level
// allocations; plus the refusals and the promises that keep a program running whatever the agent meets.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <string>
#include <thread>

#include "http/support/http_client.hpp"
#include "support/child_process.hpp"

namespace {

using namespace std::chrono_literals;
using riptide::test::ChildProcess;
using riptide::test::run_command;
namespace http_test = riptide::performance::test;

const std::string kRiptideRun = RIPTIDE_PERF_TEST_RIPTIDE_RUN;

int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A listening socket on a free loopback port, held for the test's lifetime (or closed to free the port).
class HeldPort {
 public:
  HeldPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 || ::listen(fd_, 1) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      throw std::runtime_error("no free loopback port");
    }
    port_ = ntohs(address.sin_port);
  }
  ~HeldPort() { release(); }
  HeldPort(const HeldPort&) = delete;
  HeldPort& operator=(const HeldPort&) = delete;
  void release() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  [[nodiscard]] std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// The port the agent bound, from the line it logs ("... http://127.0.0.1:PORT/dashboard ...").
std::optional<std::uint16_t> agent_port(ChildProcess& child) {
  if (!child.wait_for_output("riptide agent: monitoring", 0, 30s)) return std::nullopt;
  if (!child.wait_for_output("/dashboard", 0, 5s)) return std::nullopt;
  std::smatch match;
  const std::string output = child.output();
  if (!std::regex_search(output, match, std::regex{R"(monitoring .* http://[^ ]*:(\d+)/dashboard)"})) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(std::stoi(match[1]));
}

nlohmann::json get_json(std::uint16_t port, const std::string& target) {
  const auto response = http_test::fetch(port, "GET", target);
  EXPECT_EQ(response.status, 200) << target << ": " << response.body;
  return nlohmann::json::parse(response.body, nullptr, false);
}

std::string redis_cli(std::uint16_t port, const std::string& arguments) {
  return run_command("redis-cli -p " + std::to_string(port) + " " + arguments + " 2>&1").output;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t count = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++count;
  return count;
}

}  // namespace

TEST(RiptideRun, RefusesBadArgumentsWithTheUsage) {
  auto result = run_command(kRiptideRun + " --port 70000 -- /bin/true 2>&1");
  EXPECT_EQ(exit_code(result.status), 2) << result.output;
  EXPECT_NE(result.output.find("--port = 70000"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("usage: riptide-run"), std::string::npos) << result.output;
  result = run_command(kRiptideRun + " 2>&1");
  EXPECT_EQ(exit_code(result.status), 2) << result.output;
  EXPECT_NE(result.output.find("PROGRAM"), std::string::npos) << result.output;
  result = run_command(kRiptideRun + " no-such-program-anywhere 2>&1");
  EXPECT_EQ(exit_code(result.status), 127) << result.output;
  EXPECT_NE(result.output.find("no such program"), std::string::npos) << result.output;
}

TEST(RiptideRun, RefusesAStaticProgramAndSaysWhatToDoInstead) {
  const auto result = run_command(kRiptideRun + " " RIPTIDE_PERF_TEST_STATIC_PROGRAM " 2>&1");
  EXPECT_EQ(exit_code(result.status), 127) << result.output;
  EXPECT_NE(result.output.find("is statically linked"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("Link riptide-performance into the program"), std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("static program ran"), std::string::npos) << "it ran anyway";
}

TEST(RiptideRun, RefusesAProgramWithItsOwnMalloc) {
  const auto result = run_command(kRiptideRun + " " RIPTIDE_PERF_TEST_OWN_MALLOC_PROGRAM " 2>&1");
  EXPECT_EQ(exit_code(result.status), 127) << result.output;
  EXPECT_NE(result.output.find("defines its own malloc"), std::string::npos) << result.output;
}

TEST(RiptideRun, AnAgentPreloadedByHandStepsAsideWhenMallocIsNotJemalloc) {
  // Without riptide-run's check: the agent finds that malloc does not reach jemalloc, says so once and
  // lets the program run.
  const auto result = run_command("LD_PRELOAD=libjemalloc.so.2:" RIPTIDE_PERF_TEST_AGENT_LIBRARY
                                  " RIPTIDE_PERF_HTTP_PORT=0 " RIPTIDE_PERF_TEST_OWN_MALLOC_PROGRAM " 2>&1");
  EXPECT_EQ(exit_code(result.status), 0) << result.output;
  EXPECT_NE(result.output.find("own-malloc program ran"), std::string::npos) << result.output;
  EXPECT_EQ(occurrences(result.output, "riptide agent: not monitoring"), 1U) << result.output;
  EXPECT_NE(result.output.find("own allocator"), std::string::npos) << result.output;
}

TEST(RiptideRun, RefusesABadSettingBeforeRunningTheProgram) {
  const auto result = run_command("RIPTIDE_PERF_HTTP_PORT=port " + kRiptideRun + " /bin/true 2>&1");
  EXPECT_EQ(exit_code(result.status), 2) << result.output;
  EXPECT_NE(result.output.find("RIPTIDE_PERF_HTTP_PORT"), std::string::npos) << result.output;
}

TEST(RiptideRun, PassesTheProgramsExitStatusThrough) {
  const auto result = run_command(kRiptideRun + " --port 0 -- /bin/sh -c 'echo program ran; exit 7' 2>&1");
  EXPECT_EQ(exit_code(result.status), 7) << result.output;
  EXPECT_NE(result.output.find("program ran"), std::string::npos) << result.output;
  EXPECT_EQ(occurrences(result.output, "riptide agent: monitoring"), 1U) << result.output;
}

TEST(RiptideRun, ATakenPortIsSaidOnceAndTheProgramRunsOnUnmonitored) {
  HeldPort taken;
  const auto result = run_command(kRiptideRun + " --port " + std::to_string(taken.port()) +
                                  " -- /bin/sh -c 'echo program ran; exit 3' 2>&1");
  EXPECT_EQ(exit_code(result.status), 3) << result.output;
  EXPECT_NE(result.output.find("program ran"), std::string::npos) << result.output;
  EXPECT_EQ(occurrences(result.output, "riptide agent: not monitoring"), 1U) << result.output;
  EXPECT_NE(result.output.find(std::to_string(taken.port())), std::string::npos) << result.output;
}

TEST(RiptideRun, ProgramsThatTheMonitoredOneStartsRunNoSecondAgent) {
  // The shell runs the agent; the shell and echo it forks and execs inherit LD_PRELOAD but not the agent.
  const auto result = run_command(kRiptideRun +
                                  " --port 0 -- /bin/sh -c '/bin/sh -c \"/bin/echo grandchild\"; /bin/echo child; "
                                  "exit 0' 2>&1");
  EXPECT_EQ(exit_code(result.status), 0) << result.output;
  EXPECT_NE(result.output.find("grandchild"), std::string::npos) << result.output;
  EXPECT_EQ(occurrences(result.output, "riptide agent: monitoring"), 1U) << result.output;
  EXPECT_EQ(occurrences(result.output, "riptide agent: not monitoring"), 0U) << result.output;
}

TEST(RiptideRun, RedisServerRunsServesForksAndShutsDownUnderTheAgent) {
  const std::string redis_server = RIPTIDE_PERF_TEST_REDIS_SERVER_PROGRAM;
  if (redis_server.empty()) GTEST_SKIP() << "redis-server is not installed (scripts/install-deps installs it)";
  const auto directory = std::filesystem::temp_directory_path() / ("riptide_agent_redis." + std::to_string(::getpid()));
  std::filesystem::create_directories(directory);
  HeldPort redis_port;
  redis_port.release();  // redis binds it; a rare race with another process shows as redis failing to start
  // The leak observation refreshes the heap profile the readers share every second (30 s by default).
  ::setenv("RIPTIDE_PERF_PROFILING_LEAK_DETECTION_INTERVAL_SEC", "1", 1);
  ChildProcess redis;
  redis.start({kRiptideRun, "--port", "0", "--", redis_server, "--port", std::to_string(redis_port.port()), "--bind",
               "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory.string()});
  ::unsetenv("RIPTIDE_PERF_PROFILING_LEAK_DETECTION_INTERVAL_SEC");
  const auto port = agent_port(redis);
  ASSERT_TRUE(port.has_value()) << redis.output();
  ASSERT_TRUE(redis.wait_for_output("Ready to accept connections", 0, 30s)) << redis.output();

  const auto benchmark = run_command("redis-benchmark -h 127.0.0.1 -p " + std::to_string(redis_port.port()) +
                                     " -t set,get -n 20000 -d 256 -r 10000 -q 2>&1");
  EXPECT_EQ(exit_code(benchmark.status), 0) << benchmark.output;
  EXPECT_NE(benchmark.output.find("SET:"), std::string::npos) << benchmark.output;
  EXPECT_NE(benchmark.output.find("GET:"), std::string::npos) << benchmark.output;

  // BGSAVE forks a child that writes the dump and exits while the agent's threads run in the parent.
  EXPECT_NE(redis_cli(redis_port.port(), "BGSAVE").find("Background saving started"), std::string::npos);
  std::string persistence;
  for (int i = 0; i < 300; ++i) {
    persistence = redis_cli(redis_port.port(), "INFO persistence");
    if (persistence.find("rdb_bgsave_in_progress:0") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(persistence.find("rdb_last_bgsave_status:ok"), std::string::npos) << persistence;
  EXPECT_TRUE(std::filesystem::exists(directory / "dump.rdb"));

  std::this_thread::sleep_for(2s);  // a fresh shared profile, taken after the benchmark
  const auto snapshot = get_json(*port, "/metrics/memory/snapshot");
  EXPECT_EQ(snapshot.value("allocator", ""), "jemalloc") << snapshot.dump(2);
  const auto allocations = get_json(*port, "/metrics/memory/allocations");
  ASSERT_TRUE(allocations.contains("top_allocators")) << allocations.dump(2);
  bool redis_site = false;
  for (const auto& site : allocations["top_allocators"]) {
    // Debian's redis exports its functions (for its crash reports), so sites carry redis's own names.
    redis_site = redis_site || site.value("location", "").find("(redis-") != std::string::npos;
  }
  EXPECT_TRUE(redis_site) << allocations["top_allocators"].dump(2);

  // Google's pprof reads the heap profile, with build IDs on the mappings.
  const auto heap = http_test::fetch(*port, "GET", "/debug/pprof/heap");
  ASSERT_EQ(heap.status, 200) << heap.body;
  const auto profile_path = directory / "heap.pb.gz";
  std::ofstream(profile_path, std::ios::binary) << heap.body;
  const auto raw =
      run_command(std::string{RIPTIDE_PERF_TEST_PPROF_PROGRAM} + " -raw " + profile_path.string() + " 2>&1");
  ASSERT_EQ(exit_code(raw.status), 0) << raw.output;
  EXPECT_TRUE(std::regex_search(raw.output, std::regex{R"(/usr/bin/redis-\S+ [0-9a-f]{40})"})) << raw.output;

  EXPECT_EQ(redis_cli(redis_port.port(), "SHUTDOWN NOSAVE"), "");
  const int status = redis.wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status << "\n" << redis.output();
  std::filesystem::remove_all(directory);
}

TEST(RiptideRun, APythonScriptsLeakIsReportedWithTheSymbolPythonExports) {
  const std::string python = "/usr/bin/python3";
  if (!std::filesystem::exists(python)) GTEST_SKIP() << "Debian's python3 is not installed";
  ::setenv("RIPTIDE_PERF_PROFILING_LEAK_DETECTION_INTERVAL_SEC", "1", 1);
  ChildProcess script;
  script.start({kRiptideRun, "--port", "0", "--", python, RIPTIDE_PERF_TEST_LEAKING_SCRIPT, "40"});
  ::unsetenv("RIPTIDE_PERF_PROFILING_LEAK_DETECTION_INTERVAL_SEC");
  const auto port = agent_port(script);
  ASSERT_TRUE(port.has_value()) << script.output();

  const auto exported = run_command("nm -D --defined-only " + python + " 2>&1").output;
  nlohmann::json found;
  for (int second = 0; second < 38 && found.is_null() && script.running(); ++second) {
    std::this_thread::sleep_for(1s);
    const auto response = http_test::fetch(*port, "GET", "/metrics/memory/leaks");
    if (response.status != 200) continue;
    const auto report = nlohmann::json::parse(response.body, nullptr, false);
    for (const auto& leak : report.value("leaks", nlohmann::json::array())) {
      if (leak.value("size", 0.0) >= 8e6) found = leak;
    }
  }
  ASSERT_FALSE(found.is_null()) << "no leak of 8 MB reported\n" << script.output();
  const std::string function = found.value("function", "");
  EXPECT_NE(found.value("location", "").find("(python3"), std::string::npos) << found.dump(2);
  // The name is one that python3 itself exports (its dynamic symbol table, read by binutils' nm).
  EXPECT_TRUE(std::regex_search(exported, std::regex{" T " + function + "\n"})) << found.dump(2);
  EXPECT_GT(found.value("growth_rate", 0.0), 0.5e6) << found.dump(2);  // 1.3 MB/s kept

  const int status = script.wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status << "\n" << script.output();
  EXPECT_NE(script.output().find("held "), std::string::npos) << script.output();
}
