#include "riptide/performance/core/uuid.hpp"

#include <gtest/gtest.h>

#include <set>

namespace rp = riptide::performance;

TEST(Uuid, MakesDistinctVersion4Ids) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto id = rp::make_uuid_v4();
    ASSERT_TRUE(rp::is_uuid_v4(id)) << id;
    ASSERT_EQ(id[14], '4');
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000U);
}

TEST(Uuid, ValidatorRefusesOtherShapes) {
  EXPECT_TRUE(rp::is_uuid_v4("550e8400-e29b-41d4-a716-446655440000"));
  EXPECT_FALSE(rp::is_uuid_v4("550e8400-e29b-11d4-a716-446655440000"));  // version 1
  EXPECT_FALSE(rp::is_uuid_v4("550e8400-e29b-41d4-c716-446655440000"));  // wrong variant
  EXPECT_FALSE(rp::is_uuid_v4("550e8400e29b41d4a716446655440000"));
  EXPECT_FALSE(rp::is_uuid_v4("550e8400-e29b-41d4-a716-44665544000g"));
  EXPECT_FALSE(rp::is_uuid_v4(""));
}
