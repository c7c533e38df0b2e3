-- LuaRocks: `luarocks make` in a checkout builds and installs the `interp_pool` Lua module
-- with the project's CMake (the cmake back-end, as luv does), the module only: it takes Lua
-- from the interpreter that loads it (it does not link liblua).
rockspec_format = "3.0"
package = "interp_pool"
version = "scm-1"
-- The project has no public repository yet: `luarocks make` builds from the checkout it runs
-- in and never fetches this. Set the real address when there is one.
source = {
  url = "git+https://example.invalid/interp_pool.git",
}
description = {
  summary = "Parallel isolated Lua 5.4 states on worker threads in one process",
  detailed = [[
A pool of worker threads, each owning one isolated Lua 5.4 state: pool:map, submit and
futures, wait, channels between workers, deadlines, memory limits and a sandbox.
Values cross between states as MessagePack copies.]],
  license = "MIT",
  labels = { "parallel", "threads", "executor" },
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
external_dependencies = {
  MSGPUCK = { header = "msgpuck.h" },
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_C_FLAGS = "$(CFLAGS)",
    CMAKE_MODULE_LINKER_FLAGS = "$(LIBFLAG)",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    INTERP_LUA_MODULE_ONLY = "ON",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUADIR = "$(LUADIR)",
    INTERP_LUA_CMOD_DIR = "$(LIBDIR)",
    MSGPUCK_INCLUDE_DIR = "$(MSGPUCK_INCDIR)",
  },
}
