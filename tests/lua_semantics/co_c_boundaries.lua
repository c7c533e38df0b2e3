-- yields across C functions that cannot continue: each gives Lua's own error
local function try(name, f)
  local co = coroutine.create(f)
  print(name, coroutine.resume(co))
end
try("sort", function() table.sort({3, 2, 1}, function(a, b) coroutine.yield() return a < b end) end)
try("gsub", function() return string.gsub("ab", ".", function(c) coroutine.yield() end) end)
try("load", function() return load(function() coroutine.yield() end) end)
try("tostring", function()
  return tostring(setmetatable({}, {__tostring = function() coroutine.yield() end}))
end)
try("pairs", function()
  for k in pairs(setmetatable({}, {__pairs = function(t) coroutine.yield("p") return next, t end})) do end
  return "pairs ok"
end)
try("require", function() package.preload.yy = function() coroutine.yield() end return require("yy") end)
try("dofile-like", function() return select(2, pcall(load("coroutine.yield(1) return 2"))) end)
try("main yield", function() return pcall(coroutine.yield) end)
print(pcall(coroutine.yield, 1))
print(coroutine.isyieldable())
print(coroutine.wrap(function()
  local seen
  table.sort({1, 2}, function(a, b) seen = coroutine.isyieldable() return a < b end)
  return coroutine.isyieldable(), seen
end)())
