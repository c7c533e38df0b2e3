# test_pool_growth_stress makes thread starts fail on demand: its calls and the library's to
# pthread_create go through the test's __wrap_pthread_create.
if(TARGET test_pool_growth_stress)
  target_link_options(test_pool_growth_stress PRIVATE -Wl,--wrap=pthread_create)
endif()
