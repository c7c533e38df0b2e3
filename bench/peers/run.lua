-- run.lua - this pool beside its Lua peers (Lanes, luaproc) on the same shapes, in alternating
-- rounds, each measurement in a fresh process (bench/peers/shapes.lua):
--
--   LUA_PATH="<peers>/?.lua;;" LUA_CPATH="<peers>/?.so;build/release/lua/?.so;;" \
--     lua5.4 bench/peers/run.lua [rounds] [scale]
--
-- rounds (default 5): every round runs every implementation of every row once, the start
-- rotated from round to round, so a drifting machine hits them alike. A row's figure is the
-- median over the rounds; the comparison is a paired ratio: per round, this pool against the
-- best peer of that round, then the median of those ratios with their range. AHEAD / BEHIND
-- when every round is on one side of 1, WITHIN NOISE when the rounds straddle it. For the rows
-- whose wall time the scheduling of a loaded machine decides (strings, map, cpu), a second table gives
-- the CPU time of all the process's threads over the timed part (os.clock), paired the same way:
-- the work each implementation does, whatever share of the cores it got.
-- A peer that is not installed is skipped with a note (bench/README.md says how to build them).
local rounds = tonumber(arg[1]) or 5
local scale = tonumber(arg[2]) or 1
local here = (arg[0]:match("^(.*)/[^/]*$") or ".")
local lua = arg[-1] or "lua5.4"

local have = {interp = true, seq = true}
for _, m in ipairs{"lanes", "luaproc"} do
  have[m] = pcall(require, m)
  if not have[m] then
    print(string.format("note: %s is not installed (not found on LUA_CPATH): its columns are skipped", m))
  end
end
assert(pcall(require, "interp_pool"), "interp_pool is not on LUA_CPATH (build/release/lua/?.so)")

local MIB = 1 << 20
-- rows: what is measured, the implementations (first: this pool), how a run becomes the figure
local rows = {
  {name = "1 MiB strings, worker -> host script", unit = "MB/s", higher = true,
   impls = {{"interp", "strings"}, {"luaproc", "strings"}, {"lanes", "strings"}}, cpu_unit = "MiB",
   figure = function(secs, n) return n * MIB / secs / 1e6 end},
  {name = "map x*2 over 10^6 integers from Lua", unit = "M items/s", higher = true,
   impls = {{"interp", "map"}, {"luaproc", "map"}}, cpu_unit = "item",
   figure = function(secs, n) return n / secs / 1e6 end},
  {name = "RSS per idle worker, 100 workers, std libraries", unit = "KiB", higher = false,
   impls = {{"interp", "idle_libs"}, {"luaproc", "idle_libs"}, {"lanes", "idle_libs"}},
   figure = function(kib, n) return kib / n end},
  {name = "the same, each as it starts (luaproc: no libs)", unit = "KiB", higher = false,
   impls = {{"interp", "idle"}, {"luaproc", "idle"}, {"lanes", "idle"}},
   figure = function(kib, n) return kib / n end},
  {name = "8 x 20M loop, speedup", unit = "x", higher = true,
   baseline = {"seq", "cpu"},
   impls = {{"interp", "cpu_name", label = "interp (by name)"},
            {"interp", "cpu_function", label = "interp (function)"},
            {"luaproc", "cpu"}, {"lanes", "cpu"}},
   cpu_unit = "task",
   figure = function(secs) return secs end}, -- turned into speedups below
}

local function measure(impl, shape)
  local cmd = string.format("%s %s/shapes.lua %s %s %s 2>&1", lua, here, impl, shape, scale)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  local v, n, cpu = out:match("RESULT (%S+) (%d+) ?(%S*)")
  if not v then error(string.format("%s %s failed:\n%s", impl, shape, out)) end
  return tonumber(v), tonumber(n), tonumber(cpu)
end

-- median, lowest, highest
local function spread(v)
  local s = {}
  for i, x in ipairs(v) do s[i] = x end
  table.sort(s)
  local n = #s
  local med = n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
  return med, s[1], s[n]
end

-- figures[row][label][round]; cpus[row][label][round]: CPU microseconds per unit of work
local figures, cpus = {}, {}
for r = 1, rounds do
  for ri, row in ipairs(rows) do
    figures[ri] = figures[ri] or {}
    cpus[ri] = cpus[ri] or {}
    local list = {}
    if row.baseline then list[#list + 1] = {row.baseline[1], row.baseline[2], label = "sequential"} end
    for _, im in ipairs(row.impls) do
      if have[im[1]] then list[#list + 1] = im end
    end
    local raw = {}
    for k = 0, #list - 1 do
      local im = list[(k + r - 1) % #list + 1]
      local label = im.label or im[1]
      local v, n, cpu = measure(im[1], im[2])
      raw[label] = row.figure(v, n)
      if cpu then
        cpus[ri][label] = cpus[ri][label] or {}
        cpus[ri][label][r] = cpu / n * 1e6
      end
    end
    for label, v in pairs(raw) do
      if row.baseline then v = raw.sequential / v end
      figures[ri][label] = figures[ri][label] or {}
      figures[ri][label][r] = v
    end
  end
  io.stderr:write(string.format("round %d of %d done\n", r, rounds))
end

-- one table: per row, this pool's median, the peers' medians, the paired ratio against the best
-- peer of each round (higher: whether more is better)
local function table_of(fig, unit_of, higher_of)
  print(string.format("%-48s %-24s %-30s %s", "row", "interp_pool", "peers", "interp vs best peer, paired"))
  for ri, row in ipairs(rows) do
    local mine, peers = {}, {}
    for _, im in ipairs(row.impls) do
      local label = im.label or im[1]
      local v = fig[ri] and fig[ri][label]
      if v then
        if im[1] == "interp" then mine[#mine + 1] = {label, v} else peers[#peers + 1] = {label, v} end
      end
    end
    local higher = higher_of(row)
    local ptxt = {}
    for _, p in ipairs(peers) do ptxt[#ptxt + 1] = string.format("%s %.4g", p[1], (spread(p[2]))) end
    for _, m in ipairs(mine) do
      local verdict = "(no peer installed)"
      if #peers > 0 then
        local ratios = {}
        for r = 1, rounds do
          local best
          for _, p in ipairs(peers) do
            local v = p[2][r]
            if not best or (higher and v > best) or (not higher and v < best) then best = v end
          end
          ratios[r] = higher and m[2][r] / best or best / m[2][r]
        end
        local med, lo, hi = spread(ratios)
        verdict = string.format("%.2fx [%.2f..%.2f] %s", med, lo, hi,
          lo > 1 and "AHEAD" or hi < 1 and "BEHIND" or (med >= 1 and "WITHIN NOISE (>= 1)" or "WITHIN NOISE (< 1)"))
      end
      print(string.format("%-48s %-24s %-30s %s", #mine > 1 and m[1]:match("%((.*)%)") .. ": " .. row.name or row.name,
        string.format("%.4g %s", (spread(m[2])), unit_of(row)), table.concat(ptxt, ", "), verdict))
    end
  end
end

print(string.format("\nbench/peers: medians of %d alternating rounds (scale %g), each run in a fresh process", rounds, scale))
table_of(figures, function(row) return row.unit end, function(row) return row.higher end)
print("(ratio > 1: this pool better; for memory, the peer's KiB over ours)")
print("\nCPU time of all threads over the timed part (os.clock), microseconds per unit of work")
table_of(cpus, function(row) return "us/" .. (row.cpu_unit or "unit") end, function() return false end)
print("(ratio > 1: this pool uses less CPU for the same work)")
