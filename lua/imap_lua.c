/* imap_lua.c - pool:imap(f, input [, {window =, timeout =}]): a lazy map for inputs too long to
 * hold (io.lines, a generator), like Python's Executor.map. Written in Lua on top of
 * pool:submit and the futures: it only orders calls the binding already has. At most `window`
 * calls are queued or running; results come in input order; a failed call raises when the
 * loop reaches it; leaving the loop early (break, error) cancels the calls still pending. */
#include <lauxlib.h>

#include "lm.h"

static const char imap_source[] =
    "local now = ...\n"
    "local function bad(what) error('pool:imap: ' .. what, 3) end\n"
    "return function(pool, f, input, opts)\n"
    "  local window, timeout\n"
    "  if opts ~= nil then\n"
    "    if type(opts) ~= 'table' then bad('options must be a table') end\n"
    "    for k in pairs(opts) do\n"
    "      if k ~= 'window' and k ~= 'timeout' then bad(\"unknown option '\" .. tostring(k) .. \"'\") end\n"
    "    end\n"
    "    window, timeout = opts.window, opts.timeout\n"
    "  end\n"
    "  window = window or 4 * pool:stats().max_workers\n"
    "  if math.type(window) ~= 'integer' or window < 1 or window > (1 << 24) then\n"
    "    bad(\"option 'window' must be an integer from 1 to 16777216\")\n"
    "  end\n"
    "  if timeout ~= nil and (type(timeout) ~= 'number' or timeout ~= timeout or timeout < 0) then\n"
    "    bad(\"option 'timeout' must be a number of seconds >= 0 (0: none)\")\n"
    "  end\n"
    "  local nextin\n"
    "  if type(input) == 'table' then\n"
    "    local i = 0\n"
    "    nextin = function() i = i + 1 return input[i] end\n"
    "  elseif type(input) == 'function' then\n"
    "    nextin = input\n"
    "  else\n"
    "    bad('the input must be a list or an iterator function')\n"
    "  end\n"
    "  local deadline = timeout and timeout > 0 and now() + timeout\n"
    "  local fs, head, tail, ended, n = {}, 1, 0, false, 0\n"
    "  local function step()\n"
    "    while not ended and tail - head + 1 < window do\n"
    "      local v = nextin()\n"
    "      if v == nil then ended = true\n"
    "      else\n"
    "        local fut = pool:submit(f, v) -- may raise: the queue stays whole\n"
    "        tail = tail + 1\n"
    "        fs[tail] = fut\n"
    "      end\n"
    "    end\n"
    "    if head > tail then return nil end\n"
    "    local fut = fs[head]\n"
    "    fs[head], head, n = nil, head + 1, n + 1\n"
    "    local ok, r = pcall(fut.result, fut, deadline and math.max(0, deadline - now()) or nil)\n"
    "    if ok then return n, r end\n"
    "    if r == 'interrupted' then error(r, 0) end -- Ctrl-C: fut is cancelled, <close> ends the rest\n"
    "    if not fut:done() then -- the wait timed out (there is a deadline)\n"
    "      fut:cancel()\n"
    "      error(string.format('pool:imap: timed out after %g s (item %d not finished)', timeout, n), 2)\n"
    "    end\n"
    "    if fut:cancelled() then error('pool:imap: item ' .. n .. ' was cancelled', 2) end\n"
    "    if type(r) == 'string' then r = 'pool:imap: item ' .. n .. ' failed: ' .. r end\n"
    "    error(r, 0)\n"
    "  end\n"
    "  local pending = setmetatable({}, {__close = function()\n"
    "    for k = head, tail do fs[k]:cancel() end\n"
    "    head = tail + 1\n"
    "  end})\n"
    "  return step, nil, nil, pending\n"
    "end\n";

void interp__lm_imap_register(lua_State *L, lua_CFunction now)
{
    luaL_getmetatable(L, LM_POOL_MT);
    lua_getfield(L, -1, "__index");
    if (luaL_loadbufferx(L, imap_source, sizeof imap_source - 1, "=interp_pool.imap", "t") !=
        LUA_OK)
        lua_error(L);
    lua_pushcfunction(L, now);
    lua_call(L, 1, 1);
    lua_setfield(L, -2, "imap");
    lua_pop(L, 2);
}
