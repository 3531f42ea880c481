# Script mode: install BUILD_DIR to WORK_DIR/prefix, then configure, build and run the consumer.
# With README (the project's README.md), also build README.md's C++ blocks against the installed package
# (readme_snippets.cmake turns them into translation units).
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
set(readme_args)
if(DEFINED README)
  run_step("extract README snippets" ${CMAKE_COMMAND} -DREADME=${README} -DOUTPUT_DIR=${WORK_DIR}/readme
    -P ${CMAKE_CURRENT_LIST_DIR}/readme_snippets.cmake)
  string(REGEX REPLACE "^-- " "" step_output "${step_output}")
  message(STATUS "${step_output}")
  set(readme_args -DREADME_SNIPPETS_DIR=${WORK_DIR}/readme)
endif()
run_step("configure consumer" ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
  -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_PREFIX_PATH=${prefix} ${readme_args})
run_step("build consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/build --target consumer)
if(DEFINED README)
  # The compiler's errors name README.md:<line> (the generated sources carry #line directives). Keep going
  # after a failure so one run reports every README block that is broken.
  set(keep_going)
  if(GENERATOR MATCHES "Ninja")
    set(keep_going -- -k 0)
  elseif(GENERATOR MATCHES "Makefiles")
    set(keep_going -- -k)
  endif()
  run_step("build README snippets against the installed package" ${CMAKE_COMMAND} --build ${WORK_DIR}/build
    --target readme ${keep_going})
endif()
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
