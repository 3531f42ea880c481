// AttributionRules and SiteLocation: what counts as runtime code, how a site is named and grouped, and that
// a real stack through std::vector's growth is charged to the calling line.
#include <gtest/gtest.h>

#include <dlfcn.h>

#include <cstdint>
#include <string>
#include <vector>

#include "riptide/performance/profiling/site_attribution.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"

namespace rp = riptide::performance;

TEST(AttributionRules, RuntimeFunctionsPathsAndModules) {
  const auto& rules = rp::AttributionRules::defaults();
  EXPECT_TRUE(rules.is_runtime_function("std::vector<std::string>::_M_realloc_insert"));
  EXPECT_TRUE(rules.is_runtime_function("operator new"));
  EXPECT_TRUE(rules.is_runtime_function("malloc"));
  EXPECT_TRUE(rules.is_runtime_function("riptide::performance::TieredCache::put"));
  EXPECT_FALSE(rules.is_runtime_function("malloc_wrapper"));  // the C names match whole
  EXPECT_FALSE(rules.is_runtime_function("free_list_push"));
  EXPECT_FALSE(rules.is_runtime_function("retain_parsed_documents"));
  EXPECT_FALSE(rules.is_runtime_function("scraper::standard_headers"));
  EXPECT_TRUE(rules.is_runtime_path("/usr/include/c++/12/bits/new_allocator.h"));
  EXPECT_FALSE(rules.is_runtime_path("/src/app/main.cpp"));
  EXPECT_TRUE(rules.is_runtime_module("/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30"));
  EXPECT_TRUE(rules.is_runtime_module("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"));
  EXPECT_FALSE(rules.is_runtime_module("/opt/app/bin/scraper"));
}

TEST(SiteLocation, NamesAndKeys) {
  rp::SiteLocation site;
  site.function = "retain_parsed_documents(unsigned long)";
  site.display_name = "retain_parsed_documents";
  site.file = "/src/app/main.cpp";
  site.line = 39;
  site.module = "/opt/app/bin/app";
  site.address = 0x1234;
  site.has_symbol = true;
  EXPECT_EQ(site.location(), "retain_parsed_documents (/src/app/main.cpp:39)");
  rp::SiteLocation same_line = site;
  same_line.address = 0x5678;  // another inlined copy, or another library path into the same line
  EXPECT_EQ(site.key(), same_line.key());
  rp::SiteLocation next_line = site;
  next_line.line = 40;
  EXPECT_NE(site.key(), next_line.key());
  rp::SiteLocation unnamed;
  unnamed.function = unnamed.display_name = "0x7f0000001000";
  unnamed.module = "/usr/lib/libfoo.so";
  unnamed.address = 0x7f0000001000;
  EXPECT_EQ(unnamed.location(), "0x7f0000001000 (libfoo.so)");
}

namespace {

// The return address of the call into it: the frame a heap profile holds for the calling line.
[[gnu::noinline]] std::uint64_t return_address() {
  return reinterpret_cast<std::uint64_t>(__builtin_return_address(0));
}

}  // namespace

TEST(SiteAttribution, AStackIsChargedToTheFirstFrameOutsideTheRuntime) {
  rp::Symbolizer symbolizer;
  const std::uint64_t here = return_address();
  const auto line = static_cast<std::uint32_t>(__LINE__ - 1);
  // An allocator frame first: an address inside an exported libstdc++ function (Debian's is stripped:
  // named from .dynsym, classified by its module).
  void* libstdcxx = ::dlopen("libstdc++.so.6", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(libstdcxx, nullptr);
  void* runtime = ::dlsym(libstdcxx, "_ZSt20__throw_length_errorPKc");
  ::dlclose(libstdcxx);
  ASSERT_NE(runtime, nullptr);
  const std::vector<std::uint64_t> frames{reinterpret_cast<std::uint64_t>(runtime) + 4, here};
  const rp::SiteLocation site = rp::attribute_stack(frames, symbolizer);
  EXPECT_NE(site.function.find("AStackIsChargedToTheFirstFrameOutsideTheRuntime"), std::string::npos)
      << site.location();
  EXPECT_EQ(site.line, line) << site.location();
  EXPECT_NE(site.file.find("site_attribution_test.cpp"), std::string::npos) << site.file;
  EXPECT_EQ(site.address, here);
  // Nothing but runtime code: charged to the outermost frame, so nothing is lost.
  const std::vector<std::uint64_t> runtime_only{reinterpret_cast<std::uint64_t>(runtime) + 4};
  EXPECT_EQ(rp::attribute_stack(runtime_only, symbolizer).address, runtime_only.front());
}
