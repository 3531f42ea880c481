// PrometheusWriter over prometheus-cpp: the text its serializer renders, the integer range kept exact, the
// naming rules, and the families handed to a host's prometheus-cpp setup through FunctionCollectable.
#include <gtest/gtest.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "riptide/performance/core/prometheus_collectable.hpp"
#include "riptide/performance/core/prometheus_writer.hpp"

namespace rp = riptide::performance;

namespace {

// What `promtool check metrics` says about `text`; empty when promtool is not installed.
struct Promtool {
  bool ran = false;
  int status = 0;
  std::string output;
};

Promtool promtool_check(const std::string& text) {
  Promtool result;
  const char* promtool = std::getenv("RIPTIDE_PERF_TEST_PROMTOOL");
  if (promtool == nullptr || *promtool == '\0' || !std::filesystem::exists(promtool)) return result;
  const auto path =
      std::filesystem::temp_directory_path() / ("prometheus_writer_" + std::to_string(::getpid()) + ".prom");
  std::ofstream(path) << text;
  const std::string command = std::string(promtool) + " check metrics < " + path.string() + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) result.output += buffer;
  result.status = ::pclose(pipe);
  result.ran = true;
  std::filesystem::remove(path);
  return result;
}

void write_cache_families(rp::PrometheusWriter& out) {
  out.family("cache_hits_total", rp::MetricType::counter, "Lookups that found the key.");
  out.sample(std::uint64_t{1234}, {{"cache", "sessions"}});
  out.family("cache_hit_ratio", rp::MetricType::gauge, "Hits over lookups.");
  out.sample(0.75, {{"cache", "sessions"}});
}

}  // namespace

TEST(PrometheusWriter, RendersFamiliesThroughTheTextSerializer) {
  rp::PrometheusWriter out;
  out.family("requests_total", rp::MetricType::counter, "Requests served.\nSecond line \\ backslash");
  out.sample(std::uint64_t{42}, {{"endpoint", "/a\"b\\c\nd"}, {"method", "GET"}});
  out.family("memory_resident_bytes", rp::MetricType::gauge, "Resident memory.");
  out.sample(1.5);
  out.sample(-0.25, {{"kind", "negative"}});
  out.sample(std::numeric_limits<double>::quiet_NaN(), {{"kind", "nan"}});
  out.sample(std::numeric_limits<double>::infinity(), {{"kind", "inf"}});
  out.sample(-std::numeric_limits<double>::infinity(), {{"kind", "-inf"}});
  out.family("build_info", rp::MetricType::untyped, "Untyped families keep their type line.");
  out.sample(1.0);
  EXPECT_EQ(out.text(),
            "# HELP riptide_requests_total Requests served.\\nSecond line \\\\ backslash\n"
            "# TYPE riptide_requests_total counter\n"
            "riptide_requests_total{endpoint=\"/a\\\"b\\\\c\\nd\",method=\"GET\"} 42\n"
            "# HELP riptide_memory_resident_bytes Resident memory.\n"
            "# TYPE riptide_memory_resident_bytes gauge\n"
            "riptide_memory_resident_bytes 1.5\n"
            "riptide_memory_resident_bytes{kind=\"negative\"} -0.25\n"
            "riptide_memory_resident_bytes{kind=\"nan\"} Nan\n"
            "riptide_memory_resident_bytes{kind=\"inf\"} +Inf\n"
            "riptide_memory_resident_bytes{kind=\"-inf\"} -Inf\n"
            "# HELP riptide_build_info Untyped families keep their type line.\n"
            "# TYPE riptide_build_info untyped\n"
            "riptide_build_info 1\n");

  const Promtool check = promtool_check(out.text());
  if (!check.ran) GTEST_SKIP() << "promtool not found: the text was checked, its format was not";
  EXPECT_EQ(check.status, 0) << check.output << "\n" << out.text();
}

TEST(PrometheusWriter, TextIsRenderedAgainAfterEveryChange) {
  rp::PrometheusWriter out;
  EXPECT_EQ(out.text(), "");
  out.family("a_bytes", rp::MetricType::gauge, "A.");
  EXPECT_EQ(out.text(), "# HELP riptide_a_bytes A.\n# TYPE riptide_a_bytes gauge\n");
  out.sample(std::uint64_t{7});
  EXPECT_EQ(out.text(), "# HELP riptide_a_bytes A.\n# TYPE riptide_a_bytes gauge\nriptide_a_bytes 7\n");
}

