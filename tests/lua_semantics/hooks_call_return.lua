local ev = {}
local function h(e)
  local i = debug.getinfo(2, "nS")
  ev[#ev+1] = e .. ":" .. tostring(i.name) .. ":" .. i.what
end
local function leaf(x) return x + 1 end
local function mid(x) return leaf(x) * 2 end
local function top() local r = mid(1) return r end
debug.sethook(h, "cr")
top()
string.format("%d", 1)
pcall(error, "x")
local t = setmetatable({}, {__index = function() return 1 end})
local _ = t.x
debug.sethook()
for _, e in ipairs(ev) do print(e) end
print(#ev)
