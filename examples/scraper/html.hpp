#pragma once
// HTML parsing for the example scraper with gumbo (a real HTML5 parser, Debian libgumbo-dev): the
// title, the visible text and the links of a page, resolved against the page's own URL.

#include <string>
#include <string_view>
#include <vector>

#include "scraper/site.hpp"

namespace riptide::example {

struct ParsedPage {
  std::string title;           ///< text of <title>, whitespace collapsed
  std::string text;            ///< visible text (script and style skipped), whitespace collapsed
  std::vector<Url> links;      ///< http links of <a href>, resolved against the page URL, fragments dropped
  std::size_t word_count = 0;  ///< words in `text`
};

/// Parses `html` fetched from `page_url`. Relative links ("/x", "x") resolve against it; links to other
/// schemes (mailto:, javascript:) are dropped.
[[nodiscard]] ParsedPage parse_html(std::string_view html, const Url& page_url);

}  // namespace riptide::example
