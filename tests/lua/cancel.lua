-- cancel: a queued task never runs; a running task is interrupted (a loop or a blocked recv)
local ip = require "interp_pool"

local pool <close> = ip.new{workers = 1, init = [[
  function block()
    interp.channel("started"):send("block")
    return interp.channel("gate"):recv()
  end
  function spin()
    interp.channel("started"):send("spin")
    while true do end
  end
  function square(x) return x * x end
]]}
local started = pool:channel("started")

local running = pool:submit("block")
assert(started:recv(10) == "block")
assert(running:running() and running:status() == "running")

-- queued behind it (one worker): cancelled at once, never runs
local queued = pool:submit("square", 3)
assert(queued:status() == "pending")
assert(queued:cancel() == true)
assert(queued:cancelled() and queued:done() and queued:status() == "cancelled")
local ok, err = pcall(queued.result, queued)
assert(not ok and err:find("cancelled", 1, true), err)

-- the running task, blocked in a channel recv, is woken and ends cancelled
assert(running:cancel() == true)
ok, err = pcall(running.result, running, 10)
assert(not ok and err:find("cancel", 1, true), err)
assert(running:cancelled())

-- an endless loop is interrupted through the hook
local loop = pool:submit("spin")
assert(started:recv(10) == "spin")
assert(loop:cancel() == true)
ok, err = pcall(loop.result, loop, 10)
assert(not ok and err:find("cancel", 1, true), err)

-- the worker is fine afterwards; cancelling an ended task changes nothing
local f = pool:submit("square", 4)
assert(f:result(10) == 16)
assert(f:cancel() == false and not f:cancelled() and f:result() == 16)

local st = pool:stats()
assert(st.cancelled >= 3 and st.workers == 1, "stats count the cancelled tasks")

print("cancel: ok")
