-- Misuse: every function and method of the module called with every kind of wrong value
-- raises a Lua error (or returns normally); none crashes the interpreter.
local ip = require "interp_pool"

local pool = ip.new{workers = 1, init = "function id(...) return ... end"}
local fut = pool:submit("id", 1)
assert(fut:result() == 1) -- ended: the cancel calls below cannot change it
local chan = pool:channel("misuse")
local co = coroutine.create(function() end)
local bad = {nil, true, false, 0, -1, 1.5, 0 / 0, math.huge, -math.huge, math.mininteger,
             math.maxinteger, "", "x", "\0", {}, {1, 2}, {chunksize = -1}, print, function() end,
             co, io.stdout, pool, fut, chan}
local nbad = 24

-- a timeout argument: wrong types stay wrong, but "forever" (nil, huge, negative for the
-- channels) becomes 0 so that no call waits on the real pool
local function t(v)
  if v == nil or (type(v) == "number" and (v ~= v or v < 0 or v > 1)) then return 0 end
  return v
end

local calls = {
  function(a, b) return ip.new(a) end,
  function(a, b) return ip.wait(a, b, 0) end,
  function(a, b) return ip.wait({fut}, a, t(b)) end,
  function(a, b) return ip.as_completed(a, t(b)) end,
  function(a, b) local it = ip.as_completed({fut}, t(a)) return it() end,
  function(a, b) return ip.select(a, t(b)) end,
  function(a, b) return ip.strerror(a) end,
  function(a, b) return pool.submit(a, b) end,
  function(a, b) return pool:submit(a, b) end,
  function(a, b) return pool:submit("id", a, b) end,
  function(a, b) return pool.map(a, b) end,
  function(a, b) return pool:map(a, b) end,
  function(a, b) return pool:map("id", a, b) end,
  function(a, b) return pool:map("id", {1}, a) end,
  function(a, b) return pool.channel(a, b) end,
  function(a, b) return pool:channel(a, b) end,
  function(a, b) return pool.stats(a) end,
  function(a, b) return fut.result(a, t(b)) end,
  function(a, b) return fut:result(t(a)) end,
  function(a, b) return fut.error(a, t(b)) end,
  function(a, b) return fut:wait(t(a)) end,
  function(a, b) return fut.done(a) end,
  function(a, b) return fut.cancel(a) end,
  function(a, b) return fut.status(a) end,
  function(a, b) return chan.send(a, b, 0) end,
  function(a, b) return chan:send(a, t(b)) end,
  function(a, b) return chan:recv(t(a)) end,
  function(a, b) return chan.len(a) end,
  function(a, b) return tostring(a) end,
}

local errors, returns = 0, 0
for _, call in ipairs(calls) do
  for i = 1, nbad do
    for j = 1, nbad, 5 do
      local ok = pcall(call, bad[i], bad[j])
      if ok then returns = returns + 1 else errors = errors + 1 end
      while chan:len() > 0 do chan:recv(0) end
    end
  end
end
assert(errors > 0 and returns > 0)

-- methods of the wrong object
for _, m in ipairs{"submit", "map", "channel", "stats", "shutdown"} do
  assert(not pcall(pool[m], fut))
end
for _, m in ipairs{"result", "error", "wait", "done", "running", "cancelled", "cancel", "status"} do
  assert(not pcall(fut[m], pool))
end
-- the metatables are locked: no finalizer can be called by hand
assert(getmetatable(pool) == "interp_pool.pool" and getmetatable(fut) == "interp_pool.future")
assert(not pcall(setmetatable, pool, {}))
-- the pool shut down, then used again
pool:shutdown()
pool:shutdown()
assert(not pcall(pool.submit, pool, "id"))
assert(fut:result() == 1, "futures outlive their pool")
collectgarbage()
print("misuse: ok (" .. errors .. " errors, " .. returns .. " returns)")
