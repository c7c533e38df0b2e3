local ev = {}
local function t3() return 3 end
local function t2() return t3() end
local function t1() return t2() end
debug.sethook(function(e)
  local i = debug.getinfo(2, "nt")
  ev[#ev+1] = e .. ":" .. tostring(i.name) .. ":" .. tostring(i.istailcall)
end, "cr")
t1()
debug.sethook()
print(table.concat(ev, "\n"))
