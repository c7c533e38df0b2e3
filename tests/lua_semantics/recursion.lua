local function inf(n) return 1 + inf(n + 1) end
local ok, e = pcall(inf, 1)
print(ok, e)
local depth = 0
local function deep() depth = depth + 1 deep() end
print(pcall(deep))
print(depth > 1000)
local function cstack(n) return string.gsub("x", "x", function() return cstack(n + 1) end) end
print(pcall(cstack, 1))
local t = setmetatable({}, {})
getmetatable(t).__index = function(tt, k) return tt[k] end
print(pcall(function() return t.x end))
local function tail(n) if n == 0 then return "tail done" end return tail(n - 1) end
print(tail(1000000))
local co = coroutine.wrap(function() return pcall(inf, 1) end)
print(co())
local nest = 0
local function nco() nest = nest + 1 return coroutine.wrap(nco)() end
print(pcall(nco))
print(nest > 100)
local s = string.rep("(", 300) .. string.rep(")", 300)
print(load("return " .. s))
