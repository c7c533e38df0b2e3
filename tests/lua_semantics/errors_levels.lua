local function lvl(n) error("at level " .. n, n) end
local function caller(n) lvl(n) end
for n = 0, 4 do print(pcall(caller, n)) end
print(pcall(error))
print(pcall(error, nil))
print(pcall(error, 42))
print(pcall(error, "x", 1))
print(pcall(error, "x", 2))
local function f() local ok, e = pcall(error, "inner", 2) return e end
print(f())
print(select("#", pcall(error)))
local function g() error() end
print(pcall(g))
print(pcall(assert, false))
print(pcall(assert, nil, "assert msg"))
print(type(select(2, pcall(assert, false, {1}))))
print(pcall(assert, 1, 2, 3))
print(pcall(assert))
