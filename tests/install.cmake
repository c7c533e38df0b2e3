# The installed library serves a C host: install into a scratch prefix, build a consumer with
# find_package and with pkg-config (tests/install/run_test.cmake). Not in sanitizer builds,
# whose library needs the sanitizer runtime at the consumer's link.
if(NOT INTERP_SANITIZE)
  add_test(NAME install_consumer COMMAND ${CMAKE_COMMAND}
    -DBUILD_DIR=${PROJECT_BINARY_DIR}
    -DSRC=${CMAKE_CURRENT_SOURCE_DIR}/install
    -DWORK=${CMAKE_CURRENT_BINARY_DIR}/install_check
    -DCC=${CMAKE_C_COMPILER}
    -P ${CMAKE_CURRENT_SOURCE_DIR}/install/run_test.cmake)
  set_tests_properties(install_consumer PROPERTIES TIMEOUT 300)
endif()
