local t = {1, 2, 3}
table.insert(t, 4) table.insert(t, 1, 0)
print(table.concat(t, ","), table.remove(t), table.remove(t, 1), table.concat(t, ","))
print(table.remove({}), table.remove({}, 0), #t)
print(pcall(table.insert, t, 10, 1))
print(pcall(table.remove, t, 10))
print(table.concat({1, 2.5, "x"}, "-", 2, 3), table.concat({}, "x"), table.concat({1, 2}, "", 3))
print(table.unpack({1, 2, 3}, 2), table.unpack({1, 2}, 1, 4), select("#", table.unpack({}, 1, 0)))
local p = table.pack(1, nil, 3)
print(p.n, p[1], p[2], p[3])
print(table.concat(table.move({1, 2, 3, 4, 5}, 2, 4, 1), ","))
print(table.concat(table.move({1, 2, 3}, 1, 3, 3), ","))
print(table.concat(table.move({1, 2}, 1, 2, 1, {9, 9, 9}), ","))
local words = {"pear", "Apple", "fig", "banana", "cherry", "date"}
table.sort(words) print(table.concat(words, " "))
table.sort(words, function(a, b) return #a < #b or (#a == #b and a < b) end) print(table.concat(words, " "))
local nums = {5, 3, 8, 1, 9, 2, 7, 4, 6, 10, 15, 12, 11, 14, 13}
table.sort(nums, function(a, b) return a > b end) print(table.concat(nums, " "))
print(pcall(table.sort, {1, "x", 2}))
print(pcall(table.sort, {3, 2, 1, 4, 5}, function() return true end))
local proxy = setmetatable({}, {__index = function(_, i) if i <= 3 then return i * 10 end end, __len = function() return 3 end})
print(table.concat(proxy, ","), table.unpack(proxy))
print(#{1, 2, 3, nil}, #{n = 1}, next({}), rawlen({1, 2}), rawlen("abc"))
local keys = {}
for k, v in pairs({10, 20, 30}) do keys[#keys+1] = k .. "=" .. v end
print(table.concat(keys, " "))
for i, v in ipairs({1, 2, nil, 4}) do print("ipairs", i, v) end
local mt = setmetatable({}, {__index = function(_, i) if i < 4 then return "v" .. i end end})
for i, v in ipairs(mt) do print("ipairs meta", i, v) end
