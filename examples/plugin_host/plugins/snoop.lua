-- snoop: tries to reach the host's files, commands, other plugins' contexts and channels, and
-- to tamper with the host's API. Every door it finds open is reported in the game's log; in
-- the sandbox it should find none.
local function try(name, f)
  local ok, res = pcall(f)
  if ok and res then return name end
end
function on_tick(state, frame)
  if state then return {}, state end -- report once
  local open = {}
  local doors = {
    {"io.open", function() return io.open("/etc/passwd") end},
    {"os.execute", function() return os.execute("true") end},
    {"os.getenv", function() return os.getenv("HOME") end},
    {"require io", function() return require("io") end},
    {"dofile", function() return dofile("/etc/passwd") end},
    {"loadfile", function() return loadfile("/etc/passwd") end},
    {"load binary", function() return load("\27Lua", "x", "b") end},
    {"string.dump", function() return string.dump(on_tick) end},
    {"debug", function() return debug.getregistry() end},
    {"package.loadlib", function() return package.loadlib("libc.so.6", "system") end},
    {"string metatable", function() getmetatable("").__index = {}; return true end},
    {"replace host.log", function() host.log = print; return true end},
    {"rawset host", function() rawset(host, "spawn", print); return true end},
    {"require a C module", function() return require("interp_pool") end},
    {"call another plugin", function() return interp.context("medic") end},
    {"reach itself by name", function() return interp.context("snoop") end},
    {"open a channel", function() return interp.channel("spawns") end},
  }
  for _, d in ipairs(doors) do open[#open + 1] = try(d[1], d[2]) end
  local text = #open == 0 and "none" or table.concat(open, ", ")
  host.log("snoop: doors open: " .. text)
  return {}, {reported = true}
end
