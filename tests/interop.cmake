# Interoperability with an independent MessagePack implementation (Debian's python3-msgpack):
# tests/interop/msg_interop.c writes and reads message files, tests/interop/test_interop.py
# checks them with msgpack.unpackb / Unpacker and writes files for the C side to read.
# CI installs python3-msgpack (scripts/deps.sh); the test fails, not skips, without it.
add_executable(msg_interop ${CMAKE_CURRENT_SOURCE_DIR}/interop/msg_interop.c)
interp_target_setup(msg_interop)
target_include_directories(msg_interop PRIVATE ${MSGPUCK_INCLUDE_DIR})
target_link_libraries(msg_interop PRIVATE interp_pool)
# The Lua half: interp_msg_from_lua / interp_msg_to_lua.
target_compile_definitions(msg_interop PRIVATE INTERP_INTEROP_LUA=1)
add_test(NAME msg_interop
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/interop/test_interop.py
          $<TARGET_FILE:msg_interop> ${CMAKE_CURRENT_BINARY_DIR}/interop_data)
set_tests_properties(msg_interop PROPERTIES
  ENVIRONMENT "TSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/tsan.supp halt_on_error=1;ASAN_OPTIONS=detect_leaks=1:abort_on_error=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
  TIMEOUT 300)
