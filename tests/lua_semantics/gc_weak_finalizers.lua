local log = {}
do
  for i = 1, 3 do setmetatable({}, {__gc = function() log[#log+1] = "gc" .. i end}) end
end
collectgarbage() collectgarbage()
table.sort(log)
print(table.concat(log, " "))
local weak = setmetatable({}, {__mode = "k"})
local strongkey = {}
weak[strongkey] = 1
weak[{}] = 2
collectgarbage()
local n = 0 for _ in pairs(weak) do n = n + 1 end
print("weak keys", n)
local wv = setmetatable({}, {__mode = "v"})
wv[1] = {} wv[2] = strongkey wv[3] = "str"
collectgarbage()
print("weak values", wv[1], wv[2] == strongkey, wv[3])
local eph = setmetatable({}, {__mode = "k"})
do local k = {} eph[k] = {k} end
collectgarbage()
print("ephemeron", next(eph))
local resurrect
do setmetatable({}, {__gc = function(o) resurrect = o end}) end
collectgarbage()
print("resurrected", type(resurrect))
local order = {}
do
  local a = setmetatable({}, {__gc = function() order[#order+1] = "a" end})
  local b = setmetatable({}, {__gc = function() order[#order+1] = "b" end})
end
collectgarbage()
print(table.concat(order, ""))
local ok = pcall(function() setmetatable({}, {__gc = function() error("in gc") end}) collectgarbage() end)
print("gc error swallowed", ok)
