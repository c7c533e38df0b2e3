-- The second reproducer: what a return hook sees.
local names = {}
local function foo() return 1 end
debug.sethook(function(e) names[#names+1] = e .. " " .. tostring(debug.getinfo(2, "n").name) end, "r")
foo()
debug.sethook()
print(table.concat(names, ", "))
