-- channels between the host script and workers
local ip = require "interp_pool"

local pool <close> = ip.new{workers = 2, init = [[
  function produce(n)
    local out = interp.channel("to_host")
    for i = 1, n do out:send({i = i, sq = i * i}) end
    return n
  end
  function echo()
    local inbox, out = interp.channel("to_worker"), interp.channel("echoed")
    while true do
      local v = inbox:recv()
      if v == "stop" then return "bye" end
      out:send(v .. "!")
    end
  end
  function drain()
    local inbox, n = interp.channel("closing"), 0
    while true do
      local v, why = inbox:recv()
      if v == nil then return n, why end
      n = n + 1
    end
  end
]]}

-- worker -> host through a small channel (the producer blocks while it is full)
local to_host = pool:channel("to_host", 4)
local f = pool:submit("produce", 200)
for i = 1, 200 do
  local v = to_host:recv(10)
  assert(v.i == i and v.sq == i * i, "in order and intact")
end
assert(f:result(10) == 200)
assert(#to_host == 0 and to_host:len() == 0)

-- host -> worker -> host
local to_worker, echoed = pool:channel("to_worker"), pool:channel("echoed")
local g = pool:submit("echo")
for i = 1, 50 do
  assert(to_worker:send("m" .. i) == true)
  assert(echoed:recv(10) == "m" .. i .. "!")
end
to_worker:send("stop")
assert(g:result(10) == "bye")

-- close: the worker drains what was sent, then sees "closed"
local closing = pool:channel("closing", 16)
for i = 1, 10 do closing:send(i) end
closing:close()
local n, why = pool:submit("drain"):result(10)
assert(n == 10 and why == "closed", tostring(n) .. " " .. tostring(why))
local ok, why2 = closing:send(1)
assert(ok == nil and why2 == "closed")

-- host-side timeouts; the same name is the same channel
local a, b = pool:channel("x"), pool:channel("x")
local v, w = a:recv(0.01)
assert(v == nil and w == "timeout")
a:send({k = "v"})
assert(b:recv(1).k == "v")

-- ip.select over host-side channel objects: the first channel with a message, fairly
local c1, c2 = pool:channel("s1"), pool:channel("s2")
c2:send("two")
local ch, val = ip.select({c1, c2}, 1)
assert(ch == c2 and val == "two")
c1:send("one")
c2:send("again")
local got = {}
for _ = 1, 2 do
  local from, v2 = ip.select({c1, c2}, 1)
  got[v2] = from
end
assert(got.one == c1 and got.again == c2)
local none, why3 = ip.select({c1, c2}, 0.01)
assert(none == nil and why3 == "timeout")

-- host values that cannot be copied are refused with a clear error
local ok3, err = pcall(a.send, a, io.stdout)
assert(not ok3 and err:find("userdata", 1, true), err)

-- bad arguments
-- the texts are the C API's own (interp_chan_check, interp_map_check_sizes)
local name_text = "pool:channel: a channel name is 1 to 256 bytes without NUL bytes"
local cap_text = "capacity must be from 1 to 1048576 (0: the default)"
local ok4, err4 = pcall(pool.channel, pool, "")
assert(not ok4 and err4:find(name_text, 1, true), err4)
ok4, err4 = pcall(pool.channel, pool, "a\0b")
assert(not ok4 and err4:find(name_text, 1, true), err4)
ok4, err4 = pcall(pool.channel, pool, ("n"):rep(257))
assert(not ok4 and err4:find(name_text, 1, true), err4)
ok4, err4 = pcall(pool.channel, pool, "y", -1)
assert(not ok4 and err4:find("pool:channel: " .. cap_text, 1, true), err4)
ok4, err4 = pcall(pool.channel, pool, "y", (1 << 20) + 1)
assert(not ok4 and err4:find("pool:channel: " .. cap_text, 1, true), err4)
ok4, err4 = pcall(ip.channel, (1 << 20) + 1)
assert(not ok4 and err4:find("ip.channel: " .. cap_text, 1, true), err4)
ok4, err4 = pcall(ip.channel, -1)
assert(not ok4 and err4:find("ip.channel: " .. cap_text, 1, true), err4)
-- a worker's interp.channel says the same
local f4 = pool:submit(function() return interp.channel("z", 1 << 21) end)
ok4, err4 = pcall(f4.result, f4)
assert(not ok4 and err4:find("interp.channel: " .. cap_text, 1, true), err4)
f4 = pool:submit(function() return interp.channel("") end)
ok4, err4 = pcall(f4.result, f4)
assert(not ok4 and err4:find("interp.channel: a channel name is 1 to 256 bytes", 1, true), err4)
-- sizes that used to wrap or ask for gigabytes
local chunk_text = "pool:map: option chunksize must be at most 1048576 (INTERP_MAP_MAX_CHUNKSIZE)"
ok4, err4 = pcall(pool.map, pool, function(x) return x end, {1, 2, 3}, {chunksize = 1 << 30})
assert(not ok4 and err4:find(chunk_text, 1, true), err4)
ok4, err4 = pcall(pool.map, pool, function(x) return x end, {1, 2, 3}, {chunksize = -1})
assert(not ok4 and err4:find(chunk_text, 1, true), err4)
local r = pool:map(function(x) return x end, {1, 2, 3}, {chunksize = 1 << 20})
assert(r[1] == 1 and r[3] == 3)
ok4, err4 = pcall(function() for _ in pool:imap(function(x) return x end, {1}, {window = 1 << 40}) do end end)
assert(not ok4 and err4:find("pool:imap: option 'window': max_in_flight must be at most 16777216 (INTERP_MAP_MAX_IN_FLIGHT)", 1, true), err4)

print("channel: ok")
