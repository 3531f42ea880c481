// The symbolizer on the live process: inline chains (the line in the caller's own function), modules
// loaded with dlopen after the Dwfl session began, addresses in no loaded object, stripped system
// libraries (.dynsym only), and readable_function_name over real demangled names.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "riptide/performance/profiling/enable_heap_profiling.hpp"
#include "riptide/performance/profiling/heap_profile.hpp"
#include "riptide/performance/profiling/symbolizer.hpp"

RIPTIDE_PERF_ENABLE_HEAP_PROFILING_WITH("prof:true,prof_active:true,lg_prof_sample:19,prof_accum:true");

namespace rp = riptide::performance;

// --- An inline chain of known lines: user_function -> inlined_outer -> inlined_helper -> capture.

extern "C++" __attribute__((noinline)) void* symbolizer_test_capture() {
  void* address = __builtin_return_address(0);
  asm volatile("" : : "r"(address) : "memory");
  return address;
}

int g_helper_call_line = 0;
int g_outer_call_line = 0;
int g_user_call_line = 0;

namespace symbolizer_test {

[[gnu::always_inline]] inline void* inlined_helper(std::vector<int>& work) {
  work.push_back(static_cast<int>(work.size()));
  g_helper_call_line = __LINE__ + 1;
  void* address = symbolizer_test_capture();
  asm volatile("" : : "r"(address) : "memory");
  return address;
}

[[gnu::always_inline]] inline void* inlined_outer(std::vector<int>& work) {
  g_outer_call_line = __LINE__ + 1;
  void* address = inlined_helper(work);
  work.push_back(1);
  return address;
}

[[gnu::noinline]] void* user_function(std::size_t count) {
  std::vector<int> work;
  work.reserve(count);
  auto* text = new std::string(count, 'x');
  g_user_call_line = __LINE__ + 1;
  void* address = inlined_outer(work);
  asm volatile("" : : "r"(address), "r"(text) : "memory");
  delete text;
  return address;
}

}  // namespace symbolizer_test

TEST(SymbolizerInlineChain, NamesTheLineInEveryFunctionTheCodeWasInlinedInto) {
  rp::Symbolizer symbolizer;
  const auto address = reinterpret_cast<std::uintptr_t>(symbolizer_test::user_function(4));
  const auto frame = symbolizer.resolve(address);
  ASSERT_TRUE(frame->has_symbol) << frame->location();
  EXPECT_EQ(frame->function, "symbolizer_test::user_function(unsigned long)");
  // file:line keep their meaning: the line table's line, inside the innermost inlined function.
  EXPECT_TRUE(frame->file.ends_with("symbolizer_test.cpp")) << frame->file;
  EXPECT_EQ(frame->line, static_cast<std::uint32_t>(g_helper_call_line));

  const auto& chain = frame->inline_chain;
  ASSERT_EQ(chain.size(), 3U);
  EXPECT_EQ(chain[0].function, "symbolizer_test::inlined_helper(std::vector<int, std::allocator<int> >&)");
  EXPECT_EQ(chain[0].file, frame->file);
  EXPECT_EQ(chain[0].line, frame->line);
  EXPECT_EQ(chain[1].function, "symbolizer_test::inlined_outer(std::vector<int, std::allocator<int> >&)");
  EXPECT_TRUE(chain[1].file.ends_with("symbolizer_test.cpp")) << chain[1].file;
  EXPECT_EQ(chain[1].line, static_cast<std::uint32_t>(g_outer_call_line));
  EXPECT_EQ(chain[2].function, frame->function);
  EXPECT_TRUE(chain[2].file.ends_with("symbolizer_test.cpp")) << chain[2].file;
  EXPECT_EQ(chain[2].line, static_cast<std::uint32_t>(g_user_call_line)) << "the line in the user's own function";
  EXPECT_EQ(rp::readable_function_name(chain[0].function), "symbolizer_test::inlined_helper");
}

extern "C++" __attribute__((noinline)) void* symbolizer_test_not_inlined() {
  void* address = symbolizer_test_capture();
  asm volatile("" : : "r"(address) : "memory");
  return address;
}

