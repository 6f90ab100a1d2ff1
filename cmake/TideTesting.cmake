# tide_add_test(NAME <target> LABEL unit|integration|system SOURCES ... LIBS ...)
# builds a Catch2 executable and registers each of its test cases with ctest.
include(Catch)
function(tide_add_test)
  cmake_parse_arguments(T "" "NAME;LABEL;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_LABEL MATCHES "^(unit|integration|system)$")
    message(FATAL_ERROR "tide_add_test(${T_NAME}): LABEL must be unit, integration or system")
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE tide_test_main ${T_LIBS} tide_defaults)
  target_compile_definitions(${T_NAME} PRIVATE
    TIDE_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/data"
    TIDE_BIN_DIR="${CMAKE_RUNTIME_OUTPUT_DIRECTORY}")
  # System tests start fleets of real processes and load generators: they
  # run one at a time so their timing is not at the mercy of each other.
  set(_serial FALSE)
  if(T_LABEL STREQUAL "system")
    set(_serial TRUE)
  endif()
  catch_discover_tests(${T_NAME}
    TEST_PREFIX "${T_LABEL}.${T_NAME}."
    PROPERTIES LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT} RUN_SERIAL ${_serial})
endfunction()
