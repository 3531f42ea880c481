#pragma once
// Field presence-and-type assertions for the endpoint tests.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>
#include <string>

#include "http/support/http_client.hpp"

namespace riptide::performance::test {

inline void expect_uint(const nlohmann::json& body, const char* field) {
  ASSERT_TRUE(body.contains(field)) << "missing " << field << " in " << body.dump();
  EXPECT_TRUE(body[field].is_number_unsigned()) << field << " = " << body[field].dump();
}

inline void expect_number(const nlohmann::json& body, const char* field) {
  ASSERT_TRUE(body.contains(field)) << "missing " << field << " in " << body.dump();
  EXPECT_TRUE(body[field].is_number()) << field << " = " << body[field].dump();
}

inline void expect_string(const nlohmann::json& body, const char* field) {
  ASSERT_TRUE(body.contains(field)) << "missing " << field << " in " << body.dump();
  EXPECT_TRUE(body[field].is_string()) << field << " = " << body[field].dump();
}

inline void expect_array(const nlohmann::json& body, const char* field) {
  ASSERT_TRUE(body.contains(field)) << "missing " << field << " in " << body.dump();
  EXPECT_TRUE(body[field].is_array()) << field << " = " << body[field].dump();
}

inline void expect_timestamp(const nlohmann::json& body, const char* field) {
  expect_string(body, field);
  if (!body.contains(field) || !body[field].is_string()) return;
  static const std::regex kRfc3339(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z)");
  EXPECT_TRUE(std::regex_match(body[field].get<std::string>(), kRfc3339)) << field << " = " << body[field];
}

/// The response is the library's JSON error: `status`, {"error": {"code": `code`, "message": ...}}, and the
/// message contains `says` (any message when empty).
inline void expect_json_error(const HttpResponse& response, int status, const std::string& code,
                              const std::string& says = {}) {
  EXPECT_EQ(response.status, status) << response.body;
  const nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << response.body;
  EXPECT_EQ(body["error"]["code"], code) << response.body;
  ASSERT_TRUE(body["error"]["message"].is_string()) << response.body;
  EXPECT_NE(body["error"]["message"].get<std::string>().find(says), std::string::npos) << response.body;
}

}  // namespace riptide::performance::test
