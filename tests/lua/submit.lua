-- pool:submit, futures, ip.wait (all, first, first_failure), ip.as_completed
local ip = require "interp_pool"

local pool <close> = ip.new{workers = 2, init = [[
  function add(a, b) return a + b end
  function square(x) return x * x end
  function nothing() end
  function many() return 1, nil, "three" end
  function wait_gate()
    return interp.channel("gate"):recv()
  end
]]}

local f = pool:submit("add", 2, 3)
assert(f:result() == 5)
assert(f:done() and not f:running() and not f:cancelled())
assert(f:status() == "done")
assert(f:error() == nil)
assert(f:result(0) == 5, "result of an ended future with timeout 0")
assert(tostring(f):find("interp_pool.future (done)", 1, true))

-- several results, nils included; none at all
local a, b, c = pool:submit("many"):result()
assert(a == 1 and b == nil and c == "three")
assert(select("#", pool:submit("nothing"):result()) == 0)

-- values round-trip: nested tables, shared subtables, cycles
local t = {x = {1, 2, {y = "z"}}}
t.self = t
local back = pool:submit(function(v) return v end, t):result()
assert(back.x[3].y == "z" and back.self == back)

-- ip.wait "all"
local futs = {}
for i = 1, 40 do futs[i] = pool:submit("square", i) end
local done, not_done = ip.wait(futs)
assert(#done == 40 and #not_done == 0)
for i = 1, 40 do assert(done[i] == futs[i] and futs[i]:result() == i * i) end

-- ip.as_completed yields every future once
local seen, n = {}, 0
for fut in ip.as_completed(futs) do
  local v = fut:result()
  assert(not seen[v], "yielded twice")
  seen[v] = true
  n = n + 1
end
assert(n == 40)
-- a future listed twice is yielded once; breaking out early is fine
n = 0
for _ in ip.as_completed({futs[1], futs[1], futs[2]}) do n = n + 1 end
assert(n == 2)
for _ in ip.as_completed(futs) do break end
n = 0
for _ in ip.as_completed({}) do n = n + 1 end
assert(n == 0)

-- "first" and timeouts with a task that cannot end until the host opens the gate
local gate = pool:channel("gate")
local blocked = pool:submit("wait_gate")
local quick = pool:submit("square", 9)
done, not_done = ip.wait({blocked, quick}, "first")
assert(#done == 1 and done[1] == quick and #not_done == 1 and not_done[1] == blocked)
done, not_done = ip.wait({blocked}, "all", 0.05)
assert(#done == 0 and #not_done == 1)
-- "first_failure": a success does not end the wait, a failure does
done, not_done = ip.wait({blocked, quick}, "first_failure", 0.05)
assert(#done == 1 and done[1] == quick and #not_done == 1, "no failure yet: timed out")
local failing = pool:submit("add", 1, nil)
done, not_done = ip.wait({blocked, quick, failing}, "first_failure")
assert(#done == 2 and done[2] == failing and not_done[1] == blocked)
local ok, err = pcall(blocked.result, blocked, 0.05)
assert(not ok and err:find("timed out", 1, true), err)
assert(not blocked:done() and blocked:wait(0.01) == false)
ok, err = pcall(function() for _ in ip.as_completed({blocked}, 0.05) do end end)
assert(not ok and err:find("timed out", 1, true), err)
assert(gate:send("open"))
assert(blocked:result(10) == "open")
assert(blocked:wait(0) == true)

-- bad arguments
ok, err = pcall(ip.wait, {f, 42})
assert(not ok and err:find("futs[2] is not a future", 1, true), err)
ok, err = pcall(ip.wait, {f}, "some")
assert(not ok and err:find("invalid option 'some'", 1, true), err)
ok, err = pcall(f.result, f, "soon")
assert(not ok and err:find("timeout", 1, true), err)
ok, err = pcall(pool.submit, pool, "add", 1, coroutine.create(print))
assert(not ok and err:find("cannot copy", 1, true), err)

print("submit: ok")
