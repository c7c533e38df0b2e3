-- wordfreq.lua - the most frequent words of a text, map-reduce style, written only in Lua.
--
--   LUA_CPATH="build/release/lua/?.so;;" lua5.4 examples/lua/wordfreq.lua [FILE|- [WORKERS [LINES]]]
--   build/release/cli/interp-pool run examples/lua/wordfreq.lua [FILE|- [WORKERS [LINES]]]
--
-- The script cuts the text into blocks of lines; `pool:map` counts the words of each block in
-- parallel (map); the script merges the per-block tables (reduce). Tables travel between the
-- script and the workers as copied messages, so a worker's count is just a Lua table it
-- returns. Without FILE (or with -) the script makes up a text of LINES lines (default
-- 200,000). It checks the parallel
-- counts against a count in its own state and prints the top ten words and both times.
local ip = require "interp_pool"

local path = arg and arg[1] ~= "-" and arg[1] or nil
local workers = math.tointeger(tonumber(arg and arg[2]) or 2)
local made_up = math.tointeger(tonumber(arg and arg[3]) or 200000)
assert(workers and workers > 0 and made_up and made_up > 0,
       "usage: wordfreq.lua [FILE|- [WORKERS [LINES]]]")

-- The text, as a list of lines.
local lines = {}
if path then
  for line in io.lines(path) do lines[#lines + 1] = line end
else
  local words = {"the", "pool", "of", "lua", "states", "copies", "every", "message", "and",
                 "runs", "tasks", "in", "parallel", "with", "no", "shared", "memory"}
  local seed = 1
  for i = 1, made_up do -- a fixed pseudo-random text: the same counts on every run
    local t = {}
    for j = 1, 8 do
      seed = (seed * 1103515245 + 12345) % 2147483648
      t[j] = words[seed % #words + 1]
    end
    lines[i] = table.concat(t, " ")
  end
end

-- The map step: counts of the words of one block of lines. It runs in the workers (copied as
-- bytecode), so it uses only its argument and the workers' globals.
local function count_words(block)
  local counts = {}
  for _, line in ipairs(block) do
    for word in string.gmatch(string.lower(line), "%a+") do
      counts[word] = (counts[word] or 0) + 1
    end
  end
  return counts
end

-- Blocks of lines: one task each (a task should be worth far more than its copying).
local blocks, size = {}, 5000
for i = 1, #lines, size do
  blocks[#blocks + 1] = table.move(lines, i, math.min(i + size - 1, #lines), 1, {})
end

local function merge(into, counts)
  for word, n in pairs(counts) do into[word] = (into[word] or 0) + n end
  return into
end

-- In parallel: map over the blocks, merge the results in the script.
local t0 = ip.now()
local total = {}
do
  local pool <close> = ip.new{workers = workers}
  for _, counts in ipairs(pool:map(count_words, blocks, {chunksize = 1})) do
    merge(total, counts)
  end
end
local parallel = ip.now() - t0

-- The same in this script's own state, for the check and for scale.
t0 = ip.now()
local check = {}
for _, block in ipairs(blocks) do merge(check, count_words(block)) end
local plain = ip.now() - t0

local words = {}
for word, n in pairs(total) do
  assert(check[word] == n, "the parallel count of '" .. word .. "' differs")
  words[#words + 1] = word
end
for word in pairs(check) do assert(total[word], "'" .. word .. "' is missing") end
table.sort(words, function(a, b)
  if total[a] ~= total[b] then return total[a] > total[b] end
  return a < b
end)

print(string.format("%d lines, %d blocks, %d distinct words", #lines, #blocks, #words))
for i = 1, math.min(10, #words) do
  print(string.format("%8d  %s", total[words[i]], words[i]))
end
print(string.format("one state: %.3f s; pool of %d workers: %.3f s (%.2fx, copies included)",
                    plain, workers, parallel, plain / parallel))
