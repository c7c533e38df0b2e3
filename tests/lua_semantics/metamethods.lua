local V = {}
V.__index = V
V.__add = function(a, b) return setmetatable({x = a.x + b.x}, V) end
V.__sub = function(a, b) return setmetatable({x = a.x - b.x}, V) end
V.__mul = function(a, b) return type(b) == "number" and setmetatable({x = a.x * b}, V) or a.x * b.x end
V.__eq = function(a, b) return a.x == b.x end
V.__lt = function(a, b) return a.x < b.x end
V.__le = function(a, b) return a.x <= b.x end
V.__tostring = function(a) return "V(" .. a.x .. ")" end
V.__len = function(a) return a.x end
V.__call = function(a, y) return a.x + y end
V.__concat = function(a, b) return tostring(a) .. "|" .. tostring(b) end
V.__unm = function(a) return setmetatable({x = -a.x}, V) end
V.__idiv = function(a, b) return "idiv" end
V.__mod = function() return "mod" end
V.__pow = function() return "pow" end
V.__div = function() return "div" end
V.__band = function() return "band" end
V.__bor = function() return "bor" end
V.__bxor = function() return "bxor" end
V.__shl = function() return "shl" end
V.__shr = function() return "shr" end
V.__bnot = function() return "bnot" end
V.__name = "Vector"
local function v(x) return setmetatable({x = x}, V) end
local a, b = v(1), v(2)
print(tostring(a + b), tostring(a - b), tostring(a * 3), a * b, a == b, a == v(1), a < b, a <= b, a > b, a >= b)
print(#a, a(10), a .. b, a .. "s", "s" .. a, tostring(-a))
print(a // b, a % b, a ^ b, a / b, a & b, a | b, a ~ b, a << b, a >> b, ~a)
print(rawequal(a, v(1)), rawlen({1, 2}), rawget(a, "x"))
local ro = setmetatable({}, {__newindex = function(t, k, val) rawset(t, k, val * 2) end})
ro.y = 5 print(ro.y)
local chain = setmetatable({}, {__index = setmetatable({mid = "m"}, {__index = {deep = "d"}})})
print(chain.mid, chain.deep, chain.none)
local prot = setmetatable({}, {__metatable = "locked"})
print(getmetatable(prot), pcall(setmetatable, prot, {}))
print(getmetatable("").__index == string, getmetatable("abc").__name)
local named = setmetatable({}, {__name = "MyType"})
print((tostring(named):gsub("0x%x+", "ADDR"):gsub(": [%x]+$", ": ADDR")))
print(pcall(function() return named + 1 end))
print(pcall(function() return named < named end))
local idx = setmetatable({}, {__index = function(t, k) return k .. "!" end})
print(idx.hello, idx[1])
local calls = setmetatable({}, {__call = function(self, ...) return select("#", ...) end})
print(calls(1, 2, 3), pcall(calls))
local cmp = setmetatable({}, {__lt = function() return 1 end, __le = function() return nil end})
print(cmp < cmp, cmp <= cmp, cmp > cmp)
print(pcall(function() return {} < {} end))
