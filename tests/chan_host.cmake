# test_chan_host links the `interp_pool` Lua module's objects (lua/), as `interp-pool run`
# does. tests/ is configured before lua/, so adding them is deferred to the end of the top
# directory.
function(interp_setup_chan_host_test)
  if(TARGET test_chan_host AND TARGET interp_pool_luamod_objs)
    target_sources(test_chan_host PRIVATE $<TARGET_OBJECTS:interp_pool_luamod_objs>)
    target_include_directories(test_chan_host PRIVATE ${PROJECT_SOURCE_DIR}/lua)
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL interp_setup_chan_host_test)
