-- imap.lua - pool:imap(f, input [, {window =, timeout =}]), embedded in the Lua module at
-- build time (lua/CMakeLists.txt makes imap_lua.h from it; lua/imap_lua.c loads it once and
-- sets the result as the pool's method). A lazy map for inputs too long to hold (io.lines, a
-- generator), like Python's Executor.map, on top of pool:submit and the futures. Loaded with
-- three arguments: a function returning the monotonic time in seconds, the default window in
-- calls per worker (INTERP_MAP_WINDOW_CHUNKS: the rule of map_stream's window, a call being a
-- chunk of one) and a function giving the reason a window is past the library's bound (nil
-- within it: the C API's check of map_stream's max_in_flight).
local now, window_chunks, window_bound = ...
local function bad(what) error('pool:imap: ' .. what, 3) end
return function(pool, f, input, opts)
  local window, timeout
  if opts ~= nil then
    if type(opts) ~= 'table' then bad('options must be a table') end
    for k in pairs(opts) do
      if k ~= 'window' and k ~= 'timeout' then bad("unknown option '" .. tostring(k) .. "'") end
    end
    window, timeout = opts.window, opts.timeout
  end
  window = window or window_chunks * pool:stats().max_workers
  if math.type(window) ~= 'integer' or window < 1 then
    bad("option 'window' must be a positive integer")
  end
  local why = window_bound(window)
  if why then bad("option 'window': " .. why) end
  if timeout ~= nil and (type(timeout) ~= 'number' or timeout ~= timeout or timeout < 0) then
    bad("option 'timeout' must be a number of seconds >= 0 (0: none)")
  end
  local nextin
  if type(input) == 'table' then
    local i = 0
    nextin = function() i = i + 1 return input[i] end
  elseif type(input) == 'function' then
    nextin = input
  else
    bad('the input must be a list or an iterator function')
  end
  local deadline = timeout and timeout > 0 and now() + timeout
  local fs, head, tail, ended, n = {}, 1, 0, false, 0
  local function step()
    while not ended and tail - head + 1 < window do
      local v = nextin()
      if v == nil then ended = true
      else
        local fut = pool:submit(f, v) -- may raise: the queue stays whole
        tail = tail + 1
        fs[tail] = fut
      end
    end
    if head > tail then return nil end
    local fut = fs[head]
    fs[head], head, n = nil, head + 1, n + 1
    -- wait first, then take the result: whether the deadline passed is decided once, by the
    -- wait (an item ending just after it must not turn the timeout into another error)
    local waited, ended = pcall(fut.wait, fut, deadline and math.max(0, deadline - now()) or nil)
    if not waited then error(ended, 0) end -- Ctrl-C: fut is cancelled, <close> ends the rest
    if not ended then
      fut:cancel()
      error(string.format('pool:imap: timed out after %g s (item %d not finished)', timeout, n), 2)
    end
    local ok, r = pcall(fut.result, fut)
    if ok then return n, r end
    if fut:cancelled() then error('pool:imap: item ' .. n .. ' was cancelled', 2) end
    if type(r) == 'string' then r = 'pool:imap: item ' .. n .. ' failed: ' .. r end
    error(r, 0)
  end
  local pending = setmetatable({}, {__close = function()
    for k = head, tail do fs[k]:cancel() end
    head = tail + 1
  end})
  return step, nil, nil, pending
end
