local co = coroutine.create(function(p)
  local function inner(q)
    local z = q * 2
    coroutine.yield()
  end
  inner(p + 1)
end)
coroutine.resume(co, 10)
for level = 0, 3 do
  local i = debug.getinfo(co, level, "nSl")
  if i then print(level, i.name, i.what, i.currentline, i.short_src) else print(level, nil) end
end
for level = 0, 1 do
  local idx = 1
  while true do
    local name, val = debug.getlocal(co, level, idx)
    if not name then break end
    print("co local", level, idx, name, val)
    idx = idx + 1
  end
end
print(debug.setlocal(co, 0, 2, 99), select(2, debug.getlocal(co, 0, 2)))
print(debug.getinfo(co, 5))
print(pcall(debug.getlocal, co, 5, 1))
local w = coroutine.wrap(function()
  local i = debug.getinfo(1, "nS")
  print("in wrap", i.what, i.short_src, debug.getinfo(2))
  print("level2 in coroutine", debug.getinfo(2, "S"))
end)
w()
