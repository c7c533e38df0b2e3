# The README's API tour is a program: every ```c block of README.md, in order, is extracted at
# configure time (tests/readme/extract_tour.py) into readme_tour.c, built against the library
# and run by ctest. The tour checks its own results and exits non-zero on a wrong one, so a
# README that no longer compiles or no longer tells the truth fails the suite. Editing the
# README (or the extractor) re-runs the configure step.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
set(readme_md ${PROJECT_SOURCE_DIR}/README.md)
set(readme_extract ${CMAKE_CURRENT_SOURCE_DIR}/readme/extract_tour.py)
set(readme_tour_c ${CMAKE_CURRENT_BINARY_DIR}/readme_tour.c)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${readme_md} ${readme_extract})
execute_process(
  COMMAND ${Python3_EXECUTABLE} ${readme_extract} ${readme_md} ${readme_tour_c}
  RESULT_VARIABLE readme_rc
  ERROR_VARIABLE readme_err)
if(NOT readme_rc EQUAL 0)
  message(FATAL_ERROR "README tour: extraction failed: ${readme_err}")
endif()

add_executable(readme_tour ${readme_tour_c})
interp_target_setup(readme_tour)
target_link_libraries(readme_tour PRIVATE interp_pool)
add_test(NAME readme_tour COMMAND readme_tour)
set_tests_properties(readme_tour PROPERTIES
  ENVIRONMENT "TSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/tsan.supp halt_on_error=1 second_deadlock_stack=1;ASAN_OPTIONS=detect_leaks=1:abort_on_error=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
  TIMEOUT 120)
