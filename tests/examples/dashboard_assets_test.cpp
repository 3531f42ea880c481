// The dashboard assets embedded at build time: every file is there with its content type, Chart.js is
// Debian's, and the static report inlines everything (no request leaves the file).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

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
