// The example scraper's building blocks against real parts: gumbo parsing of generated pages, and the
// Beast origin server answering the keep-alive client over 127.0.0.1.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "scraper/ai_stage.hpp"
#include "scraper/html.hpp"
#include "scraper/site.hpp"
#include "scraper/transport.hpp"

namespace ex = riptide::example;

TEST(ExampleSite, PagesAreDeterministicPerSeed) {
  const ex::Site a{{.seed = 7}};
  const ex::Site b{{.seed = 7}};
  const ex::Site c{{.seed = 8}};
  EXPECT_EQ(a.generate_page(1, 17), b.generate_page(1, 17));
  EXPECT_NE(a.generate_page(1, 17), c.generate_page(1, 17));
}

TEST(ExampleSite, PageSizesVaryFromSmallToLarge) {
  const ex::Site site;
  std::size_t smallest = SIZE_MAX, largest = 0;
  for (std::uint32_t page = 0; page < 200; ++page) {
    const auto size = site.generate_page(page % 6, page).size();
    smallest = std::min(smallest, size);
    largest = std::max(largest, size);
  }
  EXPECT_LT(smallest, 8 * 1024U);
  EXPECT_GT(largest, 100 * 1024U);
}

TEST(ExampleSite, GumboExtractsTitleTextAndLinksAcrossHosts) {
  const ex::Site site;
  std::set<std::string> hosts;
  std::size_t links = 0;
  for (std::uint32_t page = 0; page < 30; ++page) {
    const ex::Url url{"news.example", "/page/" + std::to_string(page)};
    const auto parsed = ex::parse_html(site.generate_page(0, page), url);
    EXPECT_NE(parsed.title.find("news.example " + std::to_string(page)), std::string::npos) << parsed.title;
    EXPECT_GT(parsed.word_count, 50U);
    EXPECT_EQ(parsed.text.find("analytics"), std::string::npos) << "script content leaked into text";
    for (const auto& link : parsed.links) hosts.insert(link.host);
    links += parsed.links.size();
  }
  EXPECT_GT(links, 100U);
  EXPECT_GE(hosts.size(), 4U) << "links should cross hosts";
}

TEST(ExampleSite, RelativeLinksResolveAgainstThePage) {
  const auto parsed = ex::parse_html(
      "<a href=\"x\">1</a><a href=\"/y\">2</a><a href=\"http://o.example/z#f\">3</a><a href=\"mailto:a@b\">4</a>",
      ex::Url{"h.example", "/dir/page"});
  ASSERT_EQ(parsed.links.size(), 3U);
  EXPECT_EQ(parsed.links[0].to_string(), "http://h.example/dir/x");
  EXPECT_EQ(parsed.links[1].to_string(), "http://h.example/y");
  EXPECT_EQ(parsed.links[2].to_string(), "http://o.example/z");
}

TEST(ExampleSite, FlakyHostFailsOnPurposeAndSlowHostWaits) {
  const ex::Site site;
  int failures = 0;
  for (std::uint64_t i = 0; i < 1000; ++i) failures += site.serve("flaky.example", "/page/1", i).status == 503;
  EXPECT_GT(failures, 600);
  EXPECT_LT(failures, 800);
  EXPECT_GE(site.serve("slow.example", "/page/1", 0).delay.count(), 120);
  EXPECT_EQ(site.serve("news.example", "/page/1", 0).status, 200U);
  EXPECT_EQ(site.serve("nowhere.example", "/page/1", 0).status, 404U);
  EXPECT_EQ(site.serve("news.example", "/page/999999", 0).status, 404U);
}

TEST(ExampleSite, AiStageIsDeterministicAndFindsKeywords) {
  const ex::Site site;
  const auto parsed = ex::parse_html(site.generate_page(2, 3), {"blog.example", "/page/3"});
  const auto a = ex::run_ai_stage(parsed.text);
  const auto b = ex::run_ai_stage(parsed.text);
  EXPECT_EQ(a.embedding, b.embedding);
  ASSERT_FALSE(a.keywords.empty());
  EXPECT_NE(parsed.text.find(a.keywords.front()), std::string::npos);
}

TEST(ExampleTransport, KeepAliveClientFetchesTheSiteFromTheOrigin) {
  const ex::Site site;
  auto origin = ex::OriginServer::start(site);
  ASSERT_NE(origin->port(), 0);
  ex::FetchClient client{"127.0.0.1", origin->port()};
  for (std::uint32_t page = 0; page < 40; ++page) {
    const auto result = client.get({"docs.example", "/page/" + std::to_string(page)});
    ASSERT_TRUE(result.error.empty()) << result.error;
    ASSERT_EQ(result.status, 200U);
    EXPECT_EQ(result.body, site.generate_page(3, page));
    EXPECT_EQ(result.reused_connection, page != 0);
  }
  EXPECT_EQ(client.connections_opened(), 1U);
  EXPECT_EQ(
      client.get({"flaky.example", "/page/1"}).status == 503 || client.get({"flaky.example", "/page/1"}).status == 503,
      true);
  EXPECT_EQ(client.get({"docs.example", "/nope"}).status, 404U);
  EXPECT_GE(origin->requests_served(), 42U);
  origin->stop();
  const auto after = client.get({"docs.example", "/page/1"});
  EXPECT_EQ(after.status, 0U);
  EXPECT_FALSE(after.error.empty());
}
