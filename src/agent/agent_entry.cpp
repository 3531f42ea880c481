// libriptide_agent.so: started by LD_PRELOAD (riptide-run sets it up), it starts a PreloadAgent for the
// program just before the program's main() and stops it at exit.
//
// Why before main() and not in a constructor: the agent's own static objects (Asio's, the dashboard's)
// are initialized by this library's constructors, in an order no constructor of ours can rely on. The
// program's call of glibc's __libc_start_main comes after every library was initialized, so the agent
// interposes it (a preloaded definition comes first in symbol lookup), wraps main and calls glibc's.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "riptide/performance/agent/agent_launch.hpp"
#include "riptide/performance/agent/preload_agent.hpp"

namespace {

namespace rp = riptide::performance;

using MainFunction = int (*)(int, char**, char**);
using StartMain = int (*)(MainFunction, int, char**, void (*)(), void (*)(), void (*)(), void*);

MainFunction g_program_main = nullptr;
rp::PreloadAgent* g_agent = nullptr;

void stop_agent() {
  delete g_agent;
  g_agent = nullptr;
}

std::string program_name(char** argv) {
  return argv != nullptr && argv[0] != nullptr ? argv[0] : "the program";
}

int main_with_agent(int argc, char** argv, char** envp) {
  const rp::AgentLaunch launch =
      rp::decide_agent_launch(std::getenv(rp::kAgentPidVariable), std::getenv(rp::kAgentChildrenVariable), ::getpid());
  if (launch.start) {
    // Marks this process for the programs it starts (see agent_launch.hpp); single-threaded here.
    ::setenv(rp::kAgentPidVariable, std::to_string(::getpid()).c_str(), 1);
    g_agent = rp::PreloadAgent::start(program_name(argv)).release();
    // Registered after the agent's start, so it runs before the static objects the start created are
    // destroyed at exit.
    if (g_agent != nullptr) std::atexit(stop_agent);
  } else if (!launch.quiet) {
    std::fprintf(stderr, "riptide agent: not monitoring %s: %s\n", program_name(argv).c_str(), launch.reason.c_str());
  }
  return g_program_main(argc, argv, envp);
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int __libc_start_main(MainFunction main, int argc, char** argv,
                                                                        void (*init)(), void (*fini)(),
                                                                        void (*rtld_fini)(), void* stack_end) {
  const auto glibc_start = reinterpret_cast<StartMain>(::dlsym(RTLD_NEXT, "__libc_start_main"));
  if (glibc_start == nullptr) {
    std::fprintf(stderr, "riptide agent: glibc's __libc_start_main was not found (%s); cannot run the program\n",
                 ::dlerror());
    std::_Exit(127);
  }
  g_program_main = main;
  return glibc_start(main_with_agent, argc, argv, init, fini, rtld_fini, stack_end);
}
