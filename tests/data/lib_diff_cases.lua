-- lib_diff_cases.lua: string.find/match/gmatch/gsub, string.rep and table.sort on many inputs,
-- fixed and generated (a seeded generator of its own: the same cases in every state). Returns
-- one line per case: the results or the error message. tests/test_lib_diff.c runs it in a
-- plain Lua state (Lua's own functions) and in a worker state (interp/lib_string.c,
-- lib_sort.c) and compares the texts line by line.
local out = {}
local function show(...)
  local t = table.pack(...)
  for i = 1, t.n do t[i] = type(t[i]) == 'string' and ('%q'):format(t[i]) or tostring(t[i]) end
  return table.concat(t, ',', 1, t.n)
end
local function case(label, f, ...)
  local r = table.pack(pcall(f, ...))
  if not r[1] then
    out[#out + 1] = label .. ' !' .. tostring(r[2])
  else
    out[#out + 1] = label .. ' =' .. show(table.unpack(r, 2, r.n))
  end
end

local seed = 12345
local function rnd(n) -- 1..n
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % n + 1
end

local subjects = {
  '', 'a', 'hello world', 'key = value', '  trim me  ', 'aaa', 'abcabcabc',
  'THE (quick) [brown] {fox}', 'x=1, y=22, z=333', '\0a\0b', 'f(a(b)c)d', 'caf\195\169',
  'one two  three', '2024-01-02T03:04:05', 'ab-cd_ef.gh', ('ab'):rep(20), 'a.b*c+d?e',
  '%d%a', 'THE END', 'tab\there', 'line1\nline2\n', '[[x]]', 'aXbXc',
}
local patterns = {
  '', 'a', '^a', 'a$', '^$', '.', '%a+', '%d+', '(%w+)=(%w+)', '^%s*(.-)%s*$', '%s+',
  '(%a+)%s*=%s*(%w+)', '()a()', 'b*', 'a-b', 'a?b', '[%a_][%w_]*', '[^%s]+', '%b()', '%b[]',
  '%f[%w]%w+', '%f[%W]', '(a)(b)%1', '(.)%1', '[a-c]+', '[]]', '[^]]', '[%]]', 'x*$',
  '%u%l*', '%p+', '%x+', '%c', '%g+', '.-', '.*', '(.-)X', '((a)(b))', '(()', 'a)',
  '%', '[a', '%b', '%ba', '%f', '%fx', '%1', '(a)%2', '(a%1)', '%z', '.-$', '[%w-]+',
  '[a-]', '[-a]', '%.', '%%', '^(%d+)-(%d+)-(%d+)', '\0', '%z+', '[\0-\31]',
  ('(a)'):rep(33), ('a?'):rep(10) .. ('a'):rep(10), '(%d)(%d?)',
}
for si, s in ipairs(subjects) do
  for pi, p in ipairs(patterns) do
    local l = si .. '/' .. pi
    case('find' .. l, string.find, s, p)
    case('findi' .. l, string.find, s, p, 3)
    case('findn' .. l, string.find, s, p, -4)
    case('findp' .. l, string.find, s, p, 1, true)
    case('match' .. l, string.match, s, p)
    case('matchi' .. l, string.match, s, p, 2)
    case('gsub' .. l, string.gsub, s, p, '<%0>')
    case('gsubn' .. l, string.gsub, s, p, '%%', 2)
    case('gsubf' .. l, string.gsub, s, p, function(...) return select('#', ...) .. '' end)
    case('gsubt' .. l, string.gsub, s, p, {a = 'A', ['1'] = false})
    case('gmatch' .. l, function()
      local r = {}
      for a, b in string.gmatch(s, p) do r[#r + 1] = show(a, b) if #r > 50 then break end end
      return table.concat(r, ';')
    end)
    case('gmatchi' .. l, function()
      local r = {}
      for a in string.gmatch(s, p, 4) do r[#r + 1] = show(a) if #r > 50 then break end end
      return table.concat(r, ';')
    end)
  end
end
-- replacement strings and their errors
for _, r in ipairs({'%1', '%2', '%0%0', '%', '%x', '[%1|%2]', 'plain', 5, true}) do
  case('repl' .. tostring(r), string.gsub, 'k1=v1 k2=v2', '(%w+)=(%w+)', r)
  case('repl0' .. tostring(r), string.gsub, 'abc', '%w', r)
end
case('repl-bad', string.gsub, 'abc', '%w', function() return {} end)
case('repl-arg', string.gsub, 'abc', '%w')
case('find-arg', string.find, nil, 'x')
case('find-init', string.find, 'abc', 'c', 10)
case('find-init2', string.find, 'abc', '', 4)
case('find-init3', string.find, 'abc', '', 5)
case('find-big', string.find, 'abc', 'b', math.mininteger)
case('gmatch-anchor', function() local r = {} for w in ('^a^a'):gmatch('^a') do r[#r+1] = w end return #r end)
case('deep', string.find, ('a'):rep(300), ('a?'):rep(300))
case('deep2', string.match, ('x'):rep(250), ('(x)'):rep(3) .. ('.?'):rep(220) .. '$')
-- generated patterns over a small alphabet
local atoms = {'a', 'b', '.', '%a', '%d', '[ab]', '[^a]', '%s', '(', ')', '()', '%1', '%b()', '%f[a]', '$', '^'}
local quants = {'', '', '', '*', '+', '-', '?'}
local alpha = {'a', 'b', '1', ' ', '(', ')', 'c'}
for i = 1, 3000 do
  local p = {}
  for _ = 1, rnd(6) do p[#p + 1] = atoms[rnd(#atoms)] .. quants[rnd(#quants)] end
  p = table.concat(p)
  local s = {}
  for _ = 1, rnd(12) - 1 do s[#s + 1] = alpha[rnd(#alpha)] end
  s = table.concat(s)
  case('gen' .. i .. 'f', string.find, s, p)
  case('gen' .. i .. 'm', string.match, s, p, rnd(4) - 2)
  case('gen' .. i .. 'g', string.gsub, s, p, '[%0]', rnd(3))
end
-- rep
for _, a in ipairs({{'ab', 3}, {'ab', 3, ','}, {'', 5}, {'', 5, ''}, {'x', 0}, {'x', -1},
                    {'', 3, '-'}, {'abc', 1, 'SEP'}, {'a', 2^31}, {'ab', 2^30},
                    {'x', 7, 'yz'}}) do
  case('rep' .. show(table.unpack(a)), string.rep, table.unpack(a))
end
case('rep-bad', string.rep, 'x', 'y')
-- sort: valid orders give one result (equal keys are made distinct or indistinguishable)
for n = 0, 300, 7 do
  local t, u, w = {}, {}, {}
  for i = 1, n do t[i] = rnd(50) u[i] = tostring(rnd(1000)) w[i] = rnd(1000) + i / 1e4 end
  case('sortn' .. n, function() table.sort(t) return table.concat(t, ' ') end)
  case('sorts' .. n, function() table.sort(u) return table.concat(u, ' ') end)
  case('sortf' .. n, function() table.sort(w, function(a, b) return a > b end) return table.concat(w, ' ') end)
end
local big = {}
for i = 1, 5000 do big[i] = rnd(100000) end
case('sortbig', function() table.sort(big) for i = 2, #big do assert(big[i - 1] <= big[i]) end return #big end)
local sorted = {}
for i = 1, 2000 do sorted[i] = i end
case('sortsorted', function() table.sort(sorted, function(a, b) return a > b end) return sorted[1], sorted[2000] end)
case('sort-mixed', table.sort, {1, 'x', 3})
case('sort-badarg', table.sort, {3, 2, 1}, 5)
case('sort-nottable', table.sort, 'abc')
case('sort-len', table.sort, setmetatable({}, {__len = function() return math.maxinteger end}))
case('sort-meta', function()
  local store = {5, 3, 9, 1}
  local prox = setmetatable({}, {__index = store, __newindex = store, __len = function() return #store end})
  table.sort(prox) return table.concat(store, ',')
end)
case('sort-lt', function()
  local mt = {__lt = function(a, b) return a.v < b.v end}
  local t = {} for i = 1, 20 do t[i] = setmetatable({v = (i * 7) % 20}, mt) end
  table.sort(t) local r = {} for i = 1, 20 do r[i] = t[i].v end return table.concat(r, ',')
end)
case('sort-one', function() local t = {1} table.sort(t, 5) return t[1] end)
return table.concat(out, '\n')
