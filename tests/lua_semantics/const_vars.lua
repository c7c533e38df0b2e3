local a <const> = 10
local b <const> = "str"
local c <const> = {1}
c[1] = 2
print(a, b, c[1])
print(load("local x <const> = 1; x = 2"))
print(load("local x <const> = 1; local function f() x = 3 end"))
print(load("local x <const>, y = 1, 2; y = 3 return y")())
print(load("local x <const> = 1; return function() return x end")()())
local function f() local k <const> = 5 return k * 2 end
print(f(), (debug.getlocal(1, 1)))
print(load("local a <const> = 1 + 2; return a")())
local big <const> = 2^53
print(big, math.type(big))
print(load("local s <const> = 'x'; s = 'y'"))
