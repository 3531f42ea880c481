#include "scraper/html.hpp"

#include <gumbo.h>

#include <memory>

namespace riptide::example {
namespace {

void append_collapsed(std::string& out, const char* text) {
  bool space = !out.empty() && out.back() != ' ';
  for (const char* p = text; *p != '\0'; ++p) {
    const char c = *p;
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f') {
      space = !out.empty();
      continue;
    }
    if (space && !out.empty() && out.back() != ' ') out += ' ';
    space = false;
    out += c;
  }
}

std::optional<Url> resolve(std::string_view href, const Url& base) {
  if (href.empty() || href.front() == '#') return std::nullopt;
  if (href.substr(0, 7) == "http://") return parse_url(href);
  if (href.find(':') != std::string_view::npos) return std::nullopt;  // mailto:, javascript:, https: ...
  if (href.substr(0, 2) == "//") return parse_url("http:" + std::string{href});
  std::string target;
  if (href.front() == '/') {
    target = href;
  } else {
    const auto slash = base.target.rfind('/');
    target = base.target.substr(0, slash == std::string::npos ? 0 : slash + 1);
    target += href;
  }
  return parse_url("http://" + base.host + target);
}

// Iterative walk: generated pages are shallow, but real HTML can nest deeply enough to hurt recursion.
void walk(const GumboNode* root, const Url& base, ParsedPage& page) {
  std::vector<const GumboNode*> stack{root};
  while (!stack.empty()) {
    const GumboNode* node = stack.back();
    stack.pop_back();
    if (node->type == GUMBO_NODE_TEXT) {
      append_collapsed(page.text, node->v.text.text);
      continue;
    }
    if (node->type != GUMBO_NODE_ELEMENT) continue;
    const GumboElement& element = node->v.element;
    if (element.tag == GUMBO_TAG_SCRIPT || element.tag == GUMBO_TAG_STYLE) continue;
    if (element.tag == GUMBO_TAG_TITLE) {
      for (unsigned i = 0; i < element.children.length; ++i) {
        const auto* child = static_cast<const GumboNode*>(element.children.data[i]);
        if (child->type == GUMBO_NODE_TEXT) append_collapsed(page.title, child->v.text.text);
      }
      continue;
    }
    if (element.tag == GUMBO_TAG_A) {
      if (const GumboAttribute* href = gumbo_get_attribute(&element.attributes, "href")) {
        if (auto url = resolve(href->value, base)) page.links.push_back(std::move(*url));
      }
    }
    // Push children in reverse so text comes out in document order.
    for (unsigned i = element.children.length; i > 0; --i) {
      stack.push_back(static_cast<const GumboNode*>(element.children.data[i - 1]));
    }
  }
}

}  // namespace

ParsedPage parse_html(std::string_view html, const Url& page_url) {
  const auto deleter = [](GumboOutput* output) { gumbo_destroy_output(&kGumboDefaultOptions, output); };
  std::unique_ptr<GumboOutput, decltype(deleter)> output{
      gumbo_parse_with_options(&kGumboDefaultOptions, html.data(), html.size()), deleter};
  ParsedPage page;
  if (output) walk(output->root, page_url, page);
  if (!page.text.empty()) {
    page.word_count = 1;
    for (const char c : page.text) page.word_count += c == ' ' ? 1 : 0;
  }
  return page;
}

}  // namespace riptide::example
