local fs = {}
for i = 1, 3 do fs[i] = function() return i end end
print(fs[1](), fs[2](), fs[3]())
local shared = {}
do local n = 0 shared.inc = function() n = n + 1 return n end shared.get = function() return n end end
shared.inc() shared.inc()
print(shared.get())
local function outer() local x = 1 local function mid() local function inner() x = x + 1 return x end return inner end return mid() end
local f = outer()
print(f(), f())
local w = {}
local i = 1
while i <= 3 do local j = i w[i] = function() return j end i = i + 1 end
print(w[1](), w[3]())
local r = {}
repeat local k = #r + 1 r[k] = function() return k end until #r == 2
print(r[1](), r[2]())
local function rec(n) if n <= 1 then return 1 end return n * rec(n - 1) end
print(rec(20), rec(21))
local self_ref
self_ref = function(n) return n == 0 and "base" or self_ref(n - 1) end
print(self_ref(10))
print((function(...) local a, b = ... return function() return a, b end end)(5, 6)())
