-- The deliberate differences between lua5.4 and a worker, each named in test_lua_semantics.c.
print("arg", type(arg))
print("interp", type(interp))
print("exiting")
print("os.exit", pcall(os.exit, 0))
