#include "workload.hpp"

#include <algorithm>
#include <functional>
#include <string_view>
#include <utility>

namespace riptide::overhead {

namespace ex = riptide::example;

std::vector<PageJob> make_page_list(const ex::Site& site, std::uint64_t seed, std::size_t count) {
  const auto hosts = site.options().hosts.size();
  const auto pages = site.options().pages_per_host;
  std::vector<PageJob> jobs;
  jobs.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint64_t draw = ex::mix64(seed ^ ex::mix64(i));
    jobs.push_back({static_cast<std::size_t>(draw % hosts), static_cast<std::uint32_t>((draw >> 20) % pages)});
  }
  return jobs;
}

std::string PageProcessor::url_of(const PageJob& job) const {
  return "http://" + site_.options().hosts[job.host_index].name + "/page/" + std::to_string(job.page);
}

std::string PageProcessor::fetch(const PageJob& job) const {
  return site_.generate_page(job.host_index, job.page);
}

ex::ParsedPage PageProcessor::parse(const std::string& html, const PageJob& job) const {
  const ex::Url url{site_.options().hosts[job.host_index].name, "/page/" + std::to_string(job.page)};
  return ex::parse_html(html, url);
}

PageResult PageProcessor::extract(const ex::ParsedPage& parsed, const PageJob& job, std::size_t html_bytes) {
  const std::string& host = site_.options().hosts[job.host_index].name;
  if (++pages_ % kResetEvery == 0) {
    seen_links_.clear();
    hosts_.clear();
  }

  // Links: absolute URL strings into the seen set, a tally of which hosts this host links to.
  HostTally& tally = hosts_[host];
  ++tally.pages;
  tally.bytes += html_bytes;
  std::size_t new_links = 0;
  for (const auto& link : parsed.links) {
    if (++seen_links_[link.to_string()] == 1) ++new_links;
    if (link.host != host) ++tally.linked_hosts[link.host];
  }
  tally.outbound_links += parsed.links.size();

  // Words: frequency of each word of the visible text, then the most frequent as keywords.
  std::unordered_map<std::string, std::uint32_t> counts;
  std::string_view text = parsed.text;
  while (!text.empty()) {
    const auto end = text.find(' ');
    const std::string_view word = text.substr(0, end);
    if (word.size() > 3) ++counts[std::string{word}];
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  std::vector<std::pair<std::string, std::uint32_t>> ranked(counts.begin(), counts.end());
  const auto top = std::min<std::size_t>(8, ranked.size());
  std::partial_sort(
      ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(top), ranked.end(),
      [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });

  // The record: only facts of this page go in, so it (and the checksum) is the same in every run.
  std::string record = "{\"url\":\"" + url_of(job) + "\",\"title\":\"" + parsed.title +
                       "\",\"bytes\":" + std::to_string(html_bytes) +
                       ",\"words\":" + std::to_string(parsed.word_count) + ",\"links\":[";
  for (std::size_t i = 0; i < parsed.links.size(); ++i) {
    if (i != 0) record += ',';
    record += '"' + parsed.links[i].to_string() + '"';
  }
  record += "],\"keywords\":[";
  for (std::size_t i = 0; i < top; ++i) {
    if (i != 0) record += ',';
    record += '"' + ranked[i].first + "\":" + std::to_string(ranked[i].second);
  }
  record += "]}";

  PageResult result;
  result.checksum = ex::mix64(std::hash<std::string>{}(record));
  result.links = parsed.links.size();
  result.record = std::move(record);
  (void)new_links;
  return result;
}

}  // namespace riptide::overhead
