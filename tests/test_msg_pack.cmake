# test_msg_pack injects allocation failures: the library's and the test's calls to malloc, calloc
# and realloc go through the test's __wrap_* functions (the library is static, so its objects
# are linked into the test and --wrap applies to them).
if(TARGET test_msg_pack)
  target_link_options(test_msg_pack PRIVATE
    -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc)
endif()
