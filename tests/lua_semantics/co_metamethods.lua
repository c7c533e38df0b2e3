-- yields from metamethods called by the VM
local y = coroutine.yield
local mt = {
  __index = function(t, k) return y("index " .. k) end,
  __newindex = function(t, k, v) rawset(t, k, y("newindex " .. k)) end,
  __add = function(a, b) return y("add") end,
  __concat = function(a, b) return y("concat") end,
  __eq = function(a, b) return y("eq") end,
  __lt = function(a, b) return y("lt") end,
  __le = function(a, b) return y("le") end,
  __len = function(a) return y("len") end,
  __unm = function(a) return y("unm") end,
  __call = function(self, x) return y("call " .. x) end,
  __close = function() y("close") end,
}
local co = coroutine.wrap(function()
  local a, b = setmetatable({}, mt), setmetatable({}, mt)
  print("index ->", a.foo)
  a.bar = 1
  print("newindex ->", rawget(a, "bar"))
  print("add ->", a + 1)
  print("concat ->", a .. "s")
  print("eq ->", a == b)
  print("lt ->", a < b)
  print("le ->", a <= b)
  print("len ->", #a)
  print("unm ->", -a)
  print("call ->", a("x"))
  do local c <close> = a end
  for i, v in function(_, i) if i < 2 then return y("iter " .. i) end end, nil, 0 do
    print("for", i)
  end
  return "over"
end)
local r = co()
while r ~= "over" do
  print("yield", r)
  if r:find("^iter") then r = co(tonumber(r:match("%d")) + 1)
  elseif r == "eq" or r == "lt" or r == "le" then r = co(true)
  else r = co(r:upper()) end
end
print(r)
