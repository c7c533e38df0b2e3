-- shutdown through <close>, shutdown(false), __gc, and the end of the script
local ip = require "interp_pool"

local function threads()
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local n = f:read("a"):match("Threads:%s*(%d+)")
  f:close()
  return tonumber(n)
end
-- A joined thread can stay in the count for a moment after pthread_join returns (the kernel
-- wakes the joiner before it has reaped the thread): wait for the count, for at most 5 s.
local function threads_settle(want)
  local deadline = ip.now() + 5
  local n = threads()
  while n ~= want and ip.now() < deadline do
    local t = ip.now() + 0.001 while ip.now() < t do end
    n = threads()
  end
  return n
end
-- the baseline after one pool has come and gone (a sanitizer runtime starts a thread of its
-- own with the first thread)
ip.new{workers = 1}:shutdown()
local before = threads()
if before then -- the lowest count over 50 ms: the first pool's worker may still be counted
  local t = ip.now() + 0.05
  while ip.now() < t do before = math.min(before, threads()) end
end

-- leaving the block waits for every task
local futs = {}
do
  local pool <close> = ip.new{workers = 2, init = [[
    function slow(x) local s = 0 for i = 1, 200000 do s = s + i end return x end
  ]]}
  for i = 1, 20 do futs[i] = pool:submit("slow", i) end
end
for i = 1, 20 do
  assert(futs[i]:done(), "done when the block is left")
  assert(futs[i]:result() == i)
end
if before then assert(threads_settle(before) == before, "workers joined") end

-- leaving by an error cancels what is still queued (the running task ends by itself)
local queued
local ok, err = pcall(function()
  local pool <close> = ip.new{workers = 1}
  local started = pool:channel("started")
  pool:submit(function()
    interp.channel("started"):send(true)
    return interp.channel("never"):recv(2) -- ends on its own after 2 s
  end)
  assert(started:recv(10))
  queued = pool:submit(function() return "ran" end)
  error("leaving")
end)
assert(not ok and err:find("leaving", 1, true))
assert(queued:done() and queued:cancelled(), queued:status())

-- shutdown(false): no new tasks, those submitted still end
local p = ip.new{workers = 1}
local last = p:submit(function() return "last" end)
p:shutdown(false)
local ok2, err2 = pcall(p.submit, p, function() end)
assert(not ok2 and err2:find("shut down", 1, true), err2)
assert(last:result(10) == "last")
p:shutdown() -- now waits and frees
p = nil

-- pools dropped without a shutdown are collected, their threads joined
for _ = 1, 5 do ip.new{workers = 2} end
collectgarbage()
collectgarbage()
if before then assert(threads_settle(before) == before, "collected pools joined their workers") end

-- a pool left running an endless task when the script ends: lua_close interrupts it
leaked = ip.new{workers = 1}
stuck = leaked:submit(function() while true do end end)

print("close: ok")
