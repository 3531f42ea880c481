// The dashboard assets embedded at build time: every file is there with its content type, Chart.js is
// Debian's, and the static report inlines everything (no request leaves the file).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "examples/chromium.hpp"

#include "riptide/performance/http/dashboard_assets.hpp"

namespace http = riptide::performance::http;

TEST(DashboardAssets, PageAndAssetsAreServedFromMemory) {
  const auto page = http::find_dashboard_asset("/dashboard");
  ASSERT_TRUE(page.has_value());
  EXPECT_EQ(page->content_type, "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("<canvas id=\"chart-memory\""), std::string_view::npos);
  EXPECT_EQ(http::find_dashboard_asset("/dashboard/")->body, page->body);
  EXPECT_EQ(http::find_dashboard_asset("/dashboard?x=1")->body, page->body);
  EXPECT_EQ(http::find_dashboard_asset("/dashboard/dashboard.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(http::find_dashboard_asset("/dashboard/dashboard.css")->content_type, "text/css; charset=utf-8");
  EXPECT_FALSE(http::find_dashboard_asset("/dashboard/nope.js").has_value());
  EXPECT_FALSE(http::find_dashboard_asset("/dashboardx").has_value());
  EXPECT_EQ(http::dashboard_assets().size(), 4U);
  for (const auto& asset : http::dashboard_assets()) {
    EXPECT_EQ(asset.etag.size(), 18U) << asset.path;  // quoted 16 hex digits
    EXPECT_FALSE(asset.body.empty()) << asset.path;
  }
}

TEST(DashboardAssets, ChartJsIsDebiansFileByteForByte) {
  std::ifstream in{"/usr/share/javascript/chart.js/chart.min.js", std::ios::binary};
  ASSERT_TRUE(in) << "libjs-chart.js not installed";
  std::stringstream file;
  file << in.rdbuf();
  const auto chart = http::find_dashboard_asset("/dashboard/chart.min.js");
  ASSERT_TRUE(chart.has_value());
  EXPECT_EQ(chart->body, file.str());
  EXPECT_NE(chart->body.find("Chart.js v3"), std::string_view::npos);
}

TEST(DashboardAssets, PageReferencesOnlyItsOwnAssets) {
  const auto page = http::find_dashboard_asset("/dashboard")->body;
  EXPECT_EQ(page.find("http://"), std::string_view::npos);
  EXPECT_EQ(page.find("https://"), std::string_view::npos);
  EXPECT_EQ(page.find("//cdn"), std::string_view::npos);
}

TEST(DashboardAssets, StaticReportInlinesScriptsAndData) {
  const std::string html = http::render_static_dashboard(
      R"({"/metrics/memory/leaks":{"leak_count":1,"leaks":[{"location":"leak_page_bytes_for_demo</script>","size":1}]}})",
      "report <1>");
  EXPECT_EQ(html.find("src=\"/dashboard/"), std::string::npos);
  EXPECT_EQ(html.find("href=\"/dashboard/dashboard.css\""), std::string::npos);
  EXPECT_NE(html.find("window.RIPTIDE_STATIC_DATA = "), std::string::npos);
  EXPECT_NE(html.find("leak_page_bytes_for_demo<\\/script>"), std::string::npos);
  EXPECT_NE(html.find("<title>report &lt;1&gt;</title>"), std::string::npos);
  EXPECT_NE(html.find("Chart.js v3"), std::string::npos);
}

// The page's script against realistic endpoint bodies, in a real browser: the static report draws every
// chart and table from the data it carries.
TEST(DashboardAssets, StaticReportDrawsChartsAndTablesInChromium) {
  if (riptide::test::chromium_path().empty()) GTEST_SKIP() << "chromium not installed (RIPTIDE_PERF_TEST_CHROMIUM)";
  nlohmann::json data;
  nlohmann::json points = nlohmann::json::array();
  nlohmann::json history = nlohmann::json::array();
  for (int i = 0; i < 20; ++i) {
    const std::string ts = "2026-01-01T10:00:" + std::string(i < 10 ? "0" : "") + std::to_string(i) + "Z";
    points.push_back({{"timestamp", ts},
                      {"memory_usage", 40'000'000 + i * 500'000},
                      {"rss_bytes", 80'000'000 + i * 600'000},
                      {"allocation_count", 1000 * i * i},
                      {"deallocation_count", 900 * i * i}});
    history.push_back({{"timestamp", ts}, {"p50_ms", 3.0 + i * 0.1}, {"p95_ms", 120.0}, {"pages_per_second", 180.0}});
  }
  data["/metrics/memory/trend"] = {{"data_points", points}};
  data["/metrics/memory/snapshot"] = {{"timestamp", "2026-01-01T10:00:19Z"},
                                      {"session_id", "0e7c2b6e-1b7a-4f7e-9a51-8d1c3f0b2a11"},
                                      {"rss_bytes", 91'400'000},
                                      {"heap_bytes", 49'500'000},
                                      {"jemalloc", {{"resident", 60'000'000}}}};
  data["/metrics/memory/leaks"] = {{"leak_count", 1},
                                   {"leaks",
                                    {{{"location", "leak_page_bytes_for_demo (examples/scraper_demo.cpp:142)"},
                                      {"function_full", "leak_page_bytes_for_demo(unsigned long)"},
                                      {"stack",
                                       {"leak_page_bytes_for_demo(unsigned long) (examples/scraper_demo.cpp:142)",
                                        "main (examples/scraper_demo.cpp:400)"}},
                                      {"size", 9'000'000},
                                      {"size_error_bytes", 750'000},
                                      {"age_seconds", 19},
                                      {"allocation_time", "2026-01-01T10:00:00Z"}}}}};
  data["/metrics/memory/allocations"] = {{"top_allocators",
                                          {{{"location", "riptide::example::Site::generate_page"},
                                            {"allocation_count", 5000},
                                            {"total_bytes", 90'000'000},
                                            {"average_size", 18000},
                                            {"percentage_of_total", 61.5}}}},
                                         {"allocation_rate_per_second", 4200.0}};
  data["/metrics/memory/health"] = {{"status", "warning"}};
  data["/metrics/performance"] = {{"history", history},
                                  {"breakers", {{{"name", "flaky.example"}, {"state", "open"}, {"failure_rate", 0.7}}}},
                                  {"cache", {{"hits", 300}, {"misses", 700}}}};
  data["flamegraph_folded"] =
      "main;worker;leak_page_bytes_for_demo 9000000\nmain;worker;riptide::example::parse_html 3000000\n";

  const auto file = std::filesystem::path{std::getenv("RIPTIDE_PERF_BINARY_DIR")} / "dashboard_static_test.html";
  std::ofstream{file} << http::render_static_dashboard(data.dump(), "static test");
  const std::string dom = riptide::test::run_chromium("file://" + file.string(), "--dump-dom", 3000);
  ASSERT_FALSE(dom.empty()) << "chromium printed nothing";
  for (const char* chart : {"chart-memory", "chart-allocation-rate", "chart-latency", "chart-throughput"}) {
    EXPECT_GT(std::atoi(riptide::test::attribute_of(dom, chart, "data-points").c_str()), 0) << chart;
  }
  const std::string leaks = riptide::test::element_of(dom, "leaks-table", "table");
  EXPECT_NE(leaks.find("leak_page_bytes_for_demo"), std::string::npos) << leaks;
  // The size carries its sampling error; hovering the row shows the full name and the stack.
  EXPECT_NE(leaks.find("±"), std::string::npos) << leaks;
  EXPECT_NE(leaks.find("title=\"leak_page_bytes_for_demo(unsigned long)"), std::string::npos) << leaks;
  EXPECT_NE(riptide::test::element_of(dom, "breakers-table", "table").find("flaky.example"), std::string::npos);
  EXPECT_NE(riptide::test::element_of(dom, "cache-table", "table").find("30.0 %"), std::string::npos);
  EXPECT_GT(std::atoi(riptide::test::attribute_of(dom, "flamegraph", "data-frames").c_str()), 2);
  EXPECT_NE(dom.find("class=\"frame leak\""), std::string::npos) << "leaking frame not highlighted";
}

// The memory-over-time panels in a real browser, from a report's data: the peak's sites with its time and
// size, the diff of the current heap against the peak (red grew, green shrank, per allocating function,
// runtime frames skipped) and a delta's signed changes.
TEST(DashboardAssets, StaticReportShowsThePeakTheDiffAndTheDelta) {
  if (riptide::test::chromium_path().empty()) GTEST_SKIP() << "chromium not installed (RIPTIDE_PERF_TEST_CHROMIUM)";
  nlohmann::json data;
  data["/metrics/memory/snapshot"] = {{"timestamp", "2026-01-01T10:00:19Z"}, {"heap_bytes", 49'500'000}};
  data["/metrics/memory/peak"] = {{"basis", "heap"},
                                  {"recorder", {{"captures", 3}, {"next_capture_above_bytes", 110'000'000}}},
                                  {"peak",
                                   {{"observed_at", "2026-01-01T10:00:07.250Z"},
                                    {"heap_bytes", 100'000'000},
                                    {"rss_bytes", 130'000'000},
                                    {"capture_number", 3},
                                    {"top_sites",
                                     {{{"location", "build_page_index (examples/scraper_demo.cpp:88)"},
                                       {"function_full", "build_page_index(unsigned long)"},
                                       {"inuse_bytes", 67'108'864},
                                       {"size_error_bytes", 1'000'000},
                                       {"share_percent", 71.5}}}}}}};
  // The peak held the index; now it is gone and the parser's buffers grew. std:: frames are runtime code:
  // the vector growth is charged to its caller.
  data["peak_folded"] =
      "main;build_page_index(unsigned long);std::vector<char>::_M_realloc_insert(char const&);operator new(unsigned "
      "long) 67108864\nmain;parse_html(std::string const&) 1000000\n";
  data["flamegraph_folded"] =
      "main;parse_html(std::string const&) 9000000\nmain;build_page_index(unsigned long) 4096\n";
  data["delta_folded"] = "main;parse_html(std::string const&) 8000000\nmain;drop_cache_entries() -3000000\n";
  data["delta_seconds"] = 10;

  const auto file = std::filesystem::path{std::getenv("RIPTIDE_PERF_BINARY_DIR")} / "dashboard_peak_test.html";
  std::ofstream{file} << http::render_static_dashboard(data.dump(), "peak test");
  const std::string dom = riptide::test::run_chromium("file://" + file.string(), "--dump-dom", 3000);
  ASSERT_FALSE(dom.empty()) << "chromium printed nothing";

  const std::string peak = riptide::test::element_of(dom, "peak-table", "table");
  EXPECT_NE(peak.find("build_page_index (examples/scraper_demo.cpp:88)"), std::string::npos) << peak;
  EXPECT_NE(peak.find("64.0 MiB"), std::string::npos) << peak;
  EXPECT_NE(peak.find("71.5 %"), std::string::npos) << peak;
  const std::string summary = riptide::test::element_of(dom, "peak-summary", "p");
  EXPECT_NE(summary.find("2026-01-01T10:00:07.250Z"), std::string::npos) << summary;
  EXPECT_NE(summary.find("heap 95.4 MiB"), std::string::npos) << summary;
  EXPECT_NE(summary.find("RSS 124 MiB"), std::string::npos) << summary;

  const std::string diff = riptide::test::element_of(dom, "diff-table", "table");
  // The index shrank by what the peak held (minus the 4 KiB left) and is green; the parser grew and is red.
  const auto index_row = diff.find(">build_page_index<");
  const auto parser_row = diff.find(">parse_html<");
  ASSERT_NE(index_row, std::string::npos) << diff;
  ASSERT_NE(parser_row, std::string::npos) << diff;
  EXPECT_LT(index_row, parser_row) << "largest change first";
  EXPECT_NE(diff.find("class=\"num shrank\">-64.0 MiB"), std::string::npos) << diff;
  EXPECT_NE(diff.find("class=\"num grew\">+7.6 MiB"), std::string::npos) << diff;
  EXPECT_EQ(diff.find("_M_realloc_insert"), std::string::npos) << "runtime frames are not sites: " << diff;

  const std::string delta = riptide::test::element_of(dom, "delta-table", "table");
  EXPECT_NE(delta.find("class=\"num grew\">+7.6 MiB"), std::string::npos) << delta;
  EXPECT_NE(delta.find("class=\"num shrank\">-2.9 MiB"), std::string::npos) << delta;
  EXPECT_NE(riptide::test::element_of(dom, "delta-note", "p").find("Over 10 s"), std::string::npos);
}

// "Memory over time" draws RSS, heap and jemalloc resident over the trend's points only: every series spans
// the same time range with the same points (a point that lacks a figure is a gap, not a shorter series), and
// the time axis runs from the first point to the last. The fragmentation panel reconciles RSS with the heap.
TEST(DashboardAssets, MemoryChartSeriesShareOneTimeAxisAndTheFragmentationAndLifetimePanelsRender) {
  if (riptide::test::chromium_path().empty()) GTEST_SKIP() << "chromium not installed (RIPTIDE_PERF_TEST_CHROMIUM)";
  nlohmann::json points = nlohmann::json::array();
  for (int i = 0; i < 12; ++i) {
    const std::string ts = "2026-01-01T10:00:" + std::string(i < 5 ? "0" : "") + std::to_string(2 * i) + "Z";
    nlohmann::json point = {
        {"timestamp", ts}, {"memory_usage", 40'000'000 + i * 500'000}, {"rss_bytes", 80'000'000 + i * 600'000}};
    if (i >= 3) point["resident_bytes"] = 60'000'000 + i * 100'000;  // jemalloc figures from the 4th point on
    points.push_back(point);
  }
  nlohmann::json data;
  data["/metrics/memory/trend"] = {{"data_points", points}};
  // The snapshot polled last must not add points of its own to the chart.
  data["/metrics/memory/snapshot"] = {{"timestamp", "2026-01-01T10:05:00Z"},
                                      {"rss_bytes", 95'000'000},
                                      {"heap_bytes", 46'000'000},
                                      {"jemalloc", {{"resident", 70'000'000}}}};
  data["/metrics/memory/fragmentation"] = {
      {"available", true},
      {"rss_bytes", 943'718'400},
      {"reconciliation",
       {{"allocated_bytes", 314'572'800},
        {"page_free_bytes", 209'715'200},
        {"dirty_bytes", 262'144'000},
        {"muzzy_bytes", 0},
        {"metadata_bytes", 20'971'520},
        {"active_bytes", 524'288'000},
        {"resident_bytes", 838'860'800},
        {"outside_allocator_bytes", 104'857'600},
        {"retained_bytes", 0}}},
      {"fragmentation_ratio", 0.625},
      {"worst_size_classes", {{{"size", 48}, {"slabs", 10'000}, {"utilization", 0.1}, {"wasted_bytes", 110'592'000}}}},
      {"recommendations",
       {{{"setting", "POST /metrics/memory/gc"},
         {"reason", "250 MiB of freed pages are still resident"},
         {"up_to_bytes", 262'144'000}}}}};

  data["/metrics/memory/lifetimes"] = {{"available", true},
                                       {"temporary_threshold_ms", 100.0},
                                       {"sites",
                                        {{{"location", "parse_page (scraper.cpp:88)"},
                                          {"function", "parse_page"},
                                          {"sampled", 420},
                                          {"temporary_share", 0.3},
                                          {"temporary_share_error", 0.022},
                                          {"lifetime_p50_ms", 4.0},
                                          {"lifetime_p99_ms", 10004.0},
                                          {"alive", 231}}}}};

  const auto file = std::filesystem::path{std::getenv("RIPTIDE_PERF_BINARY_DIR")} / "dashboard_axis_test.html";
  std::ofstream{file} << http::render_static_dashboard(data.dump(), "axis test");
  const std::string dom = riptide::test::run_chromium("file://" + file.string(), "--dump-dom", 3000);
  ASSERT_FALSE(dom.empty()) << "chromium printed nothing";
  const std::string first = "1767261600000";  // 2026-01-01T10:00:00Z
  const std::string last = "1767261622000";   // 10:00:22Z, the 12th point
  const std::string series = riptide::test::attribute_of(dom, "chart-memory", "data-series");
  const std::string span = first + "-" + last + "/12";
  EXPECT_EQ(series, span + " " + span + " " + span) << "RSS, heap and resident must cover the same points";
  EXPECT_EQ(riptide::test::attribute_of(dom, "chart-memory", "data-x-min"), first);
  EXPECT_EQ(riptide::test::attribute_of(dom, "chart-memory", "data-x-max"), last);
  EXPECT_EQ(riptide::test::attribute_of(dom, "chart-memory", "data-points"), "33");  // 12 + 12 + 9 figures

  EXPECT_EQ(riptide::test::attribute_of(dom, "fragmentation-table", "data-rows"), "7");
  const std::string steps = riptide::test::element_of(dom, "fragmentation-table", "table");
  EXPECT_NE(steps.find("+ dirty pages"), std::string::npos) << steps;
  EXPECT_NE(steps.find("250 MiB"), std::string::npos) << steps;
  EXPECT_NE(steps.find("900 MiB"), std::string::npos) << steps;  // RSS
  EXPECT_NE(riptide::test::element_of(dom, "size-classes-table", "table").find("10.0 %"), std::string::npos);
  EXPECT_EQ(riptide::test::attribute_of(dom, "fragmentation-advice", "data-items"), "1");
  EXPECT_NE(dom.find("62.5 % of resident holds no object"), std::string::npos);

  EXPECT_EQ(riptide::test::attribute_of(dom, "lifetimes-table", "data-rows"), "1");
  const std::string lifetimes = riptide::test::element_of(dom, "lifetimes-table", "table");
  EXPECT_NE(lifetimes.find("30 % ± 2"), std::string::npos) << lifetimes;  // the share with its sampling error
  EXPECT_NE(lifetimes.find("10.0 s"), std::string::npos) << lifetimes;    // p99 lifetime
  EXPECT_NE(dom.find("<span id=\"lifetimes-threshold\">100 ms</span>"), std::string::npos);
}
