-- ip.new options: init_file, sandbox, max_tasks_per_worker, max_queued, workers, prestart,
-- thread_name, max_msg_size, max_depth, the graces; pool:stats
local ip = require "interp_pool"

-- init_file, and the default worker count
local path = os.tmpname()
local fh = assert(io.open(path, "w"))
fh:write("function from_file(x) return 'file:' .. x end\n")
fh:close()
do
  local pool <close> = ip.new{init_file = path}
  -- before any task: once tasks come, more may start (a task that finds the first worker not
  -- yet idle starts another, as happens on a loaded machine)
  assert(pool:stats().workers == 1, "one worker starts in new, the others on demand")
  assert(pool:submit("from_file", 1):result() == "file:1")
  assert(pool:stats().max_workers >= 1)
  assert(tostring(pool):find("interp_pool.pool (", 1, true))
end
os.remove(path)

-- prestart: every worker starts in new; thread_name names their threads
do
  local pool <close> = ip.new{workers = 3, prestart = true, thread_name = "luapool"}
  local st = pool:stats()
  assert(st.workers == 3 and st.max_workers == 3, "prestart starts them all")
end

-- without the sandbox, globals persist from task to task on a worker
do
  local pool <close> = ip.new{workers = 1, init = "n = 0 function bump() n = n + 1 return n end"}
  assert(pool:submit("bump"):result() == 1)
  assert(pool:submit("bump"):result() == 2)
end

-- max_msg_size and max_depth bound every result
do
  local pool <close> = ip.new{workers = 1, max_msg_size = 100, max_depth = 3,
                              cancel_grace = 0.005, stuck_grace = 0.5, init = [[
    function big(n) return string.rep("x", n) end
    function deep() return {{{{1}}}} end
  ]]}
  assert(#pool:submit("big", 50):result() == 50)
  local f = pool:submit("big", 1000)
  local ok, err = pcall(f.result, f)
  assert(not ok and err:find("larger than 100 bytes", 1, true), err)
  f = pool:submit("deep")
  ok, err = pcall(f.result, f)
  assert(not ok and err:find("nesting deeper than 3", 1, true), err)
end

-- in the sandbox, a task's global writes die with the task; tables of init are shared
do
  local pool <close> = ip.new{workers = 1, sandbox = true,
                              init = "n = 0 seen = {} function bump() n = n + 1 seen[#seen + 1] = n return n, #seen end"}
  local a, la = pool:submit("bump"):result()
  local b, lb = pool:submit("bump"):result()
  assert(a == 1 and b == 1, "each task starts from init's n")
  assert(la == 1 and lb == 2, "init's table is shared")
end

-- the sandbox: no io, no os.execute, no bytecode; the library tables are read-only
do
  local pool <close> = ip.new{workers = 1, sandbox = "safe", init = [[
    function has(name) return _ENV[name] ~= nil end
    function can_execute() return os.execute ~= nil end
    function patch_string() string.upper = nil end
    function give_function() return function() end end
  ]]}
  local g = pool:submit("give_function")
  assert(not pcall(g.result, g), "no function leaves a sandbox")
  assert(pool:submit("has", "io"):result() == false)
  assert(pool:submit("has", "debug"):result() == false)
  assert(pool:submit("has", "string"):result() == true)
  assert(pool:submit("can_execute"):result() == false)
  local f = pool:submit("patch_string")
  local ok, err = pcall(f.result, f)
  assert(not ok and type(err) == "string", "library tables are read-only")
end

-- max_tasks_per_worker: the state is replaced (initializer run again) after N tasks
do
  local pool <close> = ip.new{workers = 1, max_tasks_per_worker = 2,
                              init = "n = 0 function bump() n = n + 1 return n end"}
  local seen = {}
  for i = 1, 6 do seen[i] = pool:submit("bump"):result() end
  assert(table.concat(seen, ",") == "1,2,1,2,1,2", table.concat(seen, ","))
  local st = pool:stats()
  assert(st.states_replaced >= 2 and st.submitted == 6 and st.done == 6, "stats")
  for _, k in ipairs{"failed", "cancelled", "timed_out", "workers_abandoned", "queued",
                     "memory_in_use", "memory_peak"} do
    assert(math.type(st[k]) == "integer", k)
  end
end

-- max_queued: submit waits for room rather than failing
do
  local pool <close> = ip.new{workers = 1, max_queued = 2}
  local futs = {}
  for i = 1, 20 do futs[i] = pool:submit(function(x) return x end, i) end
  for i = 1, 20 do assert(futs[i]:result() == i) end
end

print("options: ok")
