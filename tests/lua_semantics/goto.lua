for i = 1, 3 do
  for j = 1, 3 do
    if j == 2 then goto continue end
    print(i, j)
    ::continue::
  end
end
do
  local k = 0
  ::top::
  k = k + 1
  if k < 3 then goto top end
  print("k", k)
end
local fs = {}
do
  local i = 1
  ::again::
  local x = i
  fs[#fs+1] = function() return x end
  i = i + 1
  if i <= 3 then goto again end
end
print(fs[1](), fs[2](), fs[3]())
print(load("goto nowhere"))
print(load("do local a ::l:: goto l2 local b ::l2:: end") ~= nil)
print(load("::a:: ::a::"))
print(load("goto f; local x; ::f:: print(x)") ~= nil)
print(load("do goto e end ::e::") ~= nil)
while true do
  goto out
end
::out::
print("out")
