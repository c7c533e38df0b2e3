-- shapes.lua - one measurement of one shape on one implementation, in a fresh process:
--
--   lua5.4 bench/peers/shapes.lua IMPL SHAPE [scale]
--
-- IMPL: interp (this pool), luaproc, lanes, or seq (one plain state: the baseline of `cpu`).
-- Prints one line "RESULT <seconds or KiB> <units of work> [<CPU seconds>]" (run.lua reads it):
-- the CPU seconds (os.clock: every thread of the process) over the timed part, for the shapes
-- whose wall time a loaded machine's scheduling decides (strings, map). Every result is
-- checked; a wrong one raises. The clock is interp_pool's ip.now (a monotonic clock) for
-- every implementation: loading the module starts no thread.
local impl, shape = arg[1], arg[2]
local scale = tonumber(arg[3]) or 1
local ip = require "interp_pool"
local now = ip.now

local STR_N, STR_LEN = math.max(10, math.floor(1000 * scale)), 1 << 20
local MAP_N = math.max(1000, math.floor(1000000 * scale))
local CPU_TASKS, CPU_N = 8, math.max(10000, math.floor(20000000 * scale))
local IDLE_W = 100

-- wait without spinning (the host module has no sleep; a child process adds nothing here)
local function pause(s) os.execute("sleep " .. s) end

local function result(v, units, cpu)
  print(string.format("RESULT %.9g %d%s", v, units, cpu and string.format(" %.9g", cpu) or ""))
end

local function statm_kib()
  local f = assert(io.open("/proc/self/statm"))
  local _, res = f:read("n", "n")
  f:close()
  return res * 4
end

local LOOP = "local s = 0 for i = 1, n do s = s + i end return s"
local function loop(n) local s = 0 for i = 1, n do s = s + i end return s end
local CPU_WANT = CPU_N * (CPU_N + 1) // 2

-- ---- this pool -----------------------------------------------------------------------------
local I = {}

