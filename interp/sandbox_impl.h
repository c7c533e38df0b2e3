/* sandbox_impl.h - internal to interp/: what sandbox.c takes from sandbox_bounds.c. */
#ifndef INTERP_SANDBOX_IMPL_H
#define INTERP_SANDBOX_IMPL_H

#include <lua.h>

/* Replace, in the library table at the top of the stack, the functions whose C code would
 * run unbounded: string (find, match, gmatch, gsub, rep: the interruptible versions of
 * lib_string.c; format: C stack reserve) and table (insert, remove, move, concat: polled
 * loops; sort: lib_sort.c). The table stays at the top. Raise on memory error. */
void interp__sandbox_bound_string(lua_State *L);
void interp__sandbox_bound_table(lua_State *L);

/* Raise "C stack overflow" when less than the reserve of the running thread's stack is left. */
void interp__sandbox_check_c_stack(lua_State *L);
/* A C closure: check the C stack, then call upvalue 1 with every argument. */
int interp__sandbox_stack_checked(lua_State *L);
/* Replace the table at the top of the stack by a read-only proxy of it (sandbox.c; for host
 * libraries, hostlib.c). Only in a sandboxed state, after its profile is open. */
void interp__sandbox_readonly(lua_State *L);

/* sandbox_ids.c: tostring of tables, functions, coroutines and userdata with a per-state
 * counter in place of the address (pushes the text, returns it); and the installation of
 * tostring into the globals at g and of string.format's wrapper into the string table at
 * string (whose format must already be there). */
const char *interp__sandbox_tolstring(lua_State *L, int idx, size_t *len);
void interp__sandbox_ids_install(lua_State *L, int g, int string);

#endif
