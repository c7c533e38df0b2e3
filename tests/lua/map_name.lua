-- pool:map with the name of a global function defined by init
local ip = require "interp_pool"

local pool <close> = ip.new{workers = 2, init = [[
  function square(x) return x * x end
  function pair(x) return x, -x end
  function fail_on(x, bad) if x == 3 then error("three is not allowed") end return x end
  function describe(t) return t.name .. "=" .. #t.items end
]]}

local list = {}
for i = 1, 2000 do list[i] = i end
local out = pool:map("square", list)
assert(#out == 2000, "one result per item")
for i = 1, 2000 do assert(out[i] == i * i, "item " .. i) end

-- chunksize 1, floats stay floats, integers stay integers
local out2 = pool:map("square", {1.5, 2, -3}, {chunksize = 1})
assert(out2[1] == 2.25 and math.type(out2[1]) == "float")
assert(out2[2] == 4 and math.type(out2[2]) == "integer")
assert(out2[3] == 9)

-- only the first value of each call is kept
local out3 = pool:map("pair", {5, 6})
assert(out3[1] == 5 and out3[2] == 6)

-- a list read through its metamethods (__len, __index) as lua_geti reads it; a plain list
-- is read raw: the same items either way
local proxy = setmetatable({}, {__len = function() return 3 end,
                                __index = function(_, i) return i * 10 end})
local out5 = pool:map("square", proxy)
assert(#out5 == 3 and out5[1] == 100 and out5[3] == 900)
local out6 = pool:map(function(x) return x, 0 end, {"a", 1.5, true})
assert(out6[1] == "a" and out6[2] == 1.5 and out6[3] == true, "first values only, any type")

-- tables go in as arguments
local out4 = pool:map("describe", {{name = "a", items = {1, 2}}, {name = "b", items = {}}})
assert(out4[1] == "a=2" and out4[2] == "b=0")

-- an empty list
local empty = pool:map("square", {})
assert(type(empty) == "table" and next(empty) == nil)

-- the lowest failing item is named in the error, with the worker's traceback
local ok, err = pcall(pool.map, pool, "fail_on", {1, 2, 3, 4, 3})
assert(not ok, "map of a failing item must raise")
assert(err:find("item 3 failed", 1, true), err)
assert(err:find("three is not allowed", 1, true), err)
assert(err:find("stack traceback", 1, true), err)

-- a name the workers do not define
ok, err = pcall(pool.map, pool, "no_such_function", {1})
assert(not ok and err:find("item 1", 1, true), err)

-- bad arguments are clear errors
ok, err = pcall(pool.map, pool, "square", {1}, {chunk = 2})
assert(not ok and err:find("unknown option 'chunk'", 1, true), err)
ok, err = pcall(pool.map, pool, "square", {1}, {timeout = -1})
assert(not ok and err:find("timeout", 1, true), err)
ok, err = pcall(pool.map, pool, "square", 42)
assert(not ok and err:find("table expected", 1, true), err)
ok, err = pcall(pool.map, pool, 42, {1})
assert(not ok and err:find("expected a function or the name", 1, true), err)
ok, err = pcall(pool.map, pool, "square", {1, io.stdout})
assert(not ok and err:find("pool:map: list[2]: cannot copy a userdata", 1, true), err)
-- the codec's text goes on from the item's name (interp_msg_from_lua_slab)
ok, err = pcall(pool.map, pool, "square", {1, 2, {a = {3, io.stdout}}})
assert(not ok and err:find("pool:map: list[3].a[2]: cannot copy a userdata", 1, true), err)
ok, err = pcall(pool.map, pool, "square", {{[true] = print}})
assert(not ok and err:find("pool:map: list[1][true]: cannot copy a C function", 1, true), err)

-- items travel in packs (one message per pack each way): errors still name the item
local many = {}
for i = 1, 3000 do many[i] = i end
ok, err = pcall(pool.map, pool, function(x) if x == 2500 or x == 2600 then error("bad " .. x) end
  return x end, many, {chunksize = 1000})
assert(not ok and err:find("item 2500 failed", 1, true) and err:find("bad 2500", 1, true), err)
ok, err = pcall(pool.map, pool, function(x) if x == 1500 then return coroutine.create(print) end
  return x end, many)
assert(not ok and err:find("item 1500 failed", 1, true) and err:find("cannot copy", 1, true), err)
many[2500] = io.stdout
ok, err = pcall(pool.map, pool, "square", many, {chunksize = 1000})
assert(not ok and err:find("list[2500]", 1, true) and err:find("userdata", 1, true), err)
many[2500] = 2500
local out7 = pool:map("square", many, {chunksize = 7})
for i = 1, 3000 do assert(out7[i] == i * i, "item " .. i) end
-- a sandboxed call sees a fresh environment, call by call, inside a pack
local sb <close> = ip.new{workers = 2, sandbox = true,
  init = "function probe(x) local was = seen; seen = x; return was == nil end"}
local fresh = sb:map("probe", many, {chunksize = 500})
for i = 1, 3000 do assert(fresh[i] == true, "item " .. i) end

-- the pool cannot be shut down under its own map (a metamethod of the list tries)
local victim = ip.new{workers = 1, init = "function id(x) return x end"}
local tricky = setmetatable({}, {__len = function() return 3 end,
  __index = function(_, i) if i == 2 then victim:shutdown() end return i end})
ok, err = pcall(victim.map, victim, "id", tricky)
assert(not ok and err:find("running on this thread", 1, true), err)
assert(victim:map("id", {4})[1] == 4, "the pool still works")
victim:shutdown()

-- an overall timeout: items not finished in time fail
local slow <close> = ip.new{workers = 1, init = "function spin() while true do end end"}
ok, err = pcall(slow.map, slow, "spin", {1, 2}, {timeout = 0.1})
assert(not ok and err:lower():find("time", 1, true), err)

print("map_name: ok")
