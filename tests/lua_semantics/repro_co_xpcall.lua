-- The first reproducer of the issue: a coroutine that yields from an iterator inside an
-- xpcall'ed pcall (returns replaced by prints: the late run appends code after the script).
local f = function (s, i) return coroutine.yield(i) end
local f1 = coroutine.wrap(function ()
  return xpcall(pcall, function (...) return ... end, function ()
    local s = 0
    for i in f, nil, 1 do pcall(function () s = s + i end) end
    error({s})
  end)
end)
f1()
for i = 1, 10 do assert(f1(i) == i) end
local r1, r2, v = f1(nil)
assert(r1 and not r2 and v[1] == 55)
print("OK")
