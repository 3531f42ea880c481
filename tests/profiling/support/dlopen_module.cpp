// A shared object symbolizer_test loads with dlopen after the symbolizer has already read the process's
// modules. Plain C-linkage functions only: a C++ template with a static local would make the object
// impossible to unload (STB_GNU_UNIQUE), and the test unloads and reloads it.

extern "C" {

int g_riptide_dlopen_module_call_line = 0;

__attribute__((noinline)) void* riptide_dlopen_module_capture() {
  void* address = __builtin_return_address(0);
  asm volatile("" : : "r"(address) : "memory");
  return address;
}

// Returns the return address of a call made inside this function, on a line it records.
__attribute__((visibility("default"), noinline)) void* riptide_dlopen_module_function() {
  g_riptide_dlopen_module_call_line = __LINE__ + 1;
  void* address = riptide_dlopen_module_capture();
  asm volatile("" : : "r"(address) : "memory");
  return address;
}

__attribute__((visibility("default"))) int riptide_dlopen_module_call_line() {
  return g_riptide_dlopen_module_call_line;
}

}  // extern "C"
