# test_chan_pool needs core/ (the pool) and interp/ (the `interp` module with the channel
# binding). Until both are in the tree, the test is built only on demand and reported as
# disabled, so the rest of the suite stays buildable. Once core/pool.c exists this does nothing.
if(TARGET test_chan_pool AND NOT EXISTS ${PROJECT_SOURCE_DIR}/core/pool.c)
  set_target_properties(test_chan_pool PROPERTIES EXCLUDE_FROM_ALL TRUE)
  set_tests_properties(test_chan_pool PROPERTIES DISABLED TRUE)
endif()
