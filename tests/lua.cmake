# Tests of the Lua module (lua/) and the interp-pool command (cli/), included by
# tests/CMakeLists.txt. Every tests/lua/*.lua runs twice: under the real lua5.4 with LUA_CPATH
# pointing at the build tree, and under `interp-pool run` (the module preloaded; in sanitizer
# builds this is the run that the sanitizers see whole). Every tests/cli/*.sh drives the
# command on real input files. examples/lua/pi.lua runs with small inputs.
#
# tests/ is configured before lua/ and cli/ (top CMakeLists.txt), so the registration is
# deferred to the end of the top directory, when their targets exist (or were skipped).
function(interp_register_lua_tests)
if(NOT TARGET interp_pool_luamod)
  return()
endif()
find_program(INTERP_LUA54 lua5.4)
find_program(INTERP_BASH bash)

set(lua_env
  "LUA_CPATH=$<TARGET_FILE_DIR:interp_pool_luamod>/?.so"
  "LUA_PATH=${PROJECT_SOURCE_DIR}/tests/lua/?.lua"
  "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1"
  "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
  "TSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/tsan.supp halt_on_error=1 second_deadlock_stack=1")

# lua5.4 itself is not instrumented: a sanitized module needs its runtime loaded first.
set(lua_preload "")
if(INTERP_SANITIZE MATCHES "address")
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
    OUTPUT_VARIABLE rt OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(lua_preload "LD_PRELOAD=${rt}")
elseif(INTERP_SANITIZE MATCHES "thread")
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libtsan.so
    OUTPUT_VARIABLE rt OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(lua_preload "LD_PRELOAD=${rt}")
endif()

# A C module of the tests (ip.new{libs = ...}), next to interp_pool.so so that LUA_CPATH finds
# it. Like interp_pool.so it does not link liblua: it uses the Lua of the process loading it.
add_library(iptest_mod MODULE ${PROJECT_SOURCE_DIR}/tests/lua/cmod/iptest_mod.c)
target_include_directories(iptest_mod PRIVATE ${LUA_INCLUDE_DIRS})
set_target_properties(iptest_mod PROPERTIES PREFIX "" SUFFIX ".so"
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lua)

file(GLOB interp_lua_tests CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/lua/*.lua)
foreach(script ${interp_lua_tests})
  get_filename_component(name ${script} NAME_WE)
  if(INTERP_LUA54)
    add_test(NAME lua_${name} COMMAND ${INTERP_LUA54} ${script})
    set_tests_properties(lua_${name} PROPERTIES TIMEOUT 120
      ENVIRONMENT "${lua_env};${lua_preload}")
  endif()
  if(TARGET interp-pool)
    add_test(NAME cli_run_${name} COMMAND interp-pool run ${script})
    set_tests_properties(cli_run_${name} PROPERTIES TIMEOUT 120 ENVIRONMENT "${lua_env}")
  endif()
endforeach()

if(TARGET interp-pool AND INTERP_BASH)
  file(GLOB interp_cli_tests CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/cli/*.sh)
  foreach(script ${interp_cli_tests})
    get_filename_component(name ${script} NAME_WE)
    add_test(NAME cli_${name} COMMAND ${INTERP_BASH} ${script})
    set_tests_properties(cli_${name} PROPERTIES TIMEOUT 120
      ENVIRONMENT "${lua_env};IP=$<TARGET_FILE:interp-pool>;DATA=${PROJECT_SOURCE_DIR}/tests/cli/data;INTERP_SANITIZE=${INTERP_SANITIZE}")
  endforeach()
endif()

if(INTERP_LUA54)
  add_test(NAME example_lua_pi COMMAND ${INTERP_LUA54} ${PROJECT_SOURCE_DIR}/examples/lua/pi.lua 50000 4)
  set_tests_properties(example_lua_pi PROPERTIES TIMEOUT 120 PASS_REGULAR_EXPRESSION "speedup"
    ENVIRONMENT "${lua_env};${lua_preload}")
endif()

if(INTERP_LUA54)
  add_test(NAME example_lua_wordfreq
    COMMAND ${INTERP_LUA54} ${PROJECT_SOURCE_DIR}/examples/lua/wordfreq.lua - 2 20000)
  set_tests_properties(example_lua_wordfreq PROPERTIES TIMEOUT 120
    PASS_REGULAR_EXPRESSION "20000 lines, 4 blocks, 17 distinct words"
    ENVIRONMENT "${lua_env};${lua_preload}")
endif()

# The Lua-side benchmark at 1% of its counts: every result it checks must hold.
if(INTERP_LUA54)
  add_test(NAME bench_lua_smoke COMMAND ${INTERP_LUA54} ${PROJECT_SOURCE_DIR}/bench/lua/bench_lua.lua 0.01)
  set_tests_properties(bench_lua_smoke PROPERTIES TIMEOUT 120 PASS_REGULAR_EXPRESSION "bench_lua: ok"
    ENVIRONMENT "${lua_env};${lua_preload}")
endif()
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL interp_register_lua_tests)
