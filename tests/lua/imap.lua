-- pool:imap: a lazy map over a list or an iterator, results in input order, at most `window`
-- calls in flight, failures raised at their turn, early exit cancels what is pending
local ip = require "interp_pool"

local pool <close> = ip.new{workers = 2, init = [[
  function sq(x) return x * x end
  function boom(x) if x == 5 then error("five") end return x end
  function slow(x) interp.sleep(0.005) return x end
  function first_last(x) if x == 1 then interp.sleep(0.02) end return x end
  function none() end
  function gated(x) if x > 2 then interp.channel("imap_gate"):recv() end return x end
]]}

-- a list, by name; input order whatever the finishing order
local got = {}
for i, r in pool:imap("sq", {1, 2, 3, 4, 5}) do got[i] = r end
assert(table.concat(got, ",") == "1,4,9,16,25", table.concat(got, ","))

-- an iterator function (io.lines-like), a function of the script, a window of 3: never more
-- than 3 items taken ahead of the one the loop is at
local k = 0
local function next_line()
  k = k + 1
  if k <= 1000 then return tostring(k) end
end
local sum, ahead = 0, 0
for i, r in pool:imap(function(s) return #s end, next_line, {window = 3}) do
  sum = sum + r
  ahead = math.max(ahead, math.min(k, 1001) - i)
end
assert(sum == 9 * 1 + 90 * 2 + 900 * 3 + 4, sum)
assert(ahead <= 3, "more than the window taken ahead: " .. ahead)

-- a call that returns nothing yields nil, and the loop goes on
local n = 0
for i, r in pool:imap("none", {1, 2, 3}) do
  assert(r == nil)
  n = i
end
assert(n == 3)

-- an item that fails raises at its turn, with its number
local ok, err = pcall(function() for _ in pool:imap("boom", {1, 2, 3, 4, 5, 6}) do end end)
assert(not ok and err:find("pool:imap: item 5 failed: init:", 1, true) and err:find("five"), err)

-- results come in input order: item 1 ends last, the loop still gets it first
local order = {}
for _, r in pool:imap("first_last", {1, 2, 3}, {window = 3}) do order[#order + 1] = r end
assert(table.concat(order, ",") == "1,2,3", table.concat(order, ","))

-- leaving the loop early cancels what is still queued or running: items past 2 wait on a
-- channel nobody sends to, so they cannot have ended by themselves however late the loop runs
local gate = pool:channel("imap_gate")
local before = pool:stats()
for i in pool:imap("gated", {1, 2, 3, 4, 5, 6, 7, 8}, {window = 4}) do
  if i == 2 then break end
end
local after = pool:stats()
assert(after.submitted - before.submitted == 5, "window 4: items 1..5 were submitted")
local deadline = ip.now() + 10
while pool:stats().done + pool:stats().cancelled + pool:stats().failed < after.submitted do
  assert(ip.now() < deadline, "the cancelled items never ended")
end
assert(pool:stats().cancelled - before.cancelled >= 1, "something was cancelled")

-- an overall timeout
ok, err = pcall(function()
  for _ in pool:imap("slow", {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {window = 2, timeout = 0.012}) do end
end)
assert(not ok and err:find("pool:imap: timed out after 0.012 s", 1, true), err)

-- an item that cannot be copied: submit's own error, and the loop's pending calls are cancelled
ok, err = pcall(function() for _ in pool:imap("sq", {1, 2, io.stdout, 4}) do end end)
assert(not ok and err:find("cannot copy", 1, true) and not err:find("attempt to", 1, true), err)

-- the pool shut down under the loop (queued calls cancelled): said as such
do
  local p2 <close> = ip.new{workers = 1, init = "function slow(x) interp.sleep(0.005) return x end"}
  ok, err = pcall(function()
    for i in p2:imap("slow", {1, 2, 3, 4, 5, 6}, {window = 4}) do
      if i == 1 then p2:shutdown(false, true) end
    end
  end)
  assert(not ok and (err:find("was cancelled", 1, true) or err:find("shut down", 1, true))
         and not err:find("bad argument", 1, true), err)
end

-- bad arguments
ok, err = pcall(pool.imap, pool, "sq", 5)
assert(not ok and err:find("a list or an iterator function", 1, true), err)
ok, err = pcall(pool.imap, pool, "sq", {}, {bogus = 1})
assert(not ok and err:find("unknown option 'bogus'", 1, true), err)
ok, err = pcall(pool.imap, pool, "sq", {}, {window = 0})
assert(not ok and err:find("option 'window'", 1, true), err)
ok, err = pcall(pool.imap, pool, "sq", {}, {timeout = -1})
assert(not ok and err:find("option 'timeout'", 1, true), err)

print("imap: ok")
