-- pi.lua - a Monte Carlo estimate of pi, in parallel, written only in Lua.
--
--   LUA_CPATH="build/rel/lua/?.so" lua5.4 examples/lua/pi.lua [SAMPLES_PER_TASK [TASKS]]
--   build/rel/cli/interp-pool run examples/lua/pi.lua [SAMPLES_PER_TASK [TASKS]]
--
-- Each task throws SAMPLES_PER_TASK random points at the unit square with its own random
-- seed and counts those inside the quarter circle. The same tasks run on a pool of 1 worker
-- and of 2 workers; the script prints both times and the speedup. Each worker is a separate
-- Lua state on its own thread, so the tasks really run at the same time.
local ip = require "interp_pool"

local samples = math.tointeger(tonumber(arg and arg[1]) or 4e6)
local tasks = math.tointeger(tonumber(arg and arg[2]) or 8)
assert(samples and samples > 0 and tasks and tasks > 0,
       "usage: pi.lua [SAMPLES_PER_TASK [TASKS]] (positive integers)")

-- The task. It travels to the workers as bytecode, so it may use only its arguments and the
-- worker's globals (math here), not local variables of this script.
local function count_inside(n, seed)
  math.randomseed(seed)
  local random, inside = math.random, 0
  for _ = 1, n do
    local x, y = random(), random()
    if x * x + y * y <= 1.0 then inside = inside + 1 end
  end
  return inside
end

local function estimate(workers)
  local pool <close> = ip.new{workers = workers}
  local t0 = ip.now()
  local futures = {}
  for i = 1, tasks do futures[i] = pool:submit(count_inside, samples, i) end
  local inside = 0
  for f in ip.as_completed(futures) do inside = inside + f:result() end
  return 4 * inside / (samples * tasks), ip.now() - t0
end

-- For scale: the same work in this script's own state, without a pool.
local t0 = ip.now()
local inside = 0
for i = 1, tasks do inside = inside + count_inside(samples, i) end
local plain = ip.now() - t0
local pi_plain = 4 * inside / (samples * tasks)

local pi1, t1 = estimate(1)
local pi2, t2 = estimate(2)
-- Same seeds, same points: every run must count the same.
assert(pi1 == pi_plain and pi2 == pi_plain, "the runs disagree")
assert(math.abs(pi2 - math.pi) < 10 / math.sqrt(samples * tasks), "estimate too far from pi")

print(string.format("pi ~= %.6f from %d points (%d tasks of %d)", pi2, samples * tasks, tasks,
                    samples))
print(string.format("plain Lua, no pool: %8.3f s", plain))
print(string.format("pool of 1 worker:   %8.3f s", t1))
print(string.format("pool of 2 workers:  %8.3f s   speedup %.2fx over 1 worker", t2, t1 / t2))
