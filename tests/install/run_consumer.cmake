# Script mode: install BUILD_DIR to WORK_DIR/prefix, then configure, build and run the consumer.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(run_step description)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${description} failed (${result}):\n${out}\n${err}")
  endif()
  message(STATUS "${description}: ok")
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

run_step("install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
if(NOT EXISTS ${prefix}/lib/cmake/riptide_performance/riptide_performance-config.cmake)
  message(FATAL_ERROR "install did not write the CMake config package")
endif()
run_step("configure consumer" ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
  -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_PREFIX_PATH=${prefix})
run_step("build consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run_step("run consumer" ${WORK_DIR}/build/consumer)
if(NOT step_output MATCHES "riptide-performance [0-9]+\\.[0-9]+\\.[0-9]+ session [0-9a-f-]+")
  message(FATAL_ERROR "consumer printed an unexpected line: ${step_output}")
endif()

# pkg-config: the .pc file must give flags that compile and link the same program.
find_program(PKG_CONFIG pkg-config REQUIRED)
set(ENV{PKG_CONFIG_PATH} ${prefix}/lib/pkgconfig)
run_step("pkg-config" ${PKG_CONFIG} --cflags --libs --static riptide_performance)
string(STRIP "${step_output}" pc_flags)
separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
run_step("compile with pkg-config flags" ${CXX_COMPILER} ${SOURCE_DIR}/main.cpp -o ${WORK_DIR}/consumer-pc ${pc_flags})
run_step("run pkg-config consumer" ${WORK_DIR}/consumer-pc)
