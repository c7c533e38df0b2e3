local function closer(name) return setmetatable({}, {__close = function(_, e) print("close", name, e) end}) end
do
  local a <close> = closer("a")
  local b <close> = closer("b")
  local c <close> = nil
  local d <close> = false
  print("body")
end
local function early()
  local x <close> = closer("x")
  return "returned"
end
print(early())
for i = 1, 2 do
  local y <close> = closer("loop" .. i)
  if i == 2 then break end
end
print(pcall(function()
  local z <close> = closer("z")
  error("err", 0)
end))
print(pcall(function() local bad <close> = {} end))
print(pcall(function() local bad <close> = 42 end))
print(pcall(function()
  local e1 <close> = setmetatable({}, {__close = function(_, e) error("e1 got " .. tostring(e), 0) end})
  local e2 <close> = setmetatable({}, {__close = function(_, e) error("e2 got " .. tostring(e), 0) end})
  error("orig", 0)
end))
do
  local i = 0
  ::again::
  do
    local g <close> = closer("goto" .. i)
    i = i + 1
    if i < 2 then goto again end
  end
end
local function iter()
  local n = 0
  return function() n = n + 1 if n <= 2 then return n end end, nil, nil, closer("for-iter")
end
for v in iter() do print("v", v) end
for v in iter() do print("v", v) break end
local co = coroutine.wrap(function()
  local w <close> = closer("in co")
  coroutine.yield(1)
  return 2
end)
print(co(), co())
print(load("local x <close> = 1; x = 2"))
print(load("local x <foo> = 1"))
print(pcall(function() local a <close> = setmetatable({}, {__close = function(...) print(select("#", ...)) end}) return "tbc" end))
