-- errors: a task's error with its traceback, error objects, host-side misuse
local ip = require "interp_pool"

local pool <close> = ip.new{workers = 2, init = [[
  local function inner(x) error("inner failed on " .. tostring(x)) end
  function outer(x) inner(x) end
  function id(...) return ... end
]]}

-- a script error comes back as the task raised it, with the worker's traceback
local f = pool:submit("outer", 42)
local ok, err = pcall(f.result, f)
assert(not ok, "result of a failed task must raise")
assert(err:find("inner failed on 42", 1, true), err)
assert(err:find("stack traceback", 1, true), err)
assert(err:find("inner", 1, true) and err:find("outer", 1, true), err)
assert(f:done() and f:status() == "failed" and not f:cancelled())
assert(f:error() == err, "f:error() returns what result raises")

-- a table as the error object arrives as a table
local g = pool:submit(function() error({code = 42, why = "structured"}) end)
ok, err = pcall(g.result, g)
assert(not ok and type(err) == "table" and err.code == 42 and err.why == "structured")

-- a worker keeps working after errors
assert(pool:submit("id", "still here"):result() == "still here")

-- options are checked
local function fails(opts, text)
  local ok2, e = pcall(ip.new, opts)
  assert(not ok2, "ip.new must refuse " .. text)
  assert(e:find(text, 1, true), e)
end
local workers_text = "cannot create the pool: workers must be from 0 (the online CPUs) to 4096"
fails({workers = -1}, workers_text)
fails({workers = 4097}, workers_text)
fails({workers = math.mininteger}, workers_text)
fails({workers = 1 << 40}, workers_text)
fails({workers = 1.5}, "option 'workers' must be an integer")
fails({bogus = 1}, "unknown option 'bogus'")
fails({sandbox = "maybe"}, "option 'sandbox'")
fails({prestart = 1}, "option 'prestart' must be a boolean")
fails({max_depth = -1}, "cannot create the pool: max_depth: negative")
fails({cancel_grace = -1}, "option 'cancel_grace'")
fails({timeout = -1}, "option 'timeout'")
fails({memory_limit = "lots"}, "option 'memory_limit'")
fails({init = "x = = 1"}, "cannot create the pool")
fails({init = "error('init says no')"}, "init says no")
fails({init_file = "/nonexistent/init.lua"}, "cannot create the pool")
fails({init = "x = 1", init_file = "y.lua"}, "not both")
local ok3, e3 = pcall(ip.new, 5)
assert(not ok3 and e3:find("table expected", 1, true), e3)

-- initializer arguments
local p2 <close> = ip.new{workers = 1, init = "base = ...", init_args = {1000}}
assert(p2:submit(function(x) return base + x end, 1):result() == 1001)

-- values that cannot be copied name their path
ok, err = pcall(pool.submit, pool, "id", 1, {handlers = {io.stdout}})
assert(not ok and err:find("cannot copy the arguments", 1, true) and err:find("userdata", 1, true),
       err)

-- memory limit: the task fails, the pool goes on
local mp <close> = ip.new{workers = 1, memory_limit = 16 * 1024 * 1024}
local big = mp:submit(function() local t = {} for i = 1, 1e8 do t[i] = i end return #t end)
ok, err = pcall(big.result, big)
assert(not ok and err:lower():find("memory", 1, true), err)
assert(mp:submit(function() return "alive" end):result() == "alive")

-- task timeout
local tp <close> = ip.new{workers = 1, timeout = 0.1}
local spin = tp:submit(function() while true do end end)
ok, err = pcall(spin.result, spin)
assert(not ok and err:lower():find("time", 1, true), err)
assert(tp:submit(function() return 7 end):result() == 7)

-- the pool after shutdown
pool:shutdown()
ok, err = pcall(pool.submit, pool, "id", 1)
assert(not ok and err:find("shut down", 1, true), err)
ok, err = pcall(pool.map, pool, "id", {1})
assert(not ok and err:find("shut down", 1, true), err)
pool:shutdown() -- idempotent
assert(tostring(pool):find("shut down", 1, true))
-- futures outlive their pool
assert(f:done() and f:error():find("inner failed", 1, true))

print("errors: ok")