function I.strings()
  local pool <close> = ip.new{workers = 1, prestart = true, init = [[
    function produce(n, len)
      local s, ch = string.rep("x", len), interp.channel("big", 4)
      for i = 1, n do ch:send(s) end
    end]]}
  local ch = pool:channel("big", 4)
  local t0, c0 = now(), os.clock()
  local f = pool:submit("produce", STR_N, STR_LEN)
  for i = 1, STR_N do assert(#ch:recv() == STR_LEN) end
  local dt, cpu = now() - t0, os.clock() - c0
  f:result()
  result(dt, STR_N, cpu)
end

function I.map()
  local pool <close> = ip.new{workers = 2, prestart = true, init = "function dbl(x) return x * 2 end"}
  local items = {}
  for i = 1, MAP_N do items[i] = i end
  local t0, c0 = now(), os.clock()
  local out = pool:map("dbl", items)
  local dt, cpu = now() - t0, os.clock() - c0
  assert(#out == MAP_N)
  for i = 1, MAP_N, 997 do assert(out[i] == 2 * i) end
  result(dt, MAP_N, cpu)
end

function I.idle()
  collectgarbage() collectgarbage()
  local before = statm_kib()
  local pool <close> = ip.new{workers = IDLE_W, prestart = true}
  pause(0.3) -- idle: every worker has let go of what it keeps for the next task
  result(statm_kib() - before, IDLE_W)
end

local function cpu_pool(task)
  local pool <close> = ip.new{workers = 2, prestart = true, init = "function loop(n) " .. LOOP .. " end"}
  local t0, c0 = now(), os.clock()
  local fs = {}
  for i = 1, CPU_TASKS do fs[i] = pool:submit(task, CPU_N) end
  for i = 1, CPU_TASKS do assert(fs[i]:result() == CPU_WANT) end
  result(now() - t0, CPU_TASKS, os.clock() - c0)
end
I.cpu_name = function() cpu_pool("loop") end
I.cpu_function = function() cpu_pool(loop) end

-- ---- one plain state: the baseline of cpu ---------------------------------------------------
local S = {}
function S.cpu()
  local t0, c0 = now(), os.clock()
  for _ = 1, CPU_TASKS do assert(loop(CPU_N) == CPU_WANT) end
  result(now() - t0, CPU_TASKS, os.clock() - c0)
end

-- ---- luaproc (newproc takes code strings on 5.4; the main state never blocks on a channel:
-- a blocking call there can miss its wake-up, so procs do all channel work) ------------------
local P = {}
local function lp() local lp = require "luaproc"; lp.setnumworkers(2); return lp end

-- the timed procs report through a channel to a proc that prints: the main state only waits
-- procs start with base and package only: the other libraries are required
local PRELUDE = "string, table, math, os = require 'string', require 'table', require 'math', require 'os'\n"
local function lp_run(lp, procs)
  for _, code in ipairs(procs) do assert(lp.newproc(PRELUDE .. code)) end
  lp.wait()
end

function P.strings()
  local lp = lp()
  assert(lp.newchannel("big"))
  lp_run(lp, {
    string.format([[local s = string.rep("x", %d)
      for i = 1, %d do luaproc.send("big", s) end]], STR_LEN, STR_N),
    string.format([[local now = require("interp_pool").now
      local t0, c0 = now(), os.clock()
      for i = 1, %d do assert(#luaproc.receive("big") == %d) end
      print(string.format("RESULT %%.9g %d %%.9g", now() - t0, os.clock() - c0))]], STR_N, STR_LEN,
      STR_N)})
end

-- hand-chunked map: a feeder sends chunks of 1000 integers (the first index, then the values,
-- in one message), 2 worker procs double them, a collector puts the results in place; timed from the first send to the last
-- result (the feeder builds its list before it starts the clock and hands t0 to the collector)
function P.map()
  local lp = lp()
  for _, c in ipairs{"in", "out", "t0"} do assert(lp.newchannel(c)) end
  local CH = 1000
  local chunks = (MAP_N + CH - 1) // CH
  local worker = [[
    while true do
      local t = {luaproc.receive("in")}
      local lo = t[1]
      if not lo then return end
      for i = 2, #t do t[i] = t[i] * 2 end
      luaproc.send("out", table.unpack(t))
    end]]
  lp_run(lp, {
    string.format([[local now = require("interp_pool").now
      local n, ch = %d, %d
      local items = {}
      for i = 1, n do items[i] = i end
      luaproc.send("t0", now(), os.clock())
      for lo = 1, n, ch do
        local hi = math.min(n, lo + ch - 1)
        luaproc.send("in", lo, table.unpack(items, lo, hi))
      end
      luaproc.send("in", false) luaproc.send("in", false)]], MAP_N, CH),
    worker, worker,
    string.format([[local now = require("interp_pool").now
      local n, chunks = %d, %d
      local t0, c0 = luaproc.receive("t0")
      local out = {}
      for c = 1, chunks do
        local r = {luaproc.receive("out")}
        local lo = r[1]
        for k = 2, #r do out[lo + k - 2] = r[k] end
      end
      local dt, cpu = now() - t0, os.clock() - c0
      assert(#out == n)
      for i = 1, n, 997 do assert(out[i] == 2 * i) end
      print(string.format("RESULT %%.9g %%d %%.9g", dt, n, cpu))]], MAP_N, chunks)})
end

-- idle: 100 worker threads, and 100 procs (Lua states) blocked on a receive. A proc starts
-- with base and package only; idle_libs first loads the standard libraries a worker of this
-- pool (or a Lanes "*" lane) holds, so the row compares like with like.
local STD_LIBS = "for _, m in ipairs{'coroutine', 'table', 'io', 'os', 'string', 'math', 'utf8', "
  .. "'debug'} do _G[m] = require(m) end "
local function lp_idle(prelude)
  collectgarbage() collectgarbage()
  local before = statm_kib()
  local lp = require "luaproc"
  lp.setnumworkers(IDLE_W)
  assert(lp.newchannel("park"))
  for _ = 1, IDLE_W do assert(lp.newproc(prelude .. [[luaproc.receive("park")]])) end
  pause(0.3)
  result(statm_kib() - before, IDLE_W)
  -- the procs stay parked; the process exits without waiting for them
  os.exit(0, false)
end
P.idle = function() lp_idle("") end
P.idle_libs = function() lp_idle(STD_LIBS) end

function P.cpu()
  local lp = lp()
  assert(lp.newchannel("done"))
  local t0, c0 = now(), os.clock()
  for _ = 1, CPU_TASKS do
    assert(lp.newproc(string.format([[local n = %d %s]], CPU_N,
      "local s = 0 for i = 1, n do s = s + i end assert(s == " .. CPU_WANT .. ")")))
  end
  lp.wait()
  result(now() - t0, CPU_TASKS, os.clock() - c0)
end

-- ---- Lanes 4 -----------------------------------------------------------------------------
local L = {}
local function lanes() return require("lanes").configure() end

function L.strings()
  local lanes = lanes()
  local l = lanes.linda()
  local t0, c0 = now(), os.clock()
  local h = lanes.gen("*", function(n, len)
    local s = string.rep("x", len)
    for _ = 1, n do l:send("big", s) end
    return true
  end)(STR_N, STR_LEN)
  for _ = 1, STR_N do local _, v = l:receive(60, "big"); assert(#v == STR_LEN) end
  local dt, cpu = now() - t0, os.clock() - c0
  assert(h[1] == true)
  result(dt, STR_N, cpu)
end

function L.idle()
  local lanes = lanes()
  local l = lanes.linda()
  local gen = lanes.gen("*", function() l:receive(60, "park") end)
  collectgarbage() collectgarbage()
  local before = statm_kib()
  local hs = {}
  for i = 1, IDLE_W do hs[i] = gen() end
  pause(0.3)
  result(statm_kib() - before, IDLE_W)
  for _ = 1, IDLE_W do l:send("park", true) end
  for i = 1, IDLE_W do hs[i]:join() end
end

function L.cpu()
  local lanes = lanes()
  local gen = lanes.gen("*", loop)
  local t0, c0 = now(), os.clock()
  local hs = {}
  for i = 1, CPU_TASKS do hs[i] = gen(CPU_N) end
  for i = 1, CPU_TASKS do assert(hs[i][1] == CPU_WANT) end
  result(now() - t0, CPU_TASKS, os.clock() - c0)
end

-- a worker of this pool and a "*" lane hold the standard libraries already
I.idle_libs, L.idle_libs = I.idle, L.idle

local impls = {interp = I, luaproc = P, lanes = L, seq = S}
local f = impls[impl] and impls[impl][shape]
if not f then error("unknown implementation/shape: " .. tostring(impl) .. " " .. tostring(shape)) end
f()
