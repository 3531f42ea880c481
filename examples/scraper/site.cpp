#include "scraper/site.hpp"

#include <array>
#include <charconv>
#include <cmath>

namespace riptide::example {
namespace {

// A small fixed vocabulary keeps text realistic enough for tokenising without shipping a corpus.
constexpr std::array<std::string_view, 96> kWords = {
    "memory",  "latency", "cache",   "scraper",  "request",  "response", "profile", "allocator", "leak",    "heap",
    "arena",   "thread",  "socket",  "buffer",   "parser",   "token",    "page",    "link",      "host",    "crawler",
    "budget",  "target",  "metric",  "sample",   "growth",   "trend",    "breaker", "limit",     "permit",  "burst",
    "window",  "ratio",   "river",   "mountain", "harbor",   "forest",   "valley",  "meadow",    "island",  "canyon",
    "morning", "evening", "winter",  "summer",   "autumn",   "spring",   "storm",   "breeze",    "engine",  "signal",
    "circuit", "voltage", "current", "sensor",   "module",   "kernel",   "market",  "price",     "order",   "invoice",
    "product", "catalog", "review",  "rating",   "article",  "author",   "editor",  "chapter",   "section", "figure",
    "table",   "summary", "quickly", "slowly",   "steadily", "rarely",   "often",   "always",    "never",   "sometimes",
    "bright",  "quiet",   "narrow",  "ancient",  "modern",   "hidden",   "public",  "private",   "the",     "a",
    "of",      "and",     "to",      "in",       "with",     "for"};

constexpr std::string_view kHtmlType = "text/html; charset=utf-8";

std::uint64_t page_key(std::uint64_t seed, std::size_t host, std::uint64_t page) noexcept {
  return mix64(seed ^ mix64((static_cast<std::uint64_t>(host) << 40) ^ page));
}

// Page sizes follow a skewed mix like real sites: mostly small, some medium, a few large pages.
std::size_t page_size_bytes(std::uint64_t key) noexcept {
  const std::uint64_t r = mix64(key ^ 0x51e);
  const unsigned bucket = static_cast<unsigned>(r % 100);
  const std::uint64_t spread = r >> 8;
  if (bucket < 70) return 1024 + spread % (20 * 1024);
  if (bucket < 95) return 20 * 1024 + spread % (80 * 1024);
  return 100 * 1024 + spread % (156 * 1024);
}

void append_words(std::string& out, std::uint64_t& state, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    state = mix64(state);
    if (i != 0) out += ' ';
    out += kWords[state % kWords.size()];
  }
}

}  // namespace

std::uint64_t mix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::vector<HostProfile> SiteOptions::default_hosts() {
  using std::chrono::milliseconds;
  return {
      {"news.example", milliseconds{0}, 0.0},   {"shop.example", milliseconds{0}, 0.02},
      {"blog.example", milliseconds{0}, 0.0},   {"docs.example", milliseconds{0}, 0.0},
      {"slow.example", milliseconds{120}, 0.0}, {"flaky.example", milliseconds{5}, 0.7},
  };
}

