-- The module loaded by a task inside a worker (a pool of its own): the worker's context is
-- kept (its channel waits still wake when the task is cancelled), nothing crashes.
local ip = require "interp_pool"

local pool <close> = ip.new{workers = 2}
local f = pool:submit(function()
  local inner_ip = require "interp_pool"
  local inner <close> = inner_ip.new{workers = 2}
  local ch = inner:channel("c")
  local g = inner:submit(function() interp.channel("c"):send("from inner") return 42 end)
  return g:result(10), ch:recv(10), interp.worker_id
end)
local answer, message, wid = f:result(30)
assert(answer == 42 and message == "from inner" and math.type(wid) == "integer")

local started = pool:channel("started")
local stuck = pool:submit(function()
  local inner <close> = require("interp_pool").new{workers = 1}
  local never = inner:channel("never")
  interp.channel("started"):send(true)
  return never:recv() -- only the cancellation of this task can end it
end)
assert(started:recv(30))
assert(stuck:cancel())
local ok, err = pcall(stuck.result, stuck, 30)
assert(not ok and err:find("cancel", 1, true), err)

print("nested: ok")
