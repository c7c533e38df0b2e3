-- pool:map and pool:submit with a Lua function of the host script, copied as bytecode
local ip = require "interp_pool"

local pool <close> = ip.new{workers = 2, init = "function helper(x) return x + 100 end"}

local out = pool:map(function(x) return x * 2 end, {1, 2, 3, 4})
assert(out[1] == 2 and out[2] == 4 and out[3] == 6 and out[4] == 8)

-- globals of the worker are reachable (_ENV is rebound to the worker's globals)
out = pool:map(function(s) return s:upper() .. string.rep("!", 2) end, {"a", "b"})
assert(out[1] == "A!!" and out[2] == "B!!")
out = pool:map(function(x) return helper(x) end, {1})
assert(out[1] == 101)

-- a function that would work on copies of the host's locals is refused, naming the local
local k = 10
local ok, err = pcall(pool.map, pool, function(x) return x + k end, {1})
assert(not ok and err:find("'k'", 1, true) and err:find("upvalue", 1, true), err)
ok, err = pcall(pool.submit, pool, function() return k end)
assert(not ok and err:find("'k'", 1, true), err)

-- C functions cannot travel
ok, err = pcall(pool.map, pool, print, {1})
assert(not ok and err:find("C function", 1, true), err)

-- a sandboxed pool takes names only
local sb <close> = ip.new{workers = 1, sandbox = true, init = "function id(x) return x end"}
ok, err = pcall(sb.map, sb, function(x) return x end, {1})
assert(not ok and err:find("sandbox", 1, true), err)
assert(sb:map("id", {5})[1] == 5)

-- functions inside arguments travel too (the codec copies them)
local f = pool:submit(function(g, x) return g(x) end, function(y) return y * 3 end, 7)
assert(f:result() == 21)

print("map_function: ok")
