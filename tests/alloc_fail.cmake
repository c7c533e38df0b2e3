# Tests that inject allocation failures (tests/alloc_fail.h): their calls and the library's
# to malloc, calloc and realloc go through the test's __wrap_* functions.
foreach(t test_msg_c test_msg_pack test_interp_memory)
  if(TARGET ${t})
    target_link_options(${t} PRIVATE -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc)
  endif()
endforeach()