TEST(PrometheusWriter, IntegersAreExactUpToTwoToThe53) {
  constexpr std::uint64_t kExactLimit = std::uint64_t{1} << 53;
  rp::PrometheusWriter out;
  out.family("allocated_bytes_total", rp::MetricType::counter, "Bytes.");
  out.sample(std::uint64_t{0}, {{"v", "zero"}});
  out.sample(std::uint64_t{999'999'999'999'999}, {{"v", "15 digits"}});
  out.sample(kExactLimit - 1, {{"v", "below"}});
  out.sample(kExactLimit, {{"v", "limit"}});
  // Beyond 2^53 a sample is a double: 2^53 + 1 has no double of its own and rounds to 2^53; the largest
  // integers also lose digits to the serializer's 16 significant ones.
  out.sample(kExactLimit + 1, {{"v", "above"}});
  out.sample(std::numeric_limits<std::uint64_t>::max(), {{"v", "max"}});
  const std::string& text = out.text();
  EXPECT_NE(text.find("riptide_allocated_bytes_total{v=\"zero\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("{v=\"15 digits\"} 999999999999999\n"), std::string::npos) << text;
  EXPECT_NE(text.find("{v=\"below\"} 9007199254740991\n"), std::string::npos) << text;
  EXPECT_NE(text.find("{v=\"limit\"} 9007199254740992\n"), std::string::npos) << text;
  EXPECT_NE(text.find("{v=\"above\"} 9007199254740992\n"), std::string::npos) << text;
  EXPECT_NE(text.find("{v=\"max\"} 1.844674407370955e+19\n"), std::string::npos) << text;
}

TEST(PrometheusWriter, DoublesKeepSixteenSignificantDigits) {
  rp::PrometheusWriter out;
  out.family("latency_seconds", rp::MetricType::gauge, "Seconds.");
  out.sample(0.1, {{"v", "short"}});
  out.sample(123456789.123456789, {{"v", "long"}});
  out.sample(1e-9, {{"v", "small"}});
  out.sample(1e21, {{"v", "large"}});
  const std::string& text = out.text();
  EXPECT_NE(text.find("{v=\"short\"} 0.1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("{v=\"long\"} 123456789.1234568\n"), std::string::npos) << text;
  EXPECT_NE(text.find("{v=\"small\"} 1e-09\n"), std::string::npos) << text;
  EXPECT_NE(text.find("{v=\"large\"} 1e+21\n"), std::string::npos) << text;
}

TEST(PrometheusWriter, EnforcesNamingRules) {
  rp::PrometheusWriter out;
  EXPECT_THROW(out.sample(1.0), std::logic_error);
  EXPECT_THROW(out.family("requests", rp::MetricType::counter, "x"), std::invalid_argument);
  EXPECT_THROW(out.family("things_total", rp::MetricType::gauge, "x"), std::invalid_argument);
  EXPECT_THROW(out.family("bad-name", rp::MetricType::gauge, "x"), std::invalid_argument);
  out.family("ok_bytes", rp::MetricType::gauge, "x");
  EXPECT_THROW(out.family("ok_bytes", rp::MetricType::gauge, "x"), std::invalid_argument);
  EXPECT_THROW(out.sample(1.0, {{"__reserved", "x"}}), std::invalid_argument);
  EXPECT_THROW(out.sample(1.0, {{"1abc", "x"}}), std::invalid_argument);
  // A rejected sample leaves nothing behind.
  EXPECT_EQ(out.text(), "# HELP riptide_ok_bytes x\n# TYPE riptide_ok_bytes gauge\n");

  rp::PrometheusWriter custom("host_");
  custom.family("queue_depth", rp::MetricType::gauge, "Depth.");
  custom.sample(std::uint64_t{3});
  EXPECT_EQ(custom.text(), "# HELP host_queue_depth Depth.\n# TYPE host_queue_depth gauge\nhost_queue_depth 3\n");
}

TEST(PrometheusWriter, AppendedExpositionFollowsTheFamiliesAndJoinsTheNameCheck) {
  rp::PrometheusWriter out;
  out.family("a_bytes", rp::MetricType::gauge, "A.");
  out.sample(1.0);
  out.append_exposition("# HELP other_up Up.\n# TYPE other_up gauge\nother_up 1");
  // The appended text closes the family before it.
  EXPECT_THROW(out.sample(2.0), std::logic_error);
  out.family("b_bytes", rp::MetricType::gauge, "B.");
  out.sample(2.0);
  EXPECT_EQ(out.text(),
            "# HELP riptide_a_bytes A.\n# TYPE riptide_a_bytes gauge\nriptide_a_bytes 1\n"
            "# HELP riptide_b_bytes B.\n# TYPE riptide_b_bytes gauge\nriptide_b_bytes 2\n"
            "# HELP other_up Up.\n# TYPE other_up gauge\nother_up 1\n");
  EXPECT_THROW(out.append_exposition("# TYPE riptide_a_bytes gauge\nriptide_a_bytes 3\n"), std::invalid_argument);
  EXPECT_THROW(out.append_exposition("# TYPE other_up gauge\n"), std::invalid_argument);
}

TEST(PrometheusWriter, MovesOut) {
  rp::PrometheusWriter first;
  write_cache_families(first);
  rp::PrometheusWriter second = std::move(first);
  EXPECT_NE(second.text().find("riptide_cache_hit_ratio{cache=\"sessions\"} 0.75\n"), std::string::npos);
}

TEST(PrometheusCollectable, MetricFamiliesCarryNamesTypesHelpAndValues) {
  rp::PrometheusWriter out;
  write_cache_families(out);
  const std::vector<prometheus::MetricFamily> families = rp::metric_families(std::move(out));
  ASSERT_EQ(families.size(), 2U);
  EXPECT_EQ(families[0].name, "riptide_cache_hits_total");
  EXPECT_EQ(families[0].type, prometheus::MetricType::Counter);
  EXPECT_EQ(families[0].help, "Lookups that found the key.");
  ASSERT_EQ(families[0].metric.size(), 1U);
  EXPECT_EQ(families[0].metric[0].counter.value, 1234.0);
  ASSERT_EQ(families[0].metric[0].label.size(), 1U);
  EXPECT_EQ(families[0].metric[0].label[0].name, "cache");
  EXPECT_EQ(families[0].metric[0].label[0].value, "sessions");
  EXPECT_EQ(families[1].name, "riptide_cache_hit_ratio");
  EXPECT_EQ(families[1].type, prometheus::MetricType::Gauge);
  ASSERT_EQ(families[1].metric.size(), 1U);
  EXPECT_EQ(families[1].metric[0].gauge.value, 0.75);
}

TEST(PrometheusCollectable, RawExpositionHasNoFamilyForm) {
  rp::PrometheusWriter out;
  write_cache_families(out);
  out.append_exposition("# TYPE other_up gauge\nother_up 1\n");
  EXPECT_THROW((void)rp::metric_families(std::move(out)), std::logic_error);
}

TEST(PrometheusCollectable, CollectRunsTheWriterAtEveryScrape) {
  std::uint64_t hits = 0;
  const rp::FunctionCollectable collectable([&hits](rp::PrometheusWriter& out) {
    out.family("cache_hits_total", rp::MetricType::counter, "Lookups that found the key.");
    out.sample(hits);
  });
  hits = 5;
  auto families = collectable.Collect();
  ASSERT_EQ(families.size(), 1U);
  ASSERT_EQ(families[0].metric.size(), 1U);
  EXPECT_EQ(families[0].metric[0].counter.value, 5.0);
  hits = 8;
  families = collectable.Collect();  // a fresh writer each time: no "written twice"
  ASSERT_EQ(families.size(), 1U);
  EXPECT_EQ(families[0].metric[0].counter.value, 8.0);

  const rp::FunctionCollectable broken(
      [](rp::PrometheusWriter& out) { out.family("requests", rp::MetricType::counter, "No _total."); });
  EXPECT_THROW((void)broken.Collect(), std::invalid_argument);
}

// A host that already serves prometheus-cpp metrics adds every riptide family with one registration:
// its exposer (or push gateway) concatenates the collectables it holds, in registration order, and
// serializes them with TextSerializer. That collection is reproduced here without the HTTP part.
TEST(PrometheusCollectable, JoinsAHostsPrometheusCppMetrics) {
  const auto registry = std::make_shared<prometheus::Registry>();
  auto& jobs = prometheus::BuildCounter().Name("host_jobs_total").Help("Jobs the host ran.").Register(*registry);
  jobs.Add({{"queue", "default"}}).Increment(3);

  const auto riptide = std::make_shared<rp::FunctionCollectable>(&write_cache_families);
  const std::vector<std::weak_ptr<prometheus::Collectable>> collectables{registry, riptide};

  std::vector<prometheus::MetricFamily> scraped;
  for (const auto& weak : collectables) {
    const auto collectable = weak.lock();
    ASSERT_NE(collectable, nullptr);
    auto families = collectable->Collect();
    scraped.insert(scraped.end(), std::make_move_iterator(families.begin()), std::make_move_iterator(families.end()));
  }
  const std::string text = prometheus::TextSerializer().Serialize(scraped);

  EXPECT_NE(text.find("# TYPE host_jobs_total counter\nhost_jobs_total{queue=\"default\"} 3\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("# HELP riptide_cache_hits_total Lookups that found the key.\n"
                      "# TYPE riptide_cache_hits_total counter\n"
                      "riptide_cache_hits_total{cache=\"sessions\"} 1234\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE riptide_cache_hit_ratio gauge\nriptide_cache_hit_ratio{cache=\"sessions\"} 0.75\n"),
            std::string::npos)
      << text;
  // The same families as the writer's own text: one code path for /metrics and for the host's exposer.
  rp::PrometheusWriter direct;
  write_cache_families(direct);
  EXPECT_NE(text.find(direct.text()), std::string::npos) << text;

  const Promtool check = promtool_check(text);
  if (!check.ran) GTEST_SKIP() << "promtool not found: the text was checked, its format was not";
  EXPECT_EQ(check.status, 0) << check.output << "\n" << text;
}
