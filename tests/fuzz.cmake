# libFuzzer targets (INTERP_FUZZ=ON, configured with CC=clang):
#   fuzz_all  builds every fuzzer (tests/fuzz/fuzz_*.c)
#   fuzz_run  fuzzes each for $INTERP_FUZZ_SECONDS (default 60) seconds on a scratch copy of
#             its seed corpus (tests/fuzz/corpus), and fails on any finding (a crash, a
#             sanitizer report, an input running past -timeout, a broken invariant such as
#             fuzz_msg's bound on the decoder's steps).
# The fuzzers are built with -fsanitize=fuzzer,address,undefined against a library compiled
# with -fsanitize=fuzzer-no-link (coverage) plus ASan and UBSan.
if(NOT INTERP_FUZZ)
  return()
endif()
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "INTERP_FUZZ=ON needs clang: configure with CC=clang")
endif()
if(INTERP_SANITIZE MATCHES "thread")
  message(FATAL_ERROR "INTERP_FUZZ=ON cannot be combined with INTERP_SANITIZE=thread")
endif()

set(INTERP_FUZZ_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g)
# the library's sources are compiled once, in interp_pool_objs (the static and shared
# libraries are made of its objects): instrument them there
target_compile_options(interp_pool_objs PRIVATE -fsanitize=fuzzer-no-link)
# the decoder counts its steps (msg_plan.h) so that fuzz_msg can assert linear time
target_compile_definitions(interp_pool_objs PRIVATE INTERP_MSG_STEPS)
if(NOT INTERP_SANITIZE MATCHES "address")
  # the library was not set up with sanitizers: add them, and their runtimes for whatever links it
  target_compile_options(interp_pool_objs PRIVATE ${INTERP_FUZZ_FLAGS})
  target_link_options(interp_pool INTERFACE -fsanitize=address,undefined)
endif()

file(GLOB INTERP_FUZZERS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_*.c)
add_custom_target(fuzz_all)
add_custom_target(fuzz_run)
foreach(src ${INTERP_FUZZERS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_compile_options(${name} PRIVATE -Wall -Wextra -Werror -fsanitize=fuzzer ${INTERP_FUZZ_FLAGS})
  target_compile_definitions(${name} PRIVATE _GNU_SOURCE INTERP_MSG_STEPS)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_include_directories(${name} PRIVATE ${MSGPUCK_INCLUDE_DIR})
  target_link_libraries(${name} PRIVATE interp_pool)
  add_dependencies(fuzz_all ${name})
  add_custom_target(${name}_run
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/run_fuzz.sh $<TARGET_FILE:${name}>
            ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus ${CMAKE_CURRENT_BINARY_DIR}/${name}_work
    DEPENDS ${name}
    USES_TERMINAL VERBATIM)
  add_dependencies(fuzz_run ${name}_run)
endforeach()
