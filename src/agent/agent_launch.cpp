#include "riptide/performance/agent/agent_launch.hpp"

#include <charconv>
#include <string_view>

namespace riptide::performance {
namespace {

bool parse_pid(std::string_view text, pid_t& pid) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), pid);
  return error == std::errc{} && end == text.data() + text.size() && pid > 0;
}

}  // namespace

AgentLaunch decide_agent_launch(const char* agent_pid, const char* agent_children, pid_t self) {
  bool children_allowed = false;
  if (agent_children != nullptr) {
    const std::string_view value = agent_children;
    if (value != "0" && value != "1") {
      return {false, false,
              std::string{kAgentChildrenVariable} + "='" + std::string{value} +
                  "' is not accepted: 1 (children start their own agent) or 0 (they do not)"};
    }
    children_allowed = value == "1";
  }
  if (agent_pid == nullptr || *agent_pid == '\0') return {true, false, {}};
  pid_t owner = 0;
  if (!parse_pid(agent_pid, owner)) {
    return {false, false,
            std::string{kAgentPidVariable} + "='" + agent_pid +
                "' is not a process id; the agent sets it itself: unset it to start one"};
  }
  if (owner == self || children_allowed) return {true, false, {}};
  return {false, true,
          "process " + std::to_string(owner) + " (an ancestor) runs the agent; set " + kAgentChildrenVariable +
              "=1 for one in every child too"};
}

}  // namespace riptide::performance
