-- Frozen tables and buffers: every read against the same read on the ordinary table or
-- string (differential), writes refused, malformed use (rawset, setmetatable, swapped
-- metatables, metamethods called by hand) never corrupting the value, views outliving their
-- task and pool, the registry, the sandbox.
local ip = require "interp_pool"

-- ---- helpers -------------------------------------------------------------------------------
local function deep_eq(a, b, seen)
  -- a: ordinary value, b: the same read through views (or a thawed copy)
  seen = seen or {}
  if type(a) ~= "table" then
    if a ~= a then return b ~= b end -- NaN
    return a == b and math.type(a) == math.type(b)
  end
  if not (ip.isfrozen(b) or type(b) == "table") then return false end
  if seen[a] then return seen[a] == b end
  seen[a] = b
  if #a ~= #b then return false end
  local n = 0
  for k, v in pairs(a) do
    n = n + 1
    if not deep_eq(v, b[k], seen) then return false end
  end
  local m = 0
  for k, v in pairs(b) do
    m = m + 1
    if a[k] == nil then return false end
  end
  return n == m
end

local function expect_error(pat, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error matching " .. pat)
  assert(tostring(err):find(pat, 1, true), "error '" .. tostring(err) .. "' lacks '" .. pat .. "'")
end

math.randomseed(17)
local function rnd_scalar(depth)
  local r = math.random(6)
  if r == 1 then return math.random(-1000, 1000) end
  if r == 2 then return math.random() * 1e6 end
  if r == 3 then return ("k%d"):format(math.random(100)) end
  if r == 4 then return math.random(2) == 1 end
  if r == 5 then return math.mininteger + math.random(3) end
  return string.rep("\0x", math.random(3))
end
local function rnd_table(depth)
  local t = {}
  for i = 1, math.random(0, 12) do t[i] = math.random(4) == 1 and depth < 4 and rnd_table(depth + 1) or rnd_scalar() end
  for _ = 1, math.random(0, 12) do
    local k = rnd_scalar()
    if k ~= k then k = 0.5 end
    -- no small positive integer keys beside the sequence: # of a table with holes is any border
    if math.type(k) == "integer" and k > 0 and k <= 1000 then k = k + 5000 end
    t[k] = math.random(4) == 1 and depth < 4 and rnd_table(depth + 1) or rnd_scalar()
  end
  t[2.5] = "float key"
  return t
end

-- ---- tables: differential ----------------------------------------------------------------------
for round = 1, 50 do
  local src = rnd_table(0)
  src.shared = {x = round}
  src.again = src.shared
  src.self = src
  local fz = ip.freeze(src)
  assert(type(fz) == "userdata" and ip.isfrozen(fz) and not ip.isfrozen(src))
  assert(deep_eq(src, fz), "round " .. round)
  assert(#fz == #src)
  assert(rawequal(fz.shared, fz.again) and rawequal(fz.self, fz))
  -- ipairs, pairs, next agree
  local a, b = {}, {}
  for i, v in ipairs(src) do a[#a + 1] = v end
  for i, v in ipairs(fz) do b[#b + 1] = v end
  assert(#a == #b)
  for i = 1, #a do assert(deep_eq(a[i], b[i])) end
  local n, k, v = 0, ip.next(fz)
  while k ~= nil do
    n = n + 1
    assert(deep_eq(src[k], v))
    k, v = ip.next(fz, k)
  end
  local m = 0
  for _ in pairs(src) do m = m + 1 end
  assert(n == m)
  -- absent keys of every kind
  for _, key in ipairs{"nope", 0, -1, #src + 1, 1e300, 0.25, true, false, {}} do
    assert(deep_eq(src[key], fz[key]), tostring(key))
  end
  assert(deep_eq(src[1.0], fz[1.0]) and fz[2.5] == "float key")
  -- unpack: table.unpack's results, read in bulk
  local u1, u2 = table.pack(ip.unpack(fz)), table.pack(table.unpack(src))
  assert(u1.n == u2.n)
  for i = 1, u1.n do assert(deep_eq(u2[i], u1[i])) end
  local w1, w2 = table.pack(ip.unpack(fz, -1, #src + 2)), table.pack(table.unpack(src, -1, #src + 2))
  assert(w1.n == w2.n)
  for i = 1, w1.n do assert(deep_eq(w2[i], w1[i])) end
  -- thaw: an ordinary deep copy, identities kept
  local c = ip.thaw(fz)
  assert(type(c) == "table" and deep_eq(src, c) and c.self == c and c.shared == c.again)
end
-- arrays of one type (stored bare) and of mixed types, every integer width
do
  local ints = {0, 1, -1, 127, 128, -32, -33, 255, 256, -128, -129, 65535, 65536, -32768, -32769,
                1 << 31, -(1 << 31) - 1, 1 << 32, math.maxinteger, math.mininteger}
  local floats = {0.5, -0.0, 1 / 0, -1 / 0, 1e300, 3.0, 2^63, -2^63}
  local mixed = {1, 2.5, 3}
  for _, src in ipairs{ints, floats, mixed, {ints, floats}} do
    local fz = ip.freeze(src)
    assert(deep_eq(src, fz) and deep_eq(src, ip.thaw(fz)) and #fz == #src)
    for i = 1, #src do assert(math.type(fz[i]) == math.type(src[i])) end
    local n = 0
    for i, v in ipairs(fz) do n = n + 1 assert(v == src[i] or type(v) == "userdata") end
    assert(n == #src and fz[0] == nil and fz[#src + 1] == nil)
    for _, r in ipairs{{1, #src}, {2, 3}, {0, 2}, {#src, #src + 1}, {-2, 1}, {3, 2}, {#src + 1, #src + 3}} do
      local x, y = table.pack(ip.unpack(fz, r[1], r[2])), table.pack(table.unpack(src, r[1], r[2]))
      assert(x.n == y.n, "unpack " .. r[1] .. ".." .. r[2])
      for k = 1, x.n do
        assert(x[k] == y[k] or type(x[k]) == "userdata" or x[k] ~= x[k], "unpack " .. k)
        assert(math.type(x[k]) == math.type(y[k]) or type(x[k]) == "userdata")
      end
    end
  end
  local many = {}
  for i = 1, 200000 do many[i] = i * 0.5 end
  local fm = ip.freeze(many)
  local got = table.pack(ip.unpack(fm))
  assert(got.n == 200000 and got[200000] == 100000.0)
  assert(select("#", ip.unpack(fm, 5, 4)) == 0)
  local nan = ip.freeze{0 / 0, 1.5}
  assert(nan[1] ~= nan[1] and nan[2] == 1.5)
end
-- integer/float keys as Lua normalises them
do
  local src = {[1] = "a", [2^53] = "big", [-0.0] = "zero", [math.maxinteger] = "max"}
  local fz = ip.freeze(src)
  assert(fz[1.0] == "a" and fz[2^53] == "big" and fz[0] == "zero" and fz[math.maxinteger] == "max")
  assert(fz[math.tointeger(2^53)] == "big")
end
-- a view inside a new freeze is kept by reference; views are valid keys
do
  local inner = ip.freeze{1, 2, 3}
  local outer = ip.freeze{inner = inner, [inner] = "by view"}
  assert(rawequal(outer.inner, inner) and outer[inner] == "by view")
  assert(ip.freeze(inner) == inner and ip.freeze(3) == 3 and ip.freeze(nil) == nil)
end

-- ---- tables: writes and malformed use ---------------------------------------------------------
do
  local fz = ip.freeze{1, 2, x = {y = 1}}
  expect_error("attempt to modify a frozen table", function() fz.x = 1 end)
  expect_error("attempt to modify a frozen table", function() fz.x.y = 2 end)
  expect_error("attempt to modify a frozen table", function() fz[3] = 3 end)
  expect_error("table expected", rawset, fz, 1, 2)
  expect_error("table expected", setmetatable, fz, {})
  expect_error("attempt to modify a frozen table", table.insert, fz, 1)
  expect_error("cannot freeze a function", ip.freeze, print)
  local deep, cur = {}, nil
  cur = deep
  for _ = 1, 300 do cur[1] = {} cur = cur[1] end
  expect_error("nested too deeply", ip.freeze, deep)
  local same = string.rep("s", 100)
  local rep = ip.freeze{same, same, same, k = same}
  assert(rep[1] == same and rep[3] == same and rep.k == same)
  expect_error("cannot freeze", ip.freeze, {f = print})
  assert(getmetatable(fz) == "frozen table")
  assert(fz[1] == 1 and fz.x.y == 1 and #fz == 2)
end

-- debug.setmetatable (full profile): swap a table view's metatable for a buffer's and back
if debug and debug.setmetatable then
  local fz = ip.freeze{10, 20, name = "n"}
  local buf = ip.buffer("bytes")
  local tmt, bmt = debug.getmetatable(fz), debug.getmetatable(buf)
  debug.setmetatable(fz, bmt)
  expect_error("frozen buffer expected", function() return fz:byte(1) end)
  expect_error("frozen buffer expected", function() return #fz end)
  expect_error("frozen buffer expected", function() return fz:sub(1, 2) end)
  debug.setmetatable(buf, tmt)
  expect_error("frozen table expected", function() return buf[1] end)
  expect_error("frozen table expected", function() return #buf end)
  expect_error("frozen table expected", function() for _ in pairs(buf) do end end)
  -- metamethods called on foreign values
  expect_error("frozen table expected", tmt.__index, {}, 1)
  expect_error("frozen table expected", tmt.__index, io.stdout, 1)
  expect_error("frozen buffer expected", bmt.__index.byte, io.stdout, 1)
  expect_error("frozen buffer expected", bmt.__index.byte, "abc", 1)
  tmt.__gc({})        -- not a view: nothing happens
  tmt.__gc(io.stdout) -- not a view either (io's file is left alone)
  assert(io.stdout:write(""))
  -- a file handle given a view's metatable: the methods refuse it
  local fmt = debug.getmetatable(io.stdout)
  debug.setmetatable(io.stdout, tmt)
  expect_error("frozen table expected", function() return io.stdout[1] end)
  debug.setmetatable(io.stdout, fmt)
  debug.setmetatable(fz, tmt)
  debug.setmetatable(buf, bmt)
  assert(fz[1] == 10 and fz.name == "n" and #fz == 2 and buf:sub(1, 5) == "bytes")
  -- __gc by hand: that view is dead (errors, no crash), the value lives on for others
  local p = ip.new{workers = 1}
  local keep = ip.freeze{1, 2, 3}
  tmt.__gc(keep)
  tmt.__gc(keep)
  expect_error("frozen table expected", function() return keep[1] end)
  expect_error("cannot freeze a userdata", ip.freeze, {keep}) -- a dead view is no value
  assert(ip.freeze{1, 2, 3}[3] == 3)
  p:shutdown()
end

-- ---- buffers: differential --------------------------------------------------------------------
do
  local parts = {}
  for i = 1, 3000 do parts[#parts + 1] = string.char(math.random(0, 255)) end
  parts[#parts + 1] = "needle in the haystack\0zero\0"
  parts[#parts + 1] = string.pack("<i4>I8dzs1", -5, 2^40, 3.25, "cstr", "pfx")
  local s = table.concat(parts)
  local b = ip.buffer(s)
  assert(ip.isfrozen(b) and type(b) == "userdata" and #b == #s and b:len() == #s)
  local idx = {0, 1, 2, -1, -2, #s, #s + 1, #s + 10, -#s, -#s - 1, 100, -100, math.mininteger,
               math.maxinteger}
  for _, i in ipairs(idx) do
    assert(b:byte(i) == s:byte(i))
    for _, j in ipairs(idx) do
      assert(b:sub(i, j) == s:sub(i, j), ("sub %d %d"):format(i, j))
      if math.abs(i) < 4000 and math.abs(j) < 4000 then
        local x, y = table.pack(b:byte(i, j)), table.pack(s:byte(i, j))
        assert(x.n == y.n)
        for k = 1, x.n do assert(x[k] == y[k]) end
      end
    end
    assert(b:sub(i) == s:sub(i))
  end
  for _ = 1, 200 do
    local i = math.random(#s)
    local pat = s:sub(i, i + math.random(0, 6))
    local init = math.random(-#s - 5, #s + 5)
    local x1, x2 = b:find(pat, init, true)
    local y1, y2 = s:find(pat, init, true)
    assert(x1 == y1 and x2 == y2)
  end
  assert(b:find("needle") == s:find("needle") and b:find("") == s:find(""))
  assert(b:find("", #s + 1) == s:find("", #s + 1) and b:find("", #s + 2) == s:find("", #s + 2))
  assert(b:find("n.edle") == s:find("n.edle") and b:match("%z(%a+)%z") == "zero")
  local pos = #s - #string.pack("<i4>I8dzs1", -5, 2^40, 3.25, "cstr", "pfx") + 1
  for _, fmt in ipairs{"<i4", "<i4>I8", "<i4>I8d", "<i4>I8dz", "<i4>I8dzs1", "!4 i3 Xi4 d", "c5",
                       "B", "<h", "j", "n"} do
    for _, at in ipairs{pos, pos + 1, 1, 2, 7, 16, 17} do
      local x = table.pack(pcall(b.unpack, b, fmt, at))
      local y = table.pack(pcall(s.unpack, fmt, s, at))
      assert(x[1] == y[1], fmt .. " at " .. at)
      if x[1] then
        assert(x.n == y.n)
        for k = 2, x.n do assert(x[k] == y[k] or (x[k] ~= x[k] and y[k] ~= y[k]), fmt) end
      end
    end
  end
  local big = ip.buffer(string.rep("a", 5000) .. string.pack("s4", string.rep("z", 70000)))
  assert(big:unpack("s4", 5001) == string.rep("z", 70000))
  expect_error("data string too short", big.unpack, big, "s4", 4990)
  expect_error("attempt to modify a frozen buffer", function() b.x = 1 end)
  assert(ip.thaw(b) == s and ip.freeze(b) == b)
end

-- ---- array parts whatever the order lua_next gives their keys in ----------------------------------
do
  local cases = {}
  local t = {} t[3] = "c" t[2] = "b" t[1] = "a" cases[#cases + 1] = t       -- all in the hash
  t = {1, 2, 3} t[5] = 5 t[4] = 4 cases[#cases + 1] = t                    -- a tail in the hash
  t = {1, 2, 3, x = 1} t[4] = 4.5 cases[#cases + 1] = t                    -- mixed kinds
  t = {nil, nil, 3} cases[#cases + 1] = t                                  -- a border, no key 1
  t = {} for i = 100, 1, -1 do t[i] = i * 0.5 end cases[#cases + 1] = t    -- filled backwards
  t = {1.5, 2.5, "s", {4}, 5} cases[#cases + 1] = t                        -- bare, then tagged
  t = {} for i = 1, 50 do t[i] = i end t[25] = nil cases[#cases + 1] = t   -- a hole
  t = {} for i = 1, 100 do t[i] = i end t.k = "v" t[200] = 1 cases[#cases + 1] = t -- big arrays:
  t = {} for i = 1, 64 do t[i] = i * 0.5 end cases[#cases + 1] = t         -- array part full
  t = {} for i = 1, 300 do t[i] = i end for i = 150, 300, 7 do t[i] = nil end
  t[1000] = "far" t[true] = 1 cases[#cases + 1] = t                        -- holes, by index
  t = {} for i = 1, 100 do t[i] = {i} end t[50] = t[1] cases[#cases + 1] = t -- shared subtables
  t = table.move({}, 1, 0, 1, {}) for i = 1, 70 do t[i] = "s" .. i end cases[#cases + 1] = t
  for n, c in ipairs(cases) do
    local f = ip.freeze(c)
    -- # of a table with holes is any border: the view's is the first one, compared below
    local b = 0 while c[b + 1] ~= nil do b = b + 1 end
    if #c == b then assert(deep_eq(c, f), "case " .. n) end
    for k, v in pairs(c) do
      assert(f[k] == v or (type(v) == "table" and deep_eq(v, f[k])), "case " .. n .. " key " .. tostring(k))
    end
    assert(#f == b, "case " .. n .. ": #f " .. #f .. " vs " .. b)
    local k, cnt = nil, 0
    repeat k = ip.next(f, k) cnt = cnt + 1 until k == nil
    local want = 0 for _ in pairs(c) do want = want + 1 end
    assert(cnt - 1 == want, "case " .. n .. ": keys")
    for i = 1, #f do assert(f[i] ~= nil, "case " .. n .. ": #f " .. #f) end
    assert(f[#f + 1] == nil, "case " .. n .. ": border")
  end
end

-- ---- buffers: patterns (find, match, gmatch) against the string functions -----------------------
do
  local function same(x, y, what)
    assert(x.n == y.n, what .. ": " .. x.n .. " results vs " .. y.n)
    for k = 1, x.n do
      assert(x[k] == y[k] and math.type(x[k]) == math.type(y[k]),
             what .. ": result " .. k .. " " .. tostring(x[k]) .. " vs " .. tostring(y[k]))
    end
  end
  local function check(s, pat, init, plain)
    local b = ip.buffer(s)
    local what = ("%q:find(%q, %s, %s)"):format(s, pat, tostring(init), tostring(plain))
    same(table.pack(pcall(b.find, b, pat, init, plain)), table.pack(pcall(s.find, s, pat, init, plain)), what)
    same(table.pack(pcall(b.match, b, pat, init)), table.pack(pcall(s.match, s, pat, init)), what .. " match")
    local ok1, it1 = pcall(b.gmatch, b, pat, init)
    local ok2, it2 = pcall(s.gmatch, s, pat, init)
    assert(ok1 == ok2, what .. " gmatch")
    if not ok1 then return end
    for n = 1, 100 do
      local x, y = table.pack(pcall(it1)), table.pack(pcall(it2))
      same(x, y, what .. " gmatch step " .. n)
      if not x[1] or x[2] == nil then break end
    end
  end
  local subjects = {"", "a", "hello world", "  key = value ; other=2 ", "THE (quick) [brown] {fox}",
                    "f(a(b)c)d((e)", "x\0y\0\0z", "aaaaaaaaab", "abcabcabc", "3.14 -2 0x1F 1e10",
                    "\255\1\128 bytes", "line1\nline2\n", "%%%", "[]^$", "word"}
  local patterns = {
    -- literals, classes, sets
    "", "a", "o w", "%a+", "%d+", "%D+", "%s*", "%S+", "%w+", "%W", "%l+", "%u+", "%p", "%c",
    "%x+", "%g+", "%z", "%%", "%.", ".", "..", "[aeiou]+", "[^aeiou ]+", "[a-f]+", "[%a_][%w_]*",
    "[%]]", "[]]", "[^]]+", "[a-]", "[-a]", "[%-%%]+", "[\0-\31]", "[\128-\255]+",
    -- quantifiers
    "a*", "a+", "a-", "a?", "a-b", "a*b", ".-b", ".*", ".-", "x*y?z+", "a?a?a?aaa", "[ab]-c",
    -- anchors
    "^", "$", "^$", "^a", "a$", "^h.*d$", "^%s*(.-)%s*$", "b$", "^(%a+)", "o$", "$a", "a^",
    -- captures and position captures
    "(%a+)", "(%a+) (%a+)", "()", "()a()", "(a)(b)(c)", "((a)(b))", "(h)(e)(l)(l)(o)", "(.-)=(.*)",
    "(%w+)%s*=%s*(%w+)", "()(%d+)()", "(a*(.)%w(%s*))",
    -- back-references
    "(a)%1", "(%a)%1", "(.)%1", "(a*)%1", "(%a+) %1", "(.)(.)%2%1", "()%1",
    -- %b and %f
    "%b()", "%b[]", "%b{}", "%bxy", "%b((", "%f[%a]%a+", "%f[%A]", "%f[%w]%w+%f[%W]", "%f[^\0]",
    "%f[\0]", "%f[%z]", "%f[%l]%u", "%f[a-z]",
    -- malformed and errors (same messages)
    "%", "a%", "[a", "[", "[^", "[%", "(", "(()", ")", "a)", "%1", "(a)%2", "%b", "%ba", "%f", "%fa",
    "%f[a", "(((((((((((((((((((((((((((((((((a)))))))))))))))))))))))))))))))))",
    ("a?"):rep(300), ("(a)"):rep(33), ("a*"):rep(50) .. "b",
  }
  local inits = {nil, 1, 2, 0, -1, -3, 5, 100, -100, math.mininteger, math.maxinteger}
  for _, sbj in ipairs(subjects) do
    for _, pat in ipairs(patterns) do
      for k = 1, 11 do check(sbj, pat, inits[k]) end
      check(sbj, pat, 1, true)
      check(sbj, pat, -4, 1)
    end
  end
  -- random patterns over a small alphabet, random subjects
  local alphabet = {"a", "b", "(", ")", "%a", "%d", ".", "*", "+", "-", "?", "[ab]", "[^a]", "^",
                    "$", "%1", "%b()", "%f[a]", "()", "%", "[", "]"}
  for _ = 1, 3000 do
    local p, sb = {}, {}
    for _ = 1, math.random(0, 7) do p[#p + 1] = alphabet[math.random(#alphabet)] end
    for _ = 1, math.random(0, 12) do sb[#sb + 1] = ("ab()1 x"):sub(math.random(7), nil):sub(1, 1) end
    check(table.concat(sb), table.concat(p), math.random(-3, 14))
  end
  -- recursion bounded exactly as string.find's ("pattern too complex" from 200 nested items)
  for _, n in ipairs{199, 200, 201, 400} do
    check(("a"):rep(300), ("a?"):rep(n))
    check(("a"):rep(300), ("(a?)"):rep(n))
  end
  -- a match in a big buffer, far from the start, and the frontier at its very end
  local big = string.rep("x", 1 << 20) .. "key=val" .. string.rep("y", 100)
  local bb = ip.buffer(big)
  assert(bb:find("(%a+)=(%a+)") == big:find("(%a+)=(%a+)"))
  assert(select(4, bb:find("(%a+)=(%a+)", -200)) == "valyyyy" .. string.rep("y", 96))
  assert(bb:find("%f[%z]") == #big + 1 and bb:find("y%f[%z]") == #big)
  -- gmatch keeps its buffer; its view killed by hand (full profile) gives an error, not a read
  local it = ip.buffer("a1 b2 c3"):gmatch("(%a)(%d)")
  collectgarbage()
  assert(select(2, it()) == "1" and select(2, it()) == "2")
  local buf2 = ip.buffer("k1 k2")
  local it2 = buf2:gmatch("k%d")
  debug.getmetatable(buf2).__gc(buf2)
  expect_error("the frozen buffer of this gmatch is gone", it2)
  expect_error("frozen buffer expected", buf2.find, buf2, "k")
  local it3 = ip.buffer("k1 k2"):gmatch("k%d")
  debug.setupvalue(it3, 1, ip.buffer("other"))
  expect_error("the frozen buffer of this gmatch is gone", it3)
end

-- ---- across states: tasks, results, channels, the registry -----------------------------------
local src = {1, 2, 3, name = "world", nested = {deep = {4, 5}}}
local fz = ip.freeze(src)
local pool = ip.new{workers = 2}
local r = pool:map(function(t) return #t + t[3] + #t.nested.deep, t.name, t end, {fz, fz, fz})
assert(r[1] == 8)
local f = pool:submit(function(t)
  local ok, err = pcall(function() t.x = 1 end)
  local v = interp.freeze({t, list = {7, 8}})
  interp.shared("made-by-task", v)
  local again = pcall(interp.shared, "made-by-task", {})
  return ok, err, v, interp.isfrozen(v.list), again, rawequal(v[1], t)
end, fz)
local ok, err, v, isfz, again, same = f:result()
assert(ok == false and err:find("attempt to modify a frozen table"))
assert(ip.isfrozen(v) and isfz and again == false and same == true)
assert(rawequal(v[1], fz) and v.list[2] == 8)
-- through a channel, and the registry read by a later task
local ch = pool:channel("frozen")
ch:send(fz)
local got = pool:submit(function()
  local t = interp.channel("frozen"):recv()
  local s = interp.shared("made-by-task")
  return t.nested.deep[2] + s.list[1], interp.shared("nothing")
end):result()
assert(got == 12)
-- a view captured by a function cannot travel inside it (the function's upvalues are copies)
local caught, why = pcall(function() return pool:submit(function(x) return function() return x end end, fz):result() end)
assert(not caught and tostring(why):find("cannot copy a frozen value inside a function", 1, true))
-- the host script's side of the registry
local hv = pool:share("from-host", {answer = 42})
assert(ip.isfrozen(hv) and hv.answer == 42 and pool:shared("from-host") == hv)
assert(pool:shared("made-by-task").list[2] == 8 and pool:shared("nothing") == nil)
assert(pool:submit(function() return interp.shared("from-host").answer end):result() == 42)
pool:share("from-host", "now a buffer")
assert(pool:submit(function() return interp.shared("from-host"):sub(1, 3) end):result() == "now")
assert(pool:share("from-host", nil) == nil and pool:shared("from-host") == nil)
assert(not pcall(pool.share, pool, "bad", print))
-- views kept in a worker's globals outlive the task that made them: two tasks that meet at a
-- channel barrier run on the two workers at once, so each worker keeps one, whatever the
-- placement of the later tasks
local function keep(mine, other)
  KEEP = interp.freeze({kept = "yes"})
  interp.channel(mine):send(true)
  return interp.channel(other):recv(10)
end
local k1, k2 = pool:submit(keep, "keep-a", "keep-b"), pool:submit(keep, "keep-b", "keep-a")
assert(k1:result() == true and k2:result() == true)
for _ = 1, 4 do
  assert(pool:submit(function() collectgarbage() return KEEP and KEEP.kept end):result() == "yes")
end
local st = pool:stats()
assert(st.frozen_values >= 2 and st.frozen_bytes > 0, "stats count frozen values")
pool:shutdown()
pool = nil
collectgarbage()
-- views outlive the pool
assert(v.list[1] == 7 and v[1].nested.deep[1] == 4 and fz.name == "world")

-- ---- the sandbox: views work, reach nothing else; a freeze fits under the limit ----------------
local sb = ip.new{workers = 1, sandbox = true, memory_limit = 8 << 20, init = [[
function probe(t)
  local mt = getmetatable(t)
  local view = interp.freeze({a = {1, 2}})
  local big, s = {}, string.rep("x", 60)
  for i = 1, 40000 do big[i] = s .. i end -- ~4.5 MB here, as much again frozen
  local ok = pcall(interp.freeze, big)
  return mt, t.nested.deep[1], view.a[2], ok, interp.mapfile == nil, tostring(t),
         pcall(rawset, t, 1, 2)
end]]}
local res = table.pack(sb:submit("probe", fz):result())
assert(res[1] == "frozen table" and res[2] == 4 and res[3] == 2)
assert(res[4] == false, "a freeze larger than the sandbox's limit is refused")
assert(res[5] == true and res[7] == false)
-- no heap address shows in the sandbox: a per-state counter instead
assert(tonumber(res[6]:match("^frozen table: 0x(%x+)$"), 16) < 1 << 20, res[6])
sb:shutdown()

-- ---- a file, mapped -------------------------------------------------------------------------
do
  local path = os.tmpname()
  local fh = assert(io.open(path, "wb"))
  fh:write("line one\nline two\n")
  fh:close()
  local m = assert(ip.mapfile(path))
  assert(#m == 18 and m:sub(6, 8) == "one" and m:find("two", 1, true) == 15)
  os.remove(path)
  assert(m:byte(1) == 108)
  assert(ip.mapfile(path .. ".absent") == nil)
end
print("frozen: ok")