TEST(SymbolizerInlineChain, IsTheFunctionAloneWithoutInlining) {
  rp::Symbolizer symbolizer;
  const auto frame = symbolizer.resolve(reinterpret_cast<std::uintptr_t>(symbolizer_test_not_inlined()));
  ASSERT_EQ(frame->inline_chain.size(), 1U);
  EXPECT_EQ(frame->inline_chain[0].function, "symbolizer_test_not_inlined()");
  EXPECT_EQ(frame->inline_chain[0].file, frame->file);
  EXPECT_EQ(frame->inline_chain[0].line, frame->line);
  EXPECT_GT(frame->line, 0U);
  // No symbol: no chain.
  EXPECT_TRUE(symbolizer.resolve(0x10)->inline_chain.empty());
}

// --- Modules loaded after the session began, and addresses in no module.

namespace {

using ModuleFunction = void* (*)();
using ModuleLine = int (*)();

}  // namespace

TEST(SymbolizerModules, ModuleLoadedAfterTheFirstLookupsIsNamedWithItsFunctionAndLine) {
  rp::Symbolizer symbolizer;
  // The session reads the process's modules now, before the module exists, and an address in no object
  // is cached as such.
  const auto before = symbolizer.resolve(reinterpret_cast<std::uintptr_t>(symbolizer_test_not_inlined()));
  ASSERT_TRUE(before->has_symbol);
  (void)symbolizer.classify(reinterpret_cast<std::uintptr_t>(&rp::parse_heap_profile) + 1);
  const auto sessions = symbolizer.stats().dwfl_sessions;
  // A heap profile, as the leak detector takes one, when jemalloc profiles (a no-op elsewhere).
  const auto profile = rp::capture_heap_profile();
  if (profile.ok()) {
    for (const auto& stack : profile.value().stacks) {
      for (const auto address : stack.frames) (void)symbolizer.classify(address);
    }
  }

  void* handle = dlopen(RIPTIDE_PERF_TEST_DLOPEN_MODULE, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << dlerror();
  auto function = reinterpret_cast<ModuleFunction>(dlsym(handle, "riptide_dlopen_module_function"));
  auto call_line = reinterpret_cast<ModuleLine>(dlsym(handle, "riptide_dlopen_module_call_line"));
  ASSERT_NE(function, nullptr);
  ASSERT_NE(call_line, nullptr);
  const auto address = reinterpret_cast<std::uintptr_t>(function());

  const auto frame = symbolizer.resolve(address);
  EXPECT_TRUE(frame->has_symbol) << frame->location();
  EXPECT_EQ(frame->module, std::string(RIPTIDE_PERF_TEST_DLOPEN_MODULE)) << frame->location();
  EXPECT_EQ(frame->function, "riptide_dlopen_module_function");
  EXPECT_TRUE(frame->file.ends_with("dlopen_module.cpp")) << frame->file;
  EXPECT_EQ(frame->line, static_cast<std::uint32_t>(call_line()));
  EXPECT_GT(symbolizer.stats().dwfl_sessions, sessions) << "the load was noticed and the modules read again";

  // Unloaded: the address is in no object now, and the cached frame is not served for it.
  ASSERT_EQ(dlclose(handle), 0);
  if (dlopen(RIPTIDE_PERF_TEST_DLOPEN_MODULE, RTLD_NOW | RTLD_NOLOAD) != nullptr) {
    GTEST_SKIP() << "the module stayed loaded after dlclose";
  }
  const auto unloaded = symbolizer.resolve(address);
  EXPECT_FALSE(unloaded->has_symbol) << unloaded->location();
  EXPECT_EQ(unloaded->module, "");
  EXPECT_TRUE(unloaded->location().ends_with("(in no loaded module)")) << unloaded->location();
  EXPECT_EQ(symbolizer.classify(address), rp::kFrameOther);

  // Loaded again (mostly at the same place): the "in no module" answers cached meanwhile are dropped.
  handle = dlopen(RIPTIDE_PERF_TEST_DLOPEN_MODULE, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << dlerror();
  function = reinterpret_cast<ModuleFunction>(dlsym(handle, "riptide_dlopen_module_function"));
  const auto again = reinterpret_cast<std::uintptr_t>(function());
  const auto reloaded = symbolizer.resolve(again);
  EXPECT_EQ(reloaded->function, "riptide_dlopen_module_function") << reloaded->location();
  EXPECT_EQ(reloaded->module, std::string(RIPTIDE_PERF_TEST_DLOPEN_MODULE));
  dlclose(handle);
}

TEST(SymbolizerModules, AddressInNoLoadedObjectIsNotGivenANeighboursName) {
  rp::Symbolizer symbolizer;
  (void)symbolizer.resolve(reinterpret_cast<std::uintptr_t>(symbolizer_test_not_inlined()));
  // Executable memory no ELF object maps (as a JIT makes), wherever the kernel puts it: libdwfl would
  // attribute it to the module below it.
  const long page = sysconf(_SC_PAGESIZE);
  void* code = mmap(nullptr, static_cast<std::size_t>(page), PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(code, MAP_FAILED);
  const auto address = reinterpret_cast<std::uintptr_t>(code) + 0x20;
  const auto frame = symbolizer.resolve(address);
  EXPECT_FALSE(frame->has_symbol) << frame->location();
  EXPECT_EQ(frame->module, "") << frame->location();
  EXPECT_EQ(frame->location(), frame->function + " (in no loaded module)");
  EXPECT_TRUE(frame->function.starts_with("0x")) << frame->function;
  EXPECT_EQ(symbolizer.classify(address + 8), rp::kFrameOther);
  // Above every module too.
  const auto top = symbolizer.resolve(0x7ffffffff000ULL - 0x100);
  EXPECT_EQ(top->module, "") << top->location();
  munmap(code, static_cast<std::size_t>(page));
}

// --- Stripped system libraries: Debian's libstdc++ has no .symtab and no debug information, but exports
// its out-of-line std:: functions in .dynsym.

TEST(SymbolizerModules, StrippedLibstdcxxFunctionsAreNamedFromTheDynamicSymbols) {
  void* libstdcxx = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(libstdcxx, nullptr) << "the test links libstdc++ dynamically";
  rp::Symbolizer symbolizer;
  for (const char* mangled :
       {"_ZSt20__throw_length_errorPKc", "_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE9_M_createERmm"}) {
    void* symbol = dlsym(libstdcxx, mangled);
    ASSERT_NE(symbol, nullptr) << mangled;
    const auto frame = symbolizer.resolve(reinterpret_cast<std::uintptr_t>(symbol) + 5);
    EXPECT_TRUE(frame->has_symbol) << frame->location();
    EXPECT_TRUE(frame->function.starts_with("std::")) << frame->function;
    EXPECT_NE(frame->module.find("libstdc++.so"), std::string::npos) << frame->module;
    EXPECT_FALSE(frame->inline_chain.empty());
  }
  const auto frame =
      symbolizer.resolve(reinterpret_cast<std::uintptr_t>(dlsym(libstdcxx, "_ZSt20__throw_length_errorPKc")) + 5);
  EXPECT_EQ(frame->function, "std::__throw_length_error(char const*)");
  EXPECT_EQ(rp::readable_function_name(frame->function), "std::__throw_length_error");
  dlclose(libstdcxx);
}

// --- readable_function_name over names the demangler gives.

namespace {

struct NameCase {
  const char* demangled;
  const char* readable;
};

constexpr const char* kString = "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >";

std::string with_strings(std::string text) {
  for (auto at = text.find("$S"); at != std::string::npos; at = text.find("$S")) text.replace(at, 2, kString);
  return text;
}

}  // namespace

TEST(ReadableFunctionName, ShortensRealDemangledNames) {
  const std::vector<NameCase> cases = {
      {"void std::vector<$S, std::allocator<$S > >::_M_realloc_insert<$S const&>(__gnu_cxx::__normal_iterator<$S*, "
       "std::vector<$S, std::allocator<$S > > >, $S const&)",
       "std::vector<std::string>::_M_realloc_insert"},
      {"retain_parsed_documents(unsigned long)", "retain_parsed_documents"},
      {"$S::_M_create(unsigned long&, unsigned long)", "std::string::_M_create"},
      {"std::vector<int, std::allocator<int> >::_M_default_append(unsigned long)",
       "std::vector<int>::_M_default_append"},
      {"std::unordered_map<$S, int, std::hash<$S >, std::equal_to<$S >, std::allocator<std::pair<$S const, int> > "
       ">::operator[]($S const&)",
       "std::unordered_map<std::string, int>::operator[]"},
      {"std::map<$S, std::vector<$S, std::allocator<$S > >, std::less<$S >, std::allocator<std::pair<$S const, "
       "std::vector<$S, std::allocator<$S > > > > >::operator[]($S const&)",
       "std::map<\u2026>::operator[]"},
      {"scraper::Crawler::run()::{lambda(int)#1}::operator()(int) const",
       "scraper::Crawler::run::{lambda(int)#1}::operator()"},
      {"(anonymous namespace)::parse_page($S const&)", "(anonymous namespace)::parse_page"},
      {"bool scraper::operator<(scraper::Url const&, scraper::Url const&)", "scraper::operator<"},
      {"bool std::operator< <char, std::char_traits<char>, std::allocator<char> >($S const&, char const*)",
       "std::operator<"},
      {"scraper::Document::size() const", "scraper::Document::size"},
      {"std::unique_ptr<scraper::Document, std::default_delete<scraper::Document> >::~unique_ptr()",
       "std::unique_ptr<scraper::Document>::~unique_ptr"},
      {"operator new(unsigned long)", "operator new"},
      {"operator delete[](void*, unsigned long)", "operator delete[]"},
      {"scraper::parse(char const*) [clone .cold]", "scraper::parse"},
      {"void riptide::performance::Store<int>::put<int>(int&&)", "riptide::performance::Store<int>::put"},
      {"scraper::Url::to_string[abi:cxx11]() const", "scraper::Url::to_string"},
      {"std::basic_string_view<char, std::char_traits<char> >::find(char, unsigned long) const",
       "std::string_view::find"},
      {"std::__cxx11::basic_string<wchar_t, std::char_traits<wchar_t>, std::allocator<wchar_t> >::reserve(unsigned "
       "long)",
       "std::wstring::reserve"},
      {"scraper::Url::operator $S() const", "scraper::Url::operator std::string"},
      {"std::_Function_handler<void (int), scraper::Crawler::run()::{lambda(int)#1}>::_M_invoke(std::_Any_data "
       "const&, int&&)",
       "std::_Function_handler<\u2026>::_M_invoke"},
      {"std::__cxx11::list<int, std::allocator<int> >::_M_clear()", "std::list<int>::_M_clear"},
      {"(anonymous namespace)::Cache<std::pair<int, int> >::get(int) const noexcept",
       "(anonymous namespace)::Cache<std::pair<int, int>>::get"},
      {"scraper::Crawler::fetch($S const&)::{lambda()#2}::operator()() const",
       "scraper::Crawler::fetch::{lambda()#2}::operator()"},
      {"malloc", "malloc"},
      {"  scraper::main_loop()  ", "scraper::main_loop"},
  };
  for (const auto& [demangled, readable] : cases) {
    EXPECT_EQ(rp::readable_function_name(with_strings(demangled)), readable) << with_strings(demangled);
  }
}

TEST(ReadableFunctionName, NeverThrowsOnMalformedNames) {
  EXPECT_EQ(rp::readable_function_name("  foo<bar(int  "), "foo<bar(int");
  EXPECT_EQ(rp::readable_function_name("foo)(int"), "foo)(int");
  EXPECT_EQ(rp::readable_function_name(""), "");
  const std::string long_malformed = "ns::f<" + std::string(300, 'a');
  const auto cut = rp::readable_function_name(long_malformed);
  EXPECT_LE(cut.size(), 120U);
  EXPECT_TRUE(cut.starts_with("ns::f<aaa")) << cut;
  for (const std::string text : {"<", ">", "((", "operator", "operator<", "{lambda(", "a::b<c>::d<e>(f)g)",
                                 "operator()(", "[abi:", "x [clone .cold"}) {
    EXPECT_NO_THROW((void)rp::readable_function_name(text)) << text;
  }
}
