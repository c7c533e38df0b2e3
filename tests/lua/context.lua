-- pool:context: persistent states on the pool's threads (call, exec, post, stats, close)
local ip = require "interp_pool"

local pool <close> = ip.new{workers = 2, init = "function whoami() return 'pool' end"}

local c = pool:context{name = "plugin", init = [[
  n = 0
  function inc(k) n = n + (k or 1) return n end
  function get() return n end
  function hog() local t = {} for i = 1, 1e6 do t[i] = string.rep('x', 64) .. i end end
  function spin() while true do end end
  function boom() error('boom') end
]], memory_limit = 4 << 20}
assert(tostring(c):find("plugin", 1, true))

-- globals persist from call to call, and exec adds to them
assert(c:call("inc"):result() == 1)
assert(c:call("inc", 5):result() == 6)
c:exec("n = 100 function twice(x) return 2 * x end"):result()
assert(c:call("inc"):result() == 101)
assert(c:call("twice", 21):result() == 42)
-- a Lua function runs in the context too, and sees its globals
assert(c:call(function(k) return n + k end, 1):result() == 102)
-- the pool's initializer is not the context's
assert(not pcall(function() return c:call("whoami"):result() end))
assert(pool:submit("whoami"):result() == "pool")

-- calls run in order: many queued calls see consecutive values
local futs = {}
for i = 1, 50 do futs[i] = c:call("inc") end
for i = 1, 50 do assert(futs[i]:result() == 101 + i) end

-- the memory limit fails that call; the context goes on
local hf = c:call("hog")
local ok, err = pcall(hf.result, hf)
assert(not ok and tostring(err):find("memory"), tostring(err))
assert(c:call("get"):result() == 151)

-- posts: fire and forget, failures counted; a later call runs after them
for _ = 1, 5 do assert(c:post("inc") == true) end
c:post("boom")
assert(c:call("get"):result() == 156)
local st = c:stats()
assert(st.failed == 3 and st.posts_failed == 1, st.failed)  -- whoami, hog, boom
assert(st.calls == st.done + st.failed and st.queued == 0)
assert(st.memory > 0 and st.memory_peak >= st.memory and st.memory_peak <= 4 << 20)
assert(st.broken == false)

-- a deadline per context; cancel of a running call; the context goes on
local d = pool:context{init = "function spin() while true do end end function one() return 1 end",
                       timeout = 0.2}
local sf = d:call("spin")
ok, err = pcall(sf.result, sf)
assert(not ok and sf:status() == "failed", tostring(err))
assert(d:call("one"):result() == 1)

-- close: pending calls end cancelled, the running one is interrupted
local e = pool:context{init = "function spin() while true do end end"}
local running = e:call("spin")
local pending = {}
for i = 1, 3 do pending[i] = e:call("spin") end
while not running:running() do end
e:close()
assert(running:wait(30) and running:cancelled())
for i = 1, 3 do assert(pending[i]:wait(30) and pending[i]:cancelled()) end
assert(not pcall(e.call, e, "spin"))
e:close() -- idempotent

-- <close> closes at the end of the scope
do
  local s <close> = pool:context{sandbox = true, init = "count = 0"}
  s:exec("count = count + 1"):result()
  assert(s:exec("count = count + 1 return count"):result() == 2)
  assert(s:exec("return io == nil"):result() == true)
end

-- bad options
assert(not pcall(pool.context, pool, {bogus = 1}))
assert(not pcall(pool.context, pool, {init = "this is not lua"}))
assert(not pcall(pool.context, pool, {timeout = -1}))
assert(not pcall(pool.context, pool, {time_slice = "x"}))

-- a call that waits parks (its coroutine yields): the other context's calls go on; a
-- looping call without deadline is preempted by its time slice
do
  local w <close> = pool:context{init = "function take() return interp.channel('lq'):recv() end"}
  local spin <close> = pool:context{time_slice = 0.002, init = [[
    function spin() interp.channel('ls'):send(1) while true do end end]]}
  local fixed <close> = pool:context{time_slice = false, init = "function one() return 1 end"}
  local fw = w:call("take")
  local fs = spin:call("spin")
  assert(fixed:call("one"):result() == 1)
  pool:submit(function() return interp.channel('lq'):send('v') end):result()
  assert(fw:result() == "v")
  fs:cancel()
  assert(not pcall(fs.result, fs))
end

c:close()
d:close()
print("context.lua ok")
