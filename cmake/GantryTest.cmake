# gantry_add_test(NAME <name> SOURCES <files...> LIBS <targets...> [LABEL <label>] [TIMEOUT <s>])
# One gtest binary, its tests discovered into ctest. Tests find the built
# programs through $GANTRY_BIN_DIR, or the compiled-in GANTRY_TEST_BIN_DIR.
# (gtest_discover_tests splits list values in PROPERTIES on CMake 3.25, so
# each property below carries a single value.)
function(gantry_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT;LABEL" "SOURCES;LIBS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE gantry_options ${T_LIBS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${T_NAME} PRIVATE
    GANTRY_TEST_BIN_DIR="${CMAKE_BINARY_DIR}/bin"
    GANTRY_TEST_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  if(NOT T_LABEL)
    set(T_LABEL unit)
  endif()
  gtest_discover_tests(${T_NAME}
    DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS ${T_LABEL} ENVIRONMENT "GANTRY_BIN_DIR=${CMAKE_BINARY_DIR}/bin")
endfunction()
