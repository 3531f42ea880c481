# Script mode: cmake -DREADME=<README.md> -DOUTPUT_DIR=<dir> -P readme_snippets.cmake
#
# Turns the C++ that README.md shows into translation units that the install test builds against the
# installed package, so a snippet that stops compiling fails that test with the README line in the
# compiler's message.
#
# - Every ```cpp block under "## Quick start" and "## Cookbook" is collected (### subsections included).
#   <line> below is the README line of a block's first line of code.
# - A block that defines main() is a whole program: it is written unchanged to readme_program_L<line>.cpp.
# - Every other block becomes the body of its own function, readme_snippet_L<line>(), in readme_snippets.cpp,
#   so blocks that declare the same names do not clash. Its #include lines move to the top of the file
#   (they cannot be inside a function); a blank line takes their place so the body keeps its line numbers.
# - Snippets use names the README introduces elsewhere (manager, report, leaks, ...): each function opens
#   with a prelude declaring them, minus the names the snippet declares itself.
# - #line directives attribute every README line to README.md and everything generated to the generated file.
# - "<!-- readme-snippet: not compiled (reason) -->" as the last non-blank line before a fence skips that
#   block. It is meant for pseudo code only: everything else a reader may copy should compile.

cmake_minimum_required(VERSION 3.25)
if(NOT DEFINED README OR NOT DEFINED OUTPUT_DIR)
  message(FATAL_ERROR "usage: cmake -DREADME=<README.md> -DOUTPUT_DIR=<dir> -P readme_snippets.cmake")
endif()
if(NOT EXISTS "${README}")
  message(FATAL_ERROR "README not found: ${README}")
endif()
get_filename_component(README "${README}" ABSOLUTE)
set(snippet_sections "Quick start" "Cookbook")

# The names a snippet may use without declaring them, each with the declaration its prelude gives it. They
# must not depend on each other: any of them may be left out when a snippet declares that name itself.
set(prelude_names manager profiler profiler_ptr session_id config targets report metrics status snapshot leaks
  stats usage latency exposer)
set(prelude_manager "auto manager = rp::PerformanceManager::create()")
set(prelude_profiler "rp::MemoryProfiler profiler")
set(prelude_profiler_ptr "auto profiler_ptr = std::make_shared<rp::MemoryProfiler>()")
set(prelude_session_id "std::string session_id = rp::make_uuid_v4()")
set(prelude_config "rp::Config config")
set(prelude_targets "rp::PerformanceTargets targets")
set(prelude_report "rp::PerformanceReport report")
set(prelude_metrics "rp::Metrics metrics")
set(prelude_status "rp::TargetStatus status")
set(prelude_snapshot "rp::MemorySnapshot snapshot")
set(prelude_leaks "rp::LeakReport leaks")
set(prelude_stats "rp::AllocationStats stats")
set(prelude_usage "rp::ResourceUsage usage")
set(prelude_latency "std::chrono::nanoseconds latency = 250ms")
set(prelude_exposer "HostExposer exposer")

# A declaration at the start of a line: [qualifiers] Type[<...>] [&*] NAME followed by = ; ( or {.
# Groups: 3 = the type, 6 = the declared name.
set(declaration_regex
  "^[ \t]*((const|constexpr|static|thread_local)[ \t]+)*([A-Za-z_][A-Za-z0-9_:]*(<[^;=]*>)?)([ \t]+|[ \t]*[&*]+[ \t]*)([A-Za-z_][A-Za-z0-9_]*)[ \t]*[=;({]")
# Words that can precede a name at the start of a statement without declaring it.
set(not_types return throw delete new else case goto using typedef namespace co_return co_yield co_await)
set(marker_regex "^<!-- readme-snippet: not compiled \\((.+)\\) -->[ \t]*$")

# #line takes a string literal.
string(REPLACE "\\" "\\\\" readme_literal "${README}")
string(REPLACE "\"" "\\\"" readme_literal "${readme_literal}")

# Splits the first line off the variable named by `text_var` into `line_var` (the text ends with "\n").
macro(next_line text_var line_var)
  string(FIND "${${text_var}}" "\n" eol)
  string(SUBSTRING "${${text_var}}" 0 ${eol} ${line_var})
  math(EXPR eol "${eol} + 1")
  string(SUBSTRING "${${text_var}}" ${eol} -1 ${text_var})
