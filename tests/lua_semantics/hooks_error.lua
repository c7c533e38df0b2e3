local n = 0
local ok, e = pcall(function()
  debug.sethook(function() n = n + 1 if n == 2 then error("hook error") end end, "l")
  local a = 1
  local b = 2
  local c = 3
  return a + b + c
end)
debug.sethook()
print(ok, e)
local co = coroutine.create(function() local x = 1 x = 2 x = 3 return x end)
debug.sethook(co, function() error("co hook") end, "l")
print(coroutine.resume(co))
print(coroutine.status(co))
print(debug.gethook())
