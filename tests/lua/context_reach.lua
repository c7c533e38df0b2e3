-- contexts reached from Lua inside the pool's states (interp.context, interp.self, handles and
-- their futures), pool:context{libs =}, ctx:grant and ip.channel, what a sandboxed context
-- cannot reach, and a ring: 1,000 contexts pass a token 100 times round.
local ip = require "interp_pool"

local pool <close> = ip.new{workers = 2}

-- a named service, reached by name from anonymous tasks and from other contexts
local svc <close> = pool:context{name = "svc", init = [[
  n = 0
  function inc(k) n = n + (k or 1) return n end
  function get() return n end
  function fail() error({code = 7}) end
]]}
assert(svc:name() == "svc")
assert(pool:submit(function()
  local h = interp.context("svc")
  h:post("inc", 10)
  return h:call("inc", 1):result()
end):result() == 11)
assert(pool:submit(function() return interp.self() == nil end):result())
assert(pool:submit(function()
  local ok, e = pcall(function() return interp.context("svc"):call("fail"):result() end)
  return not ok and e.code
end):result() == 7)
local h, why = pool:submit(function() return interp.context("nobody") end):result()
assert(h == nil and why:find("no context named"), why)
-- a second open context of the same name is refused
assert(not pcall(pool.context, pool, {name = "svc"}))

-- a context calls another and itself; a Lua function runs in the callee
local client <close> = pool:context{name = "client", init = [[
  function ask(k) return interp.context("svc"):call(function(x) return n + x end, k):result() end
  function me() return interp.self():name() end
]]}
assert(client:call("ask", 100):result() == 111)
assert(client:call("me"):result() == "client")

-- libs: C modules of the script, for this context only
local withlib <close> = pool:context{libs = {"iptest_mod"},
                                     init = "function sum(a, b) return iptest_mod.add(a, b) end"}
assert(withlib:call("sum", 40, 2):result() == 42)
assert(svc:call(function() return iptest_mod == nil end):result())
assert(not pcall(pool.context, pool, {libs = {"no_such_module_here"}}))
assert(not pcall(pool.context, pool, {libs = "iptest_mod"}))

-- the sandbox reaches only what was granted, by the names it was granted under
local inbox = ip.channel(4)
local secret = pool:channel("plugin_b.secret")
secret:send("b's")
local a <close> = pool:context{sandbox = true, name = "plugin_a", init = [[
  function try(names)
    local reached = {}
    for _, n in ipairs(names) do
      if interp.context(n) then reached[#reached + 1] = "ctx:" .. n end
      if pcall(interp.channel, n) then reached[#reached + 1] = "chan:" .. n end
    end
    return table.concat(reached, ",")
  end
  function use() interp.channel("inbox"):send("hi") return interp.context("s"):call("get"):result() end
]]}
local b <close> = pool:context{sandbox = true, name = "plugin_b"}
assert(a:grant("inbox", inbox) == a)
a:grant("s", svc)
local guesses = {"svc", "client", "plugin_b", "plugin_a", "plugin_b.secret", "inbox2", "s2"}
assert(a:call("try", guesses):result() == "")
assert(a:call("try", {"inbox", "s"}):result() == "chan:inbox,ctx:s")
assert(a:call("use"):result() == 11)
assert(inbox:recv(0) == "hi")
assert(secret:len() == 1)
-- shared values: only the names granted, with the rights granted
pool:share("b.private", {x = 1})
local ok_s = b:exec([[interp.shared("b_out", {x = 2})]])
assert(not pcall(ok_s.result, ok_s)) -- b was granted nothing
assert(a:grant_shared("cfg", "b.private") == a)
a:grant_shared("out", "a.out", "w")
local cfg_x, direct = a:exec("return interp.shared('cfg').x, interp.shared('b.private')"):result()
assert(cfg_x == 1 and direct == nil)
assert(a:exec("return interp.shared('out', {y = 3}).y"):result() == 3)
assert(pool:shared("a.out").y == 3)
assert(b:exec("return interp.shared('a.out') == nil and interp.shared('out') == nil"):result())
assert(not pcall(a.grant_shared, a, "x", "y", "rwx"))
assert(not pcall(a.grant_shared, a, ""))
assert(not pcall(a.grant, a, "x", 42))
assert(not pcall(a.grant, a, "", inbox))
-- direction-limited grants: b may queue on inbox, not take what others queued there
assert(b:grant("q", inbox, "send") == b)
assert(b:exec("interp.channel('q'):send('from b')"):result() == nil)
local took = b:exec("return interp.channel('q'):recv(0)")
assert(not pcall(took.result, took))
assert(inbox:recv(0) == "from b")
b:grant("r", inbox, "recv")
local sent = b:exec("interp.channel('r'):send('forged')")
assert(not pcall(sent.result, sent))
assert(not pcall(b.grant, b, "x", inbox, "steal"))

-- a task's cancel ends its wait on a context call
local blocker <close> = pool:context{name = "blocker", init = [[
  function block() interp.channel("blocked"):send(true) interp.channel("never"):recv() end
]]}
local waiting = pool:submit(function() return interp.context("blocker"):call("block"):result() end)
assert(pool:channel("blocked"):recv(60) == true)
assert(waiting:cancel())
assert(waiting:wait(60) and waiting:cancelled())
blocker:close()

-- the ring: N contexts, each posts the token to the next by name; 100 times round
local N, ROUNDS = 1000, 100
local ring = {}
for i = 1, N do
  ring[i] = pool:context{name = "r" .. i, init = string.format([[
    seen, nxt = 0, nil
    function pass(left)
      seen = seen + 1
      if left == 0 then return interp.channel("ring_done"):send(true) end
      nxt = nxt or interp.context(%q)
      nxt:post("pass", left - 1)
    end
    function get() return seen end
  ]], "r" .. (i % N + 1))}
end
local t0 = ip.now()
ring[1]:post("pass", N * ROUNDS - 1)
assert(pool:channel("ring_done"):recv(600) == true, "the token came back")
local dt = ip.now() - t0
for i = 1, N do
  assert(ring[i]:call("get"):result() == ROUNDS, "context " .. i)
  assert(ring[i]:stats().posts_failed == 0)
end
for i = 1, N do ring[i]:close() end
io.stderr:write(string.format("ring: %d hops in %.3f s (%.0f hops/s; not a benchmark)\n",
                              N * ROUNDS, dt, N * ROUNDS / dt))
print("context_reach.lua ok")
