local function f(a, b, ...)
  local c = a + b
  do local inner = "scoped" print(debug.getlocal(1, 4)) end
  for i = 1, 1 do
    local idx = 1
    while true do
      local n, v = debug.getlocal(1, idx)
      if not n then break end
      print(idx, n, v)
      idx = idx + 1
    end
  end
  print(debug.getlocal(1, -1), debug.getlocal(1, -2), debug.getlocal(1, -3))
  print(debug.setlocal(1, 3, 100), c)
  print(debug.setlocal(1, -1, "vararg"), ...)
  return c
end
print(f(1, 2, "x", "y"))
print(debug.getlocal(f, 1), debug.getlocal(f, 2), debug.getlocal(f, 3))
print(debug.getlocal(print, 1))
print(pcall(debug.getlocal, 50, 1))
local function g() local x <close> = nil local y <const> = 5 return debug.getlocal(1, 1), debug.getlocal(1, 2) end
print(g())
local function temps() return debug.getlocal(1, 1) end
print(temps())
