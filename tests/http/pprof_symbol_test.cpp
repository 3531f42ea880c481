// GET/POST /debug/pprof/symbol (Go's symbol protocol) over a live server on 127.0.0.1, with jemalloc's heap
// profiler on (this executable defines malloc_conf); Google's pprof symbolizing a heap profile remotely
// through it; build IDs and honest has_functions flags in the profile's mappings.
#include "http/support/http_client.hpp"
#include "http/support/json_checks.hpp"
#include "riptide/performance/core/uuid.hpp"
#include "riptide/performance/http/memory_metrics_router.hpp"
#include "riptide/performance/http/server.hpp"
#include "riptide/performance/manager/memory_profiler.hpp"
#include "riptide/performance/memory/jemalloc_ctl.hpp"
#include "riptide/performance/profiling/enable_heap_profiling.hpp"
#include "riptide/performance/profiling/heap_profile.hpp"
#include "riptide/performance/profiling/heap_profile_cache.hpp"
#include "riptide/performance/profiling/pprof_writer.hpp"
#include "riptide/performance/profiling/symbol_lookup.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"
#include "support/child_process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

// A small sampling interval (16 KiB) so a few MiB of test allocations are well sampled.
RIPTIDE_PERF_ENABLE_HEAP_PROFILING_WITH("prof:true,prof_active:true,lg_prof_sample:14,prof_accum:true");

namespace http = riptide::performance::http;
namespace rp = riptide::performance;
namespace test = riptide::performance::test;
using nlohmann::json;
using riptide::performance::test::expect_json_error;

// Known functions of this binary whose names the endpoint must give back. Outside any namespace and with
// C linkage so their names are plain; big enough that an offset of 8 stays inside them.
extern "C" [[gnu::noinline]] int riptide_symbol_test_first(int n) {
  volatile int sum = 0;
  for (int i = 0; i < n; ++i) sum = sum + i * 3;
  return sum;
}
extern "C" [[gnu::noinline]] int riptide_symbol_test_second(int n) {
  volatile int product = 1;
  for (int i = 1; i < n; ++i) product = product * (i | 1);
  return product;
}

namespace {

// Kept alive until the process ends: what the heap profile shows.
std::vector<void*> g_kept;

[[gnu::noinline]] void allocate_for_symbol_test(std::size_t bytes) {
  for (std::size_t done = 0; done < bytes; done += 4096) {
    void* block = std::malloc(4096);
    static_cast<volatile char*>(block)[0] = 1;
    g_kept.push_back(block);
  }
}

using Command = riptide::test::CommandResult;

Command run(const std::string& command) {
  return riptide::test::run_command(command);
}

std::string pprof_tool() {
  const char* value = std::getenv("RIPTIDE_PERF_TEST_PPROF");
  return value != nullptr && std::filesystem::exists(value) ? std::string(value) : std::string{};
}

std::uint64_t address_of(int (*function)(int), std::uint64_t offset) {
  return reinterpret_cast<std::uint64_t>(function) + offset;
}

std::string hex(std::uint64_t value) {
  std::ostringstream out;
  out << "0x" << std::hex << value;
  return out.str();
}

// The executable's GNU build ID as readelf reads it from the file, independently of the library.
std::string build_id_by_readelf() {
  const auto exe = std::filesystem::read_symlink("/proc/self/exe").string();
  const Command readelf = run("readelf -n " + exe);
  std::smatch match;
  if (!std::regex_search(readelf.output, match, std::regex("Build ID: ([0-9a-f]+)"))) return {};
  return match[1].str();
}

bool jemalloc_serves_malloc() {
  return rp::JemallocCtl::availability().serves_malloc;
}

class PprofSymbolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rp::Config config;
    config.monitoring.sample_interval_sec = 0.05;
    profiler = std::make_shared<rp::MemoryProfiler>(session_id, config);
    profiler->start_profiling();
    router = std::make_unique<http::MemoryMetricsRouter>(profiler, session_id);
    http::ServerOptions options;
    options.port = 0;
    // pprof sends every address it needs in one request; 128 KiB leaves the route's own 64 KiB bound
    // reachable for the test.
    options.body_limit_bytes = 128 * 1024;
    server = http::Server::start(*router, options);
  }

  test::HttpResponse request(const std::string& method, const std::string& target, const std::string& body = {}) {
    return test::fetch(server->port(), method, target, {}, body);
  }

  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(server->port()) + path; }

  const std::string session_id = rp::make_uuid_v4();
  std::shared_ptr<rp::MemoryProfiler> profiler;
  std::unique_ptr<http::MemoryMetricsRouter> router;
  std::unique_ptr<http::Server> server;
};

}  // namespace

TEST_F(PprofSymbolTest, GetSaysTheProcessHasSymbols) {
  const auto response = request("GET", "/debug/pprof/symbol");
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.body, "num_symbols: 1\n");
  EXPECT_EQ(response.header("Content-Type").value_or(""), "text/plain; charset=utf-8");
}

