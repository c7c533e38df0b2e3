local function plain(a, b) return a * b + 1 end
local d = string.dump(plain)
local f = load(d, "dumped", "b")
print(f(6, 7), type(d), d:sub(1, 4) == "\27Lua")
local k = 10
local function withup(x) return x + (k or 0) end
local g = load(string.dump(withup))
print(pcall(g, 1))
debug.setupvalue(g, 1, 5)
print(g(1))
local function errs() error("dumped error") end
print(pcall(load(string.dump(errs))))
print(pcall(load(string.dump(errs, true))))
print(debug.getinfo(load(string.dump(errs)), "S").short_src, debug.getinfo(load(string.dump(errs, true)), "S").short_src)
print(debug.getinfo(load(string.dump(plain)), "S").linedefined, debug.getinfo(load(string.dump(plain, true)), "S").linedefined)
print(pcall(string.dump, print))
local nested = function() local function inner() return "inner" end return inner() end
print(load(string.dump(nested))())
local vararg = function(...) return select("#", ...), ... end
print(load(string.dump(vararg))(1, nil, 3))
local bigconst = function() return 1e300, math.maxinteger, "long string constant " .. ("x"):rep(10), -0.0 end
print(load(string.dump(bigconst))())
print(load(string.dump(plain):sub(1, 20)))
print(#string.dump(plain) > #string.dump(plain, true))
