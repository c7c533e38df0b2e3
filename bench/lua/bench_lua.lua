-- bench_lua.lua - the pool as a Lua script sees it (require "interp_pool"). Only this pool's
-- figures, all from this run: the Lua peers (Lanes, luaproc) are measured beside it, in
-- alternating rounds, by bench/peers/run.lua when they are installed.
--
--   LUA_CPATH="build/release/lua/?.so;;" lua5.4 bench/lua/bench_lua.lua [scale]
--
-- scale (default 1) multiplies every count; ctest runs it with 0.01 to check that it works.
-- Every result is checked; a wrong one stops the run with an error.
local ip = require "interp_pool"

local scale = tonumber(arg and arg[1]) or 1
local function count(n) return math.max(10, math.floor(n * scale)) end

local pool <close> = ip.new{workers = 2, prestart = true, init = [[
  function dbl(x) return x * 2 end
  -- stream n table messages into channel `name`, then a false
  function produce(name, n)
    local ch = interp.channel(name, 256)
    for i = 1, n do ch:send({i, "x", 3.5}) end
    ch:send(false)
  end
  function consume(name)
    local ch, n, sum = interp.channel(name, 256), 0, 0
    while true do
      local v = ch:recv()
      if not v then return n, sum end
      n, sum = n + 1, sum + v[1]
    end
  end
  -- answer every ping on `pings` with the same value on `pongs`, until a false
  function ponger()
    local pings, pongs = interp.channel("pings", 1), interp.channel("pongs", 1)
    while true do
      local v = pings:recv()
      pongs:send(v)
      if not v then return end
    end
  end
]]}

local function report(what, value, unit)
  print(string.format("%-42s %12.1f %s", what, value, unit))
end

-- 1. many tasks in flight: submit them all, then collect
do
  local n = count(200000)
  local fs = {}
  local t0 = ip.now()
  for i = 1, n do fs[i] = pool:submit("dbl", i) end
  for i = 1, n do assert(fs[i]:result() == 2 * i) end
  report("submit + result, many in flight", n / (ip.now() - t0) / 1e3, "k tasks/s")
end

-- 2. one task at a time: the round trip
do
  local n = count(20000)
  local t0 = ip.now()
  for i = 1, n do assert(pool:submit("dbl", i):result() == 2 * i) end
  report("submit + result, one at a time", (ip.now() - t0) / n * 1e6, "us each")
end

-- 3. map over a list
do
  local n = count(1000000)
  local items = {}
  for i = 1, n do items[i] = i end
  local t0 = ip.now()
  local out = pool:map("dbl", items)
  local dt = ip.now() - t0
  for i = 1, n, 997 do assert(out[i] == 2 * i) end
  assert(#out == n)
  report("map x*2", n / dt / 1e6, "M items/s")
end

-- 4. table messages between two workers through a channel
do
  local n = count(500000)
  local c = pool:submit("consume", "tables")
  local p = pool:submit("produce", "tables", n)
  local t0 = ip.now()
  local got, sum = c:result()
  local dt = ip.now() - t0
  p:result()
  assert(got == n and sum == n * (n + 1) // 2)
  report("table messages {i, \"x\", 3.5}, worker to worker", n / dt / 1e3, "k msgs/s")
end

-- 5. ping-pong between the script and a worker
do
  local n = count(50000)
  local pings, pongs = pool:channel("pings", 1), pool:channel("pongs", 1)
  local f = pool:submit("ponger")
  local t0 = ip.now()
  for i = 1, n do
    assert(pings:send(i))
    assert(pongs:recv() == i)
  end
  local dt = ip.now() - t0
  pings:send(false)
  assert(pongs:recv() == false)
  f:result()
  report("ping-pong, script <-> worker, round trip", dt / n * 1e6, "us")
end

print("bench_lua: ok (the Lua peers side by side: lua5.4 bench/peers/run.lua)")
