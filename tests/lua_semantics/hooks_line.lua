local lines = {}
local function f(n)
  local s = 0
  for i = 1, n do
    s = s + i
  end
  return s
end
debug.sethook(function(e, l) lines[#lines+1] = l end, "l")
f(2)
local x = 1
if x then
  x = x + 1
end
debug.sethook()
print(table.concat(lines, " "))
local evs = {}
debug.sethook(function(e, l) evs[#evs+1] = e .. (l and (":" .. l) or "") end, "crl")
f(1)
debug.sethook()
print(table.concat(evs, " "))
