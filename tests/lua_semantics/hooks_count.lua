local function loop(n) local s = 0 for i = 1, n do s = s + i end return s end
for _, count in ipairs({1, 2, 7, 100, 1000}) do
  local c = 0
  debug.sethook(function(e) c = c + 1 end, "", count)
  loop(1000)
  debug.sethook()
  print(count, c)
end
local c = 0
debug.sethook(function() c = c + 1 end, "l", 10)
loop(100)
debug.sethook()
print("line+count", c)
print(debug.gethook())
debug.sethook(print, "", 5)
local h, m, n = debug.gethook()
debug.sethook()
print(h == print, m, n)
