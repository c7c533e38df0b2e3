-- ip.new{libs = ...}: C modules of the script opened in every worker state (the test module
-- iptest_mod.so is built next to interp_pool.so); worker states start with the script's
-- package.path and cpath; a sandboxed pool opens the listed modules only, and its require
-- finds only those; a name that does not exist is an error of ip.new.
local ip = require "interp_pool"

-- full profile: a global in every worker, require finds it, one library for all states
do
  local pool <close> = ip.new{workers = 2, prestart = true, libs = {"iptest_mod"}, init = [[
    function sum(a, b) return iptest_mod.add(a, b) end
  ]]}
  assert(pool:submit("sum", 40, 2):result() == 42)
  assert(pool:submit(function() return require("iptest_mod") == iptest_mod end):result())
  -- each state opened the module itself (prestart: two states), with the script's paths
  local states = pool:map(function() return iptest_mod.state end, {1, 2, 3, 4}, {chunksize = 1})
  for _, s in ipairs(states) do assert(math.type(s) == "integer" and s >= 1) end
  local paths = pool:submit(function() return package.path, package.cpath end)
  local p, c = paths:result()
  assert(p == package.path and c == package.cpath, "workers start with the script's paths")
  -- the module's C state is the process's: the script loaded the same library
  local before = pool:submit(function() return iptest_mod.calls() end):result()
  local list = {}
  for i = 1, 100 do list[i] = i end
  pool:map(function(i) return iptest_mod.add(i, i) end, list)
  assert(pool:submit(function() return iptest_mod.calls() end):result() >= before + 100)
end

-- a path the script set is the workers' path
do
  local saved = package.path
  package.path = "/nowhere/?.lua;" .. saved
  local pool <close> = ip.new{workers = 1}
  assert(pool:submit(function() return package.path end):result() == package.path)
  package.path = saved
end

-- sandbox: the listed module is there (global and require), read-only; nothing else is
do
  local pool <close> = ip.new{workers = 1, sandbox = true, libs = {"iptest_mod"}, init = [[
    function sum(a, b) return iptest_mod.add(a, b) end
    function req(name) return pcall(require, name) end
    function same() return require("iptest_mod") == iptest_mod end
    function clobber() iptest_mod.add = nil end
  ]]}
  assert(pool:submit("sum", 1, 2):result() == 3)
  assert(pool:submit("same"):result() == true)
  local ok, err = pool:submit("req", "interp_pool"):result()
  assert(ok == false and err:find("finds only the host libraries allowed", 1, true), err)
  local f = pool:submit("clobber")
  local ok2, err2 = pcall(f.result, f)
  assert(not ok2 and err2:find("read-only", 1, true), err2)
  assert(pool:submit("sum", 2, 2):result() == 4)
end

-- a sandboxed pool without libs has no require at all
do
  local pool <close> = ip.new{workers = 1, sandbox = true, init = "function r() return require end"}
  assert(pool:submit("r"):result() == nil)
end

-- errors of ip.new
local function fails(opts, text)
  local ok, e = pcall(ip.new, opts)
  assert(not ok, "ip.new should have failed for " .. text)
  assert(e:find(text, 1, true), e)
end
fails({libs = {"no_such_module_xyz"}}, "option 'libs': no C module 'no_such_module_xyz' on package.cpath")
fails({libs = {"no_such_module_xyz"}}, "no file")
fails({libs = "iptest_mod"}, "option 'libs' must be a list of module names, got string")
fails({libs = {42}}, "option 'libs': entry 1 must be a module name, got number")
fails({libs = {""}}, "entry 1 must be a name of 1..64 bytes")
fails({libs = {"iptest_mod", "iptest_mod"}}, "host library 'iptest_mod' is given twice")
-- a version suffix is part of the file name searched for
fails({libs = {"iptest_mod-x"}}, "no C module 'iptest_mod-x'")
-- standard libraries are not C modules on the path (workers have them already)
fails({libs = {"string"}}, "no C module 'string'")

print("libs: ok")