std::optional<Url> parse_url(std::string_view text) {
  constexpr std::string_view kScheme = "http://";
  if (text.substr(0, kScheme.size()) != kScheme) return std::nullopt;
  text.remove_prefix(kScheme.size());
  const auto slash = text.find('/');
  std::string_view authority = text.substr(0, slash);
  std::string_view target = slash == std::string_view::npos ? std::string_view{"/"} : text.substr(slash);
  if (const auto colon = authority.find(':'); colon != std::string_view::npos) authority = authority.substr(0, colon);
  if (authority.empty()) return std::nullopt;
  for (const char c : text) {
    if (c <= ' ' || c == '"' || c == '<' || c == '>') return std::nullopt;
  }
  if (const auto hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
  return Url{std::string{authority}, std::string{target}};
}

Site::Site(SiteOptions options) : options_(std::move(options)) {}

std::optional<std::size_t> Site::host_index(std::string_view host) const {
  if (const auto colon = host.find(':'); colon != std::string_view::npos) host = host.substr(0, colon);
  for (std::size_t i = 0; i < options_.hosts.size(); ++i) {
    if (options_.hosts[i].name == host) return i;
  }
  return std::nullopt;
}

std::string Site::generate_page(std::size_t host_index, std::uint32_t page) const {
  const std::uint64_t key = page_key(options_.seed, host_index, page);
  const std::size_t target_size = page_size_bytes(key);
  const auto& host = options_.hosts[host_index].name;
  const std::uint32_t pages = options_.pages_per_host;
  std::uint64_t state = key;

  std::string html;
  html.reserve(target_size + 512);
  html += "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>";
  append_words(html, state, 4);
  html += " - " + host + " " + std::to_string(page);
  html += "</title><style>body{font-family:sans-serif}</style><script>var analytics={page:" + std::to_string(page) +
          "};</script></head>\n<body><nav><a href=\"/\">home</a> <a href=\"/page/0\">index</a></nav>\n<main>\n";

  // Links: mostly same host, about a third across hosts, so every host is reached from every other.
  state = mix64(state);
  const std::size_t link_count = 4 + state % 28;
  std::size_t links_written = 0;
  while (html.size() < target_size || links_written < link_count) {
    html += "<h2>";
    append_words(html, state, 3);
    html += "</h2>\n<p>";
    append_words(html, state, 40 + state % 80);
    if (links_written < link_count) {
      state = mix64(state);
      const std::uint32_t to_page = static_cast<std::uint32_t>((state >> 8) % pages);
      if (state % 3 == 0) {
        const auto& other = options_.hosts[(state >> 40) % options_.hosts.size()].name;
        html += " <a href=\"http://" + other + "/page/" + std::to_string(to_page) + "\">";
      } else {
        html += " <a href=\"/page/" + std::to_string(to_page) + "\">";
      }
      append_words(html, state, 2);
      html += "</a> ";
      ++links_written;
    }
    append_words(html, state, 10);
    html += ".</p>\n";
  }
  html += "</main><footer>generated by riptide example site, seed " + std::to_string(options_.seed) +
          "</footer></body></html>\n";
  return html;
}

SiteResponse Site::serve(std::string_view host, std::string_view target, std::uint64_t request_number) const {
  const auto index = host_index(host);
  if (!index) return {404, "text/plain", "unknown host\n", std::chrono::milliseconds{0}};
  const HostProfile& profile = options_.hosts[*index];

  std::chrono::milliseconds delay = profile.delay;
  const std::uint64_t draw = mix64(options_.seed ^ mix64(request_number * 0x100 + *index));
  if (delay.count() > 0) delay += std::chrono::milliseconds{static_cast<long long>(draw % (delay.count() / 2 + 1))};
  if (profile.failure_rate > 0.0 && static_cast<double>(draw >> 11) * 0x1.0p-53 < profile.failure_rate) {
    return {503, "text/plain", "service unavailable (failure on purpose)\n", delay};
  }

  std::uint32_t page = 0;
  if (target == "/" || target.empty()) {
    page = 0;
  } else if (target.substr(0, 6) == "/page/") {
    const std::string_view digits = target.substr(6);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), page);
    if (ec != std::errc{} || end != digits.data() + digits.size() || page >= options_.pages_per_host) {
      return {404, "text/plain", "no such page\n", delay};
    }
  } else {
    return {404, "text/plain", "no such page\n", delay};
  }
  return {200, std::string{kHtmlType}, generate_page(*index, page), delay};
}

std::vector<Url> Site::seed_urls() const {
  std::vector<Url> urls;
  for (const auto& host : options_.hosts) urls.push_back({host.name, "/page/0"});
  return urls;
}

Url Site::random_url(std::uint64_t draw) const {
  const std::uint64_t r = mix64(options_.seed ^ draw);
  const auto& host = options_.hosts[r % options_.hosts.size()].name;
  return {host, "/page/" + std::to_string((r >> 16) % options_.pages_per_host)};
}

}  // namespace riptide::example
