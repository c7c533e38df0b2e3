# bench_chan_pool needs core/ (the pool): until it is in the tree, build it only on demand.
if(TARGET bench_chan_pool AND NOT EXISTS ${PROJECT_SOURCE_DIR}/core/pool.c)
  set_target_properties(bench_chan_pool PROPERTIES EXCLUDE_FROM_ALL TRUE)
endif()