TEST_F(PprofSymbolTest, PostNamesKnownFunctionsAndNothingForUnknownAddresses) {
  const std::uint64_t first = address_of(&riptide_symbol_test_first, 8);
  const std::uint64_t second = address_of(&riptide_symbol_test_second, 4);
  // 0x10 is never mapped: no line for it, as Go's handler answers.
  const auto response = request("POST", "/debug/pprof/symbol", hex(first) + "+0x10+" + hex(second));
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.body, "num_symbols: 1\n" + hex(first) + " riptide_symbol_test_first\n" + hex(second) +
                               " riptide_symbol_test_second\n");

  // The address is that of an instruction, not a return address: a function's first byte is the function.
  const std::uint64_t entry = address_of(&riptide_symbol_test_second, 0);
  const auto at_entry = request("POST", "/debug/pprof/symbol", hex(entry) + "\n");
  EXPECT_EQ(at_entry.body, "num_symbols: 1\n" + hex(entry) + " riptide_symbol_test_second\n");

  // GET takes the addresses from the query string, as Go's handler does.
  const auto get = request("GET", "/debug/pprof/symbol?" + hex(second) + "+" + hex(first));
  ASSERT_EQ(get.status, 200) << get.body;
  EXPECT_EQ(get.body, "num_symbols: 1\n" + hex(second) + " riptide_symbol_test_second\n" + hex(first) +
                          " riptide_symbol_test_first\n");
}

TEST_F(PprofSymbolTest, MalformedAndOversizedRequestsAreRefusedWithWhatIsAccepted) {
  for (const std::string body : {"0x12+zz", "0x12++0x13", "4005d0", "0x", "0x12 0x13", "0x12345678901234567"}) {
    expect_json_error(request("POST", "/debug/pprof/symbol", body), 400, "bad_request",
                      "accepted: hex addresses with a 0x prefix");
  }
  expect_json_error(request("GET", "/debug/pprof/symbol?symbols=0x10"), 400, "invalid_parameter",
                    "accepted: hex addresses with a 0x prefix");
  expect_json_error(request("POST", "/debug/pprof/symbol?0x10", "0x10"), 400, "invalid_parameter", "in the body");

  std::string many;
  for (int i = 0; i < 4097; ++i) many += (i == 0 ? "" : "+") + hex(0x1000 + i);
  ASSERT_LT(many.size(), 64U * 1024);
  expect_json_error(request("POST", "/debug/pprof/symbol", many), 413, "payload_too_large", "more than 4096 addresses");

  const std::string huge(70 * 1024, '1');
  expect_json_error(request("POST", "/debug/pprof/symbol", huge), 413, "payload_too_large", "65536 bytes");

  // Exactly at the bound is served.
  many.resize(many.rfind('+'));
  EXPECT_EQ(request("POST", "/debug/pprof/symbol", many).status, 200);
}

TEST_F(PprofSymbolTest, PprofSymbolizesAProfileWithoutFunctionsRemotelyThroughTheEndpoint) {
  if (!jemalloc_serves_malloc()) GTEST_SKIP() << "needs jemalloc's heap profiler serving malloc";
  const std::string pprof = pprof_tool();
  if (pprof.empty()) GTEST_SKIP() << "pprof not built (target pprof_tool)";
  allocate_for_symbol_test(4 * 1024 * 1024);
  ASSERT_TRUE(profiler->heap_profiles()->refresh().ok());
  const auto tmp = std::filesystem::temp_directory_path() / ("riptide_pprof_symbol_" + session_id);
  std::filesystem::create_directories(tmp);
  const std::string prefix = "PPROF_TMPDIR=" + tmp.string() + " " + pprof;
  // symbolize=0: the profile names no function, and no mapping claims to have them.
  const std::string source = "'" + url("/debug/pprof/heap?symbolize=0") + "'";

  const Command raw = run(prefix + " -symbolize=none -raw " + source);
  ASSERT_EQ(raw.status, 0) << raw.output;
  EXPECT_EQ(raw.output.find("[FN]"), std::string::npos) << raw.output;
  const Command bare = run(prefix + " -symbolize=none -top -sample_index=inuse_space " + source);
  ASSERT_EQ(bare.status, 0) << bare.output;
  EXPECT_EQ(bare.output.find("allocate_for_symbol_test"), std::string::npos) << bare.output;

  // "remote" turns pprof's local symbolization (binaries on disk) off: the names come from POSTs to
  // /debug/pprof/symbol, the URL pprof derives from the profile's.
  const Command remote = run(prefix + " -symbolize=remote -top -nodecount=200 -sample_index=inuse_space " + source);
  ASSERT_EQ(remote.status, 0) << remote.output;
  EXPECT_NE(remote.output.find("allocate_for_symbol_test"), std::string::npos) << remote.output;
  std::filesystem::remove_all(tmp);
}