endmacro()

# --- Read README.md block by block ------------------------------------------------------------------------
file(READ "${README}" text)
if(NOT text MATCHES "\n$")
  string(APPEND text "\n")
endif()

set(line_no 0)
set(section "")
set(title "")
set(fence "")             # the language of the open fence, "" outside fences
set(collecting FALSE)     # inside a block that is collected
set(pending_marker "")    # the reason of an opt-out marker waiting for its fence
set(blocks "")            # the collected blocks' first lines; block_<line>_* hold the rest
set(skipped "")
set(sections_seen "")
while(NOT text STREQUAL "")
  next_line(text line)
  math(EXPR line_no "${line_no} + 1")

  if(NOT fence STREQUAL "")
    if(line MATCHES "^[ \t]*```[ \t]*$")
      set(fence "")
      set(collecting FALSE)
    elseif(collecting)
      set(block_${current}_text "${block_${current}_text}${line}\n")
    endif()
    continue()
  endif()

  if(line MATCHES "^[ \t]*$")
    continue()
  endif()
  if(line MATCHES "^[ \t]*<!--[ \t]*readme-snippet" AND NOT line MATCHES "${marker_regex}")
    message(FATAL_ERROR "${README}:${line_no}: unknown readme-snippet marker (the one marker is "
      "\"<!-- readme-snippet: not compiled (reason) -->\"): ${line}")
  endif()
  if(line MATCHES "${marker_regex}")
    set(pending_marker "${CMAKE_MATCH_1}")
    set(marker_line ${line_no})
    continue()
  endif()
  set(is_cpp_fence FALSE)
  if(line MATCHES "^[ \t]*```[ \t]*(cpp|c\\+\\+)[ \t]*$")
    set(is_cpp_fence TRUE)
  endif()
  if(NOT pending_marker STREQUAL "" AND NOT is_cpp_fence)
    message(FATAL_ERROR "${README}:${marker_line}: a readme-snippet marker must be right before a ```cpp fence")
  endif()

  if(line MATCHES "^## (.*[^ \t])[ \t]*$")
    set(section "${CMAKE_MATCH_1}")
    set(title "")
    list(APPEND sections_seen "${section}")
  elseif(line MATCHES "^\\*\\*(.+)\\*\\*[ \t]*$")
    set(title "${CMAKE_MATCH_1}")
  elseif(line MATCHES "^[ \t]*```[ \t]*([^ \t]*)")
    set(fence "${CMAKE_MATCH_1}")
    if(fence STREQUAL "")
      set(fence "text")
    endif()
    if(is_cpp_fence AND section IN_LIST snippet_sections)
      math(EXPR current "${line_no} + 1")
      if(NOT pending_marker STREQUAL "")
        list(APPEND skipped "README.md:${current} (${pending_marker})")
      else()
        set(collecting TRUE)
        list(APPEND blocks ${current})
        set(block_${current}_section "${section}")
        set(block_${current}_title "${title}")
        set(block_${current}_text "")
      endif()
    endif()
    set(pending_marker "")
  endif()
endwhile()
if(NOT fence STREQUAL "")
  message(FATAL_ERROR "${README}: a ``` fence is not closed")
endif()
foreach(wanted IN LISTS snippet_sections)
  if(NOT wanted IN_LIST sections_seen)
    message(FATAL_ERROR "${README} has no \"## ${wanted}\" section: update the sections this script reads")
  endif()
endforeach()
if(blocks STREQUAL "")
  message(FATAL_ERROR "${README}: no ```cpp block under the sections ${snippet_sections}")
endif()

# --- Write the translation units ----------------------------------------------------------------------------
file(MAKE_DIRECTORY "${OUTPUT_DIR}")
file(GLOB stale "${OUTPUT_DIR}/readme_*.cpp")
if(stale)
  file(REMOVE ${stale})
endif()
set(snippets_file "${OUTPUT_DIR}/readme_snippets.cpp")
string(REPLACE "\\" "\\\\" snippets_literal "${snippets_file}")
string(REPLACE "\"" "\\\"" snippets_literal "${snippets_literal}")

