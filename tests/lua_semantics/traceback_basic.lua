local function a() return debug.traceback("in a") end
local function b() return a() .. "" end
local function c() local r = b() return r end
print(c())
print(debug.traceback())
print(debug.traceback("msg", 1))
print(debug.traceback("msg", 2))
print(debug.traceback("msg", 50))
print(debug.traceback(nil))
print(type(debug.traceback({})))
print(debug.traceback(42))
local function tail() return debug.traceback("tail") end
local function calls_tail() return tail() end
print(calls_tail())
local t = setmetatable({}, {__index = function(t, k) return debug.traceback("meta " .. k) end})
print(t.key)
print(select(2, xpcall(function() local x = nil; return x + 1 end, debug.traceback)))
print(select(2, xpcall(function() error("lvl2", 2) end, debug.traceback)))
local function rec(n) if n == 0 then return debug.traceback("deep") end return (rec(n - 1)) end
print(rec(30))
print(pcall(debug.traceback, "m", "notanumber"))
print((string.gsub(debug.traceback("via gsub"), "\n", " | ")))
for line in debug.traceback("iter"):gmatch("[^\n]+") do print("L", line) end
print(pcall(string.rep))
