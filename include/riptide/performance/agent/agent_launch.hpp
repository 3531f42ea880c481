#pragma once
// Whether the agent loaded into a process (LD_PRELOAD, see riptide-run) should start there.
//
// LD_PRELOAD is inherited by every program the monitored one starts. The agent marks the process it runs
// in (RIPTIDE_AGENT_PID=<its pid>, inherited by children), so a child that execs another program (same
// variable, another pid) does not start a second agent, which would fight its parent for the port. A
// program that execs itself keeps its pid, and its new image starts the agent again (the old one is gone).
// RIPTIDE_AGENT_CHILDREN=1 lets children start theirs too; they then need their own port (port 0 picks a
// free one).

#include <sys/types.h>
#include <string>

namespace riptide::performance {

inline constexpr const char* kAgentPidVariable = "RIPTIDE_AGENT_PID";
inline constexpr const char* kAgentChildrenVariable = "RIPTIDE_AGENT_CHILDREN";

struct AgentLaunch {
  bool start = false;
  bool quiet = false;  ///< not starting is expected (an ancestor runs the agent): print nothing
  std::string reason;  ///< why not; empty when it starts
};

/// The decision for process `self`, from the values of RIPTIDE_AGENT_PID and RIPTIDE_AGENT_CHILDREN (null
/// when unset). A value that is not a pid or not 0/1 is reported in `reason` and the agent stays off.
[[nodiscard]] AgentLaunch decide_agent_launch(const char* agent_pid, const char* agent_children, pid_t self);

}  // namespace riptide::performance
