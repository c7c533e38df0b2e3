local a, b = 1, 2
local function f() return a + b end
print(debug.getupvalue(f, 1), debug.getupvalue(f, 2), debug.getupvalue(f, 3))
print(debug.setupvalue(f, 1, 10), f())
local function g() return a end
print(debug.upvalueid(f, 1) == debug.upvalueid(g, 1), debug.upvalueid(f, 2) == debug.upvalueid(g, 1))
debug.upvaluejoin(g, 1, f, 2)
print(g())
print(pcall(debug.upvalueid, f, 5))
print(debug.getupvalue(print, 1))
local function counter() local n = 0 return function() n = n + 1 return n end end
local c1 = counter()
c1() c1()
print(debug.getupvalue(c1, 1))
local env = debug.getupvalue(load("return x"), 1)
print(env, env == "_ENV")
