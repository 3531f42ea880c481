#include "riptide/performance/http/message.hpp"

#include <nlohmann/json.hpp>

namespace riptide::performance::http {
namespace {

char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::optional<std::string_view> find_header(const std::vector<Header>& headers, std::string_view name) noexcept {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return std::string_view{value};
  }
  return std::nullopt;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::optional<std::string_view> Request::header(std::string_view name) const noexcept {
  return find_header(headers, name);
}

std::string_view Request::path() const noexcept {
  const std::string_view view{target};
  return view.substr(0, view.find('?'));
}

std::string_view Request::query() const noexcept {
  const std::string_view view{target};
  const auto mark = view.find('?');
  return mark == std::string_view::npos ? std::string_view{} : view.substr(mark + 1);
}

void Response::set_header(std::string_view name, std::string value) {
  for (auto& [key, existing] : headers) {
    if (iequals(key, name)) {
      existing = std::move(value);
      return;
    }
  }
  headers.emplace_back(std::string{name}, std::move(value));
}

std::optional<std::string_view> Response::header(std::string_view name) const noexcept {
  return find_header(headers, name);
}

Response json_response(const nlohmann::json& body, int status) {
  Response response;
  response.status = status;
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

Response error_response(int status, std::string_view code, std::string_view message) {
  nlohmann::json body;
  body["error"]["code"] = code;
  body["error"]["message"] = message;
  return json_response(body, status);
}

}  // namespace riptide::performance::http