set(generated_note "// Generated from ${README} by readme_snippets.cmake: edit README.md, not this file.")
set(hoisted "")
set(functions "")
set(summary "")
set(function_count 0)
set(program_count 0)
foreach(first IN LISTS blocks)
  set(block_text "${block_${first}_text}")
  set(label "${block_${first}_section}")
  if(NOT block_${first}_title STREQUAL "")
    set(label "${label}: ${block_${first}_title}")
  endif()

  if(block_text MATCHES "int[ \t]+main[ \t]*\\(")
    file(WRITE "${OUTPUT_DIR}/readme_program_L${first}.cpp"
      "${generated_note}\n#line ${first} \"${readme_literal}\"\n${block_text}")
    string(APPEND summary "  README.md:${first} (${label}) -> readme_program_L${first}.cpp\n")
    math(EXPR program_count "${program_count} + 1")
    continue()
  endif()

  # The snippet line by line: hoist its includes, find the names it declares.
  set(declared "")
  set(snippet "")
  set(readme_line ${first})
  set(remaining "${block_text}")
  while(NOT remaining STREQUAL "")
    next_line(remaining line)
    if(line MATCHES "^[ \t]*#[ \t]*include[ \t]*[<\"]")
      string(APPEND hoisted "#line ${readme_line} \"${readme_literal}\"\n${line}\n")
      string(APPEND snippet "\n")
    else()
      if(line MATCHES "${declaration_regex}")
        set(declared_type "${CMAKE_MATCH_3}")
        set(declared_name "${CMAKE_MATCH_6}")
        if(NOT declared_type IN_LIST not_types)
          list(APPEND declared ${declared_name})
        endif()
      endif()
      string(APPEND snippet "${line}\n")
    endif()
    math(EXPR readme_line "${readme_line} + 1")
  endwhile()

  set(prelude "")
  foreach(name IN LISTS prelude_names)
    if(NOT name IN_LIST declared)
      string(APPEND prelude "  [[maybe_unused]] ${prelude_${name}};\n")
    endif()
  endforeach()
  # @RESYNC@ lines become #line directives back to the generated file once the whole file is known.
  string(APPEND functions "
// ${label}
int readme_snippet_L${first}() {
${prelude}#line ${first} \"${readme_literal}\"
${snippet}@RESYNC@
  return 0;
}
")
  list(JOIN declared " " declared_text)
  if(declared_text STREQUAL "")
    set(declared_text "nothing")
  endif()
  string(APPEND summary "  README.md:${first} (${label}) -> readme_snippet_L${first}(), declares ${declared_text}\n")
  math(EXPR function_count "${function_count} + 1")
endforeach()

# Written even without functions: the consumer project always builds it.
set(draft "${generated_note}
// Each function is one ```cpp block of the README, named after the README line its code starts on. The
// install test compiles and links them against the installed package; nothing calls them (they start
// servers and fork).
// What a host file around the snippets would already include: riptide's umbrella header, as in the README's
// Quick start, and the standard and POSIX headers of the calls the snippets make.
#include <riptide/performance.hpp>

#include <unistd.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>

// The snippets' own includes.
${hoisted}@RESYNC@

namespace rp = riptide::performance;
using namespace std::chrono_literals;

namespace prometheus {
class Collectable;
}

// Stands in for a host's prometheus::Exposer (prometheus-cpp's pull library, which riptide does not depend
// on) with the one member the snippets call, declared as prometheus-cpp declares it.
struct HostExposer {
  void RegisterCollectable(const std::weak_ptr<prometheus::Collectable>& /*collectable*/,
                           const std::string& /*uri*/ = \"/metrics\") {}
};
${functions}
int main() { return 0; }
")
set(out "")
set(out_line 0)
while(NOT draft STREQUAL "")
  next_line(draft line)
  math(EXPR out_line "${out_line} + 1")
  if(line STREQUAL "@RESYNC@")
    math(EXPR resumed "${out_line} + 1")
    set(line "#line ${resumed} \"${snippets_literal}\"")
  endif()
  string(APPEND out "${line}\n")
endwhile()
file(WRITE "${snippets_file}" "${out}")

message(STATUS "README.md's C++ blocks: ${function_count} snippet function(s), ${program_count} program(s)\n${summary}")
if(NOT skipped STREQUAL "")
  list(JOIN skipped "\n  " skipped_text)
  message(STATUS "not compiled (readme-snippet marker):\n  ${skipped_text}")
endif()
