#pragma once
// How the symbolizer's libdw session finds a module's ELF and debug files, local files only.
//
// libdw's standard callbacks open files without O_CLOEXEC (every mapped library and the executable stay
// open in the symbolizer's session, and a child that execs would inherit them all) and, after the local
// search, ask debuginfod servers named in DEBUGINFOD_URLS (Debian's login shells set it): a host's
// profiler must not download hundreds of megabytes of debug information behind its back. These callbacks
// do what the standard ones do locally and mark every descriptor close-on-exec.

#include <elfutils/libdwfl.h>

namespace riptide::performance {

/// Callbacks for dwfl_begin(): a process's modules as /proc/PID/maps names them, their separate debug
/// files by build ID under /usr/lib/debug/.build-id; no network.
[[nodiscard]] const Dwfl_Callbacks& local_process_dwfl_callbacks() noexcept;

/// The same, and then, for debug files not found locally, libdw's standard search, which asks the
/// debuginfod servers in DEBUGINFOD_URLS: only when the host opted in (profiling.debuginfod).
[[nodiscard]] const Dwfl_Callbacks& debuginfod_process_dwfl_callbacks() noexcept;

}  // namespace riptide::performance
