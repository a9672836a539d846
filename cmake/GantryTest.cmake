# gantry_add_test(NAME <name> SOURCES <files...> LIBS <targets...> [LABELS <labels...>])
# One gtest binary, its tests discovered into ctest.
function(gantry_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE gantry_options ${T_LIBS} GTest::gtest GTest::gtest_main)
  set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  gtest_discover_tests(${T_NAME}
    DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}"
    ENVIRONMENT "GANTRY_BIN_DIR=${CMAKE_BINARY_DIR}/bin;GANTRY_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endfunction()
