-- yields across pcall, xpcall, message handlers and error()
local co = coroutine.create(function()
  local ok, v = pcall(function()
    local x = coroutine.yield("in pcall")
    return x * 2
  end)
  print("pcall", ok, v)
  local ok2, e = pcall(function()
    coroutine.yield("before error")
    error("after yield")
  end)
  print("pcall2", ok2, e)
  local ok3, e3 = xpcall(function()
    coroutine.yield("in xpcall")
    error("xp")
  end, function(m)
    local y = coroutine.yield("in handler")
    return "handled " .. m .. " " .. tostring(y)
  end)
  print("xpcall", ok3, e3)
  print(pcall(pcall, coroutine.yield, "nested"))
  return "finished"
end)
local v = {coroutine.resume(co)}
while coroutine.status(co) ~= "dead" do
  print("yielded", table.unpack(v, 2))
  v = {coroutine.resume(co, 21)}
end
print("last", table.unpack(v))
