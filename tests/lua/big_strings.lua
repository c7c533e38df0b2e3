-- Large strings from a worker cross with one copy (docs/DESIGN.md, Messages): the script gets
-- the same bytes on a channel, as a result, inside tables, after the pool is closed, and from
-- a worker's string that Lua has already collected.
local ip = require "interp_pool"

local N = 1 << 20
local function pattern_ok(s, n)
  if #s ~= n then return false end
  for i = 1, n, 4099 do
    if s:byte(i) ~= 97 + (i - 1) % 23 then return false end
  end
  return s:byte(n) == 97 + (n - 1) % 23
end

local pool = ip.new{workers = 2, init = [[
  function make(n)
    local t = {}
    for i = 1, n do t[i] = string.char(97 + (i - 1) % 23) end
    return table.concat(t)
  end
  function send_big(n, k)
    local ch = interp.channel("big", 8)
    for _ = 1, k do ch:send(make(n)) end
    collectgarbage() -- the worker's strings are gone; the messages still hold their bytes
    return true
  end
  function nested(n)
    local s = make(n)
    return {s, s, key = s, [s] = 1}, s
  end
]]}

local ch = pool:channel("big", 8)
assert(pool:submit("send_big", N, 3):result() == true)
for _ = 1, 3 do assert(pattern_ok(ch:recv(), N), "channel value") end

local t, s = pool:submit("nested", N):result()
assert(pattern_ok(s, N) and pattern_ok(t[1], N) and t[1] == t[2] and t.key == s)
assert(t[s] == 1, "a shared string as a key")

-- results read after the pool is closed, and strings just under the sharing threshold
local f = pool:submit("nested", N)
local g = pool:submit("make", (64 << 10) - 1)
local h = pool:submit("send_big", N, 2)
assert(h:result() == true)
pool:shutdown()
assert(pattern_ok(select(2, f:result()), N))
assert(pattern_ok(g:result(), (64 << 10) - 1))
for _ = 1, 2 do assert(pattern_ok(ch:recv(), N), "queued before the close") end

-- a map's results: the first value of each
local p2 <close> = ip.new{workers = 2, init = "function rep(n) return string.rep('ab', n) end"}
local out = p2:map("rep", {N // 2, 10, N})
assert(#out[1] == N and #out[2] == 20 and #out[3] == 2 * N)
print("big_strings ok")
