# bench_compare: the headline comparison (issue 6). Sources in bench/compare/ (not
# bench/bench_*.c, so the glob above does not build them one by one).
# The interp executor links against core/'s pool; until core/pool.c is in the tree the program
# builds without it (and says so when it runs).
set(BENCH_COMPARE_DIR ${CMAKE_CURRENT_SOURCE_DIR}/compare)
set(BENCH_COMPARE_SOURCES
  ${BENCH_COMPARE_DIR}/main.c ${BENCH_COMPARE_DIR}/report.c ${BENCH_COMPARE_DIR}/workloads.c
  ${BENCH_COMPARE_DIR}/luahost.c ${BENCH_COMPARE_DIR}/jobq.c ${BENCH_COMPARE_DIR}/exec_seq.c
  ${BENCH_COMPARE_DIR}/exec_gil.c ${BENCH_COMPARE_DIR}/exec_proc.c)
set(BENCH_HAVE_POOL OFF)
if(EXISTS ${PROJECT_SOURCE_DIR}/core/pool.c)
  set(BENCH_HAVE_POOL ON)
  list(APPEND BENCH_COMPARE_SOURCES ${BENCH_COMPARE_DIR}/exec_interp.c)
endif()
# Until the message codec (branch msg) is in the tree there is nothing to link: skip quietly.
set(BENCH_HAVE_CODEC ON)
file(GLOB _bench_channel_sources ${PROJECT_SOURCE_DIR}/channels/*.c)
foreach(sym interp_msg_from_lua interp_msg_to_lua interp_msg_from_bytes interp_msg_builder_new
            interp_msg_next)
  set(_found OFF)
  foreach(f ${_bench_channel_sources})
    file(STRINGS ${f} _hit REGEX "^[A-Za-z_][A-Za-z_0-9 *]*[ *]${sym}\\(")
    if(_hit)
      set(_found ON)
    endif()
  endforeach()
  if(NOT _found)
    set(BENCH_HAVE_CODEC OFF)
  endif()
endforeach()
if(NOT BENCH_HAVE_CODEC)
  message(STATUS "bench_compare: not built yet (the message codec is not in channels/)")
  return()
endif()
add_executable(bench_compare ${BENCH_COMPARE_SOURCES})
interp_target_setup(bench_compare)
target_include_directories(bench_compare PRIVATE ${BENCH_COMPARE_DIR} ${MSGPUCK_INCLUDE_DIR})
target_compile_definitions(bench_compare PRIVATE
  BENCH_PLOT_GP="${BENCH_COMPARE_DIR}/plot.gp"
  $<$<BOOL:${BENCH_HAVE_POOL}>:BENCH_HAVE_POOL>)
target_link_libraries(bench_compare PRIVATE interp_pool m)
