# bench_ctx (contexts' figures) has a fast smoke in ctest: every section at a hundredth of its
# size, checking that it runs and that its counts hold (the figures at that size mean nothing).
if(TARGET bench_ctx)
  add_test(NAME bench_ctx_smoke COMMAND bench_ctx 0.01)
  set_tests_properties(bench_ctx_smoke PROPERTIES TIMEOUT 300
    PASS_REGULAR_EXPRESSION "bench_ctx: ok" FAIL_REGULAR_EXPRESSION "bench_ctx: FAILED")
endif()
