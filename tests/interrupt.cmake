# Ctrl-C in a script host (tests/interrupt/): SIGINT sent to lua5.4 and to `interp-pool run`
# while the script blocks in pool:map, f:result(), ip.wait and ch:recv. Registered at the end
# of the top directory, when the module and the command exist (as tests/lua.cmake does).
function(interp_register_interrupt_tests)
  find_program(INTERP_PYTHON3 python3)
  find_program(INTERP_LUA54 lua5.4)
  if(NOT TARGET interp_pool_luamod OR NOT INTERP_PYTHON3)
    return()
  endif()
  set(env "LUA_CPATH=$<TARGET_FILE_DIR:interp_pool_luamod>/?.so"
          "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1"
          "TSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/tsan.supp halt_on_error=1")
  set(driver ${PROJECT_SOURCE_DIR}/tests/interrupt/run_interrupt.py)
  # lua5.4 is not instrumented: a sanitized module would need its runtime preloaded, and
  # the run through interp-pool covers those builds.
  if(INTERP_LUA54 AND NOT INTERP_SANITIZE)
    add_test(NAME lua_interrupt COMMAND ${INTERP_PYTHON3} ${driver} ${INTERP_LUA54}
      -- map imap result wait as_completed recv send select)
    set_tests_properties(lua_interrupt PROPERTIES TIMEOUT 120 ENVIRONMENT "${env}")
  endif()
  if(TARGET interp-pool)
    add_test(NAME cli_run_interrupt COMMAND ${INTERP_PYTHON3} ${driver}
      $<TARGET_FILE:interp-pool> run -- map imap result wait as_completed recv send select)
    set_tests_properties(cli_run_interrupt PROPERTIES TIMEOUT 120 ENVIRONMENT "${env}")
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL interp_register_interrupt_tests)