TEST_F(PprofSymbolTest, HeapProfileMappingsCarryTheBuildIdOfTheExecutable) {
  if (!jemalloc_serves_malloc()) GTEST_SKIP() << "needs jemalloc's heap profiler serving malloc";
  const std::string pprof = pprof_tool();
  if (pprof.empty()) GTEST_SKIP() << "pprof not built (target pprof_tool)";
  const std::string expected = build_id_by_readelf();
  ASSERT_FALSE(expected.empty()) << "readelf found no build ID in the test executable";
  allocate_for_symbol_test(1024 * 1024);
  ASSERT_TRUE(profiler->heap_profiles()->refresh().ok());
  const auto tmp = std::filesystem::temp_directory_path() / ("riptide_pprof_buildid_" + session_id);
  std::filesystem::create_directories(tmp);
  const Command raw = run("PPROF_TMPDIR=" + tmp.string() + " " + pprof_tool() + " -symbolize=none -raw '" +
                          url("/debug/pprof/heap") + "'");
  std::filesystem::remove_all(tmp);
  ASSERT_EQ(raw.status, 0) << raw.output;
  // "<id>: 0x<start>/0x<limit>/0x<offset> <file> <build id> <flags>" per mapping.
  const auto exe = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::regex line("\\n\\d+: 0x[0-9a-f]+/0x[0-9a-f]+/0x[0-9a-f]+ " + exe + " ([0-9a-f]*)");
  std::smatch match;
  ASSERT_TRUE(std::regex_search(raw.output, match, line)) << "no mapping of " << exe << ":\n" << raw.output;
  EXPECT_EQ(match[1].str(), expected) << raw.output;
}

// The writer alone: a mapping with one location the symbolizer cannot name does not claim functions (so
// pprof symbolizes it), one whose every location is named does, and the unnamed location has no line.
TEST(PprofWriterMappings, HasFunctionsOnlyWhenEveryLocationIsNamed) {
  const std::string pprof = pprof_tool();
  if (pprof.empty()) GTEST_SKIP() << "pprof not built (target pprof_tool)";
  // The executable mapping of this binary that holds the known function, as /proc/self/maps lists it.
  const std::uint64_t known = address_of(&riptide_symbol_test_first, 8);
  std::ifstream maps("/proc/self/maps");
  std::string region;
  for (std::string entry; std::getline(maps, entry);) {
    std::uint64_t start = 0, limit = 0;
    if (std::sscanf(entry.c_str(), "%lx-%lx", &start, &limit) == 2 && known >= start && known < limit) {
      region = entry;
      break;
    }
  }
  ASSERT_FALSE(region.empty());
  // A region no process maps (below mmap_min_addr), with a path that does not exist here.
  const std::string dump =
      "heap_v2/524288\n  t*: 3: 3145728 [3: 3145728]\n"
      "@ " +
      hex(known + 1) + " " + hex(known + 1) +
      "\n  t*: 2: 2097152 [2: 2097152]\n"
      "@ 0x1100 0x2100\n  t*: 1: 1048576 [1: 1048576]\n\nMAPPED_LIBRARIES:\n" +
      region + "\n00001000-00004000 r-xp 00000000 fe:00 1 /nonexistent/riptide/fake\n";
  auto parsed = rp::parse_heap_profile(dump);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  rp::Symbolizer symbolizer;
  const auto tmp = std::filesystem::temp_directory_path() / ("riptide_pprof_writer_" + std::to_string(::getpid()));
  std::filesystem::create_directories(tmp);
  const auto file = tmp / "heap.pb.gz";
  std::ofstream(file, std::ios::binary) << rp::write_pprof_heap_profile(parsed.value(), symbolizer,
                                                                        {.skip_allocator_frames = false});
  const Command raw = run(pprof + " -symbolize=none -raw " + file.string());
  std::filesystem::remove_all(tmp);
  ASSERT_EQ(raw.status, 0) << raw.output;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe").string();
  std::smatch match;
  ASSERT_TRUE(std::regex_search(raw.output, match, std::regex(exe + " ([0-9a-f]+) (\\S*)\\n"))) << raw.output;
  EXPECT_EQ(match[1].str(), build_id_by_readelf());
  EXPECT_NE(match[2].str().find("[FN]"), std::string::npos) << raw.output;
  ASSERT_TRUE(std::regex_search(raw.output, match, std::regex("/nonexistent/riptide/fake +(\\S*)\\n"))) << raw.output;
  EXPECT_EQ(match[1].str(), "") << "unnamed locations: no has_functions, no build ID\n" << raw.output;
  // Locations are call sites (return address - 1); the unnamed ones carry no function line.
  EXPECT_TRUE(std::regex_search(raw.output, std::regex(": " + hex(known) + " M=\\d+ riptide_symbol_test_first ")))
      << raw.output;
  EXPECT_TRUE(std::regex_search(raw.output, std::regex(": 0x20ff M=\\d+ *\\n"))) << raw.output;
}
