-- Ctrl-C in a blocking call, run by run_interrupt.py (which sends the SIGINT):
--   interrupt.lua MODE LOG
-- MODE: map | imap | result | wait | as_completed | recv | send | select. The script starts endless tasks (not for recv), prints
-- "blocking" and blocks; the SIGINT must make the call raise "interrupted" and cancel the
-- tasks it waited on. Each task appends "started N" to LOG when it begins and, from a
-- <close> handler that runs when it is cancelled, "closed N <error>".
local ip = require "interp_pool"
local mode, log = arg[1], arg[2]
assert(mode and log, "usage: interrupt.lua MODE LOG")

local pool <close> = ip.new{workers = 2, cancel_grace = 0.5, init = [[
  local log = ...
  local function append(line)
    local f = assert(io.open(log, "a"))
    f:write(line, "\n")
    f:close()
  end
  function spin(n)
    local guard <close> = setmetatable({}, {__close = function(_, err)
      append("closed " .. n .. " " .. tostring(err))
    end})
    append("started " .. n)
    while true do end
  end
]], init_args = {log}}

io.stdout:write("blocking\n")
io.stdout:flush()
local futs = {}
local function block()
if mode == "map" then
  pool:map("spin", {1, 2, 3, 4, 5, 6}, {chunksize = 1})
elseif mode == "result" then
  futs[1] = pool:submit("spin", 1)
  futs[1]:result()
elseif mode == "wait" then
  futs = {pool:submit("spin", 1), pool:submit("spin", 2)}
  ip.wait(futs)
elseif mode == "imap" then
  for _ in pool:imap("spin", {1, 2, 3, 4}, {window = 2}) do end
elseif mode == "as_completed" then
  futs = {pool:submit("spin", 1), pool:submit("spin", 2)}
  for _ in ip.as_completed(futs) do end
elseif mode == "recv" then
  pool:channel("nobody sends"):recv()
elseif mode == "send" then
  local ch = pool:channel("nobody receives", 1)
  ch:send(1)
  ch:send(2)
elseif mode == "select" then
  ip.select({pool:channel("a"), pool:channel("b")})
else
  error("unknown mode " .. mode)
end
end
-- The call raises "interrupted" to the script, which catches it and goes on.
local ok, err = pcall(block)
assert(not ok, "the blocking call returned")
assert(err == "interrupted", "expected the error 'interrupted', got: " .. tostring(err))
local caught_at = ip.now()
for i, f in ipairs(futs) do -- cancelled by the interrupt: they end within the cancel grace
  assert(f:wait(10), "future " .. i .. " did not end after the interrupt")
  assert(f:cancelled(), "future " .. i .. " ended " .. tostring(f:status()) .. ", not cancelled")
end
-- every task the call waited on ends (cancelled: a running one within its cancel grace),
-- none stays queued or running
local st = pool:stats()
local until_t = ip.now() + 10
while st.submitted ~= st.done + st.failed + st.cancelled and ip.now() < until_t do
  st = pool:stats()
end
assert(st.queued == 0, "tasks still queued: " .. st.queued)
assert(st.submitted == st.done + st.failed + st.cancelled,
       string.format("submitted %d, ended %d", st.submitted, st.done + st.failed + st.cancelled))
io.stdout:write(string.format("caught: %s at %.6f; cancelled %d, failed %d\n", err, caught_at,
                              st.cancelled, st.failed))
