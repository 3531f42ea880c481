#include "dwfl_callbacks.hpp"

#include "riptide/performance/core/fork_safety.hpp"

namespace riptide::performance {
namespace {

int find_module_elf(Dwfl_Module* module, void** userdata, const char* module_name, Dwarf_Addr base, char** file_name,
                    Elf** elf) {
  return mark_close_on_exec(dwfl_linux_proc_find_elf(module, userdata, module_name, base, file_name, elf));
}

int find_local_debuginfo(Dwfl_Module* module, void** userdata, const char* module_name, Dwarf_Addr base,
                         const char* file_name, const char* debuglink_file, GElf_Word debuglink_crc,
                         char** debuginfo_file_name) {
  return mark_close_on_exec(dwfl_build_id_find_debuginfo(module, userdata, module_name, base, file_name, debuglink_file,
                                                         debuglink_crc, debuginfo_file_name));
}

// libdw wants a mutable char* for the debuginfo search path; nullptr means the default (.debug, /usr/lib/debug).
char* g_debuginfo_path = nullptr;

const Dwfl_Callbacks kCallbacks = {
    find_module_elf,
    find_local_debuginfo,
    nullptr,
    &g_debuginfo_path,
};

int find_debuginfo_or_download(Dwfl_Module* module, void** userdata, const char* module_name, Dwarf_Addr base,
                               const char* file_name, const char* debuglink_file, GElf_Word debuglink_crc,
                               char** debuginfo_file_name) {
  return mark_close_on_exec(dwfl_standard_find_debuginfo(module, userdata, module_name, base, file_name, debuglink_file,
                                                         debuglink_crc, debuginfo_file_name));
}

const Dwfl_Callbacks kDebuginfodCallbacks = {
    find_module_elf,
    find_debuginfo_or_download,
    nullptr,
    &g_debuginfo_path,
};

}  // namespace

const Dwfl_Callbacks& local_process_dwfl_callbacks() noexcept {
  return kCallbacks;
}

const Dwfl_Callbacks& debuginfod_process_dwfl_callbacks() noexcept {
  return kDebuginfodCallbacks;
}

}  // namespace riptide::performance
