local function show(level)
  local i = debug.getinfo(level + 1, "nSltufr")
  if not i then print(level, "none") return end
  print(level, i.name, i.namewhat, i.what, i.short_src, i.source, i.currentline,
        i.linedefined, i.lastlinedefined, i.nups, i.nparams, i.isvararg, i.istailcall,
        i.ftransfer, i.ntransfer, type(i.func))
end
local function a(x, y, ...) for l = 0, 4 do show(l) end end
local function b() a(1, 2) end
b()
print(debug.getinfo(1, "S").what, debug.getinfo(1, "l").currentline)
print(debug.getinfo(print).what, debug.getinfo(print).short_src, debug.getinfo(print).currentline)
print(debug.getinfo(100))
print(pcall(debug.getinfo, 1, ">"))
print(pcall(debug.getinfo, 1, "!"))
local function lines_here()
  local x = 1
  return x
end
local L = debug.getinfo(lines_here, "L").activelines
local keys = {}
for k in pairs(L) do keys[#keys+1] = k end
table.sort(keys)
print(#keys, keys[1], keys[#keys])
local f = function() end
local fi = debug.getinfo(f, "SL")
print(fi.linedefined, fi.lastlinedefined, next(fi.activelines))
local mt = setmetatable({}, {__index = function() return debug.getinfo(2, "n") end})
local ni = mt.anything
print(ni.name, ni.namewhat)
local obj = {m = function(self) return debug.getinfo(1, "n") end}
print(obj:m().name, obj:m().namewhat, obj.m(obj).namewhat)
print(debug.getinfo(1, "t").istailcall)
