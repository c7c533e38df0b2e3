local function count(...) return select("#", ...) end
print(count(), count(nil), count(nil, nil), count(1, nil, 3, nil))
print(select(2, "a", "b", "c"), select(-1, "a", "b", "c"), select(-2, "a", "b", "c"))
print(pcall(select, -4, "a", "b", "c"))
local function pass(...) return ... end
print(pass(1, 2, 3), (pass(1, 2, 3)), #{pass(1, 2)}, #{pass(1, nil, 3)})
local function pk(...) local t = table.pack(...) return t.n end
print(pk(nil, nil, nil))
local function tailv(...) return select("#", ...), pass(...) end
print(tailv("x", nil))
local function vf(...) local a, b = ... return a, b end
print(vf(1), vf(1, 2, 3))
print(string.format("%s %s", pass("a", "b", "c")))
print(math.max(pass(3, 9, 2)))
local t = {pass(1, 2), pass(3, 4)}
print(#t, t[1], t[2], t[3])
local function many() local r = {} for i = 1, 250 do r[i] = i end return table.unpack(r) end
print(select("#", many()), (select(250, many())))
print(pcall(table.unpack, {}, 1, 1e7))
