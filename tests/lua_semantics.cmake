# The differential test (test_lua_semantics.c): where its scripts are and which lua5.4 they
# are compared with. Without lua5.4 the test skips.
find_program(INTERP_LUA54_EXE lua5.4)
if(TARGET test_lua_semantics)
  if(NOT INTERP_LUA54_EXE)
    set(INTERP_LUA54_EXE "")
  endif()
  target_compile_definitions(test_lua_semantics PRIVATE
    LUA_SEM_DIR="${CMAKE_CURRENT_SOURCE_DIR}/lua_semantics" LUA54_EXE="${INTERP_LUA54_EXE}")
endif()
