# bench_compare: the headline comparison (issue 6). Sources in bench/compare/ (not
# bench/bench_*.c, so the glob above does not build them one by one).
set(BENCH_COMPARE_DIR ${CMAKE_CURRENT_SOURCE_DIR}/compare)
set(BENCH_COMPARE_SOURCES
  ${BENCH_COMPARE_DIR}/main.c ${BENCH_COMPARE_DIR}/report.c ${BENCH_COMPARE_DIR}/workloads.c
  ${BENCH_COMPARE_DIR}/luahost.c ${BENCH_COMPARE_DIR}/jobq.c ${BENCH_COMPARE_DIR}/exec_seq.c
  ${BENCH_COMPARE_DIR}/exec_gil.c ${BENCH_COMPARE_DIR}/exec_proc.c ${BENCH_COMPARE_DIR}/proc_wire.c
  ${BENCH_COMPARE_DIR}/exec_interp.c ${CMAKE_CURRENT_SOURCE_DIR}/control.c)
add_executable(bench_compare ${BENCH_COMPARE_SOURCES})
interp_target_setup(bench_compare)
target_include_directories(bench_compare PRIVATE ${BENCH_COMPARE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}
  ${MSGPUCK_INCLUDE_DIR})
target_compile_definitions(bench_compare PRIVATE
  BENCH_PLOT_GP="${BENCH_COMPARE_DIR}/plot.gp")
target_link_libraries(bench_compare PRIVATE interp_pool m)

# A smoke run in ctest (Release stage): every executor runs the short workloads and every
# result is checked (a wrong result exits non-zero; timings are printed, never asserted).
if(INTERP_BUILD_TESTS)
  add_test(NAME bench_compare_smoke
    COMMAND bench_compare --quick --runs 1 --only io,tiny-map,startup
            --csv ${CMAKE_CURRENT_BINARY_DIR}/compare_smoke.csv)
  set_tests_properties(bench_compare_smoke PROPERTIES TIMEOUT 120)
endif()
