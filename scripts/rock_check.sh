#!/usr/bin/env bash
# CI stage "luarocks": install the Lua module the way Lua users do, from this checkout, into a
# scratch LuaRocks tree (HOME points at a fresh folder, so --local goes there), then require it
# from plain lua5.4 and run a map, then remove the rock and check that its module is gone.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
rocks() { HOME=$scratch luarocks --lua-version 5.4 "$@"; }
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
rocks make --local interp_pool-scm-1.rockspec >"$scratch/make.log" 2>&1 ||
  { cat "$scratch/make.log"; echo "rock_check: luarocks make failed" >&2; exit 1; }
mod=$(ls "$scratch"/.luarocks/lib/lua/5.4/interp_pool.so)
if readelf -d "$mod" | grep -q 'liblua'; then
  echo "rock_check: $mod links liblua (it must take Lua from the interpreter)" >&2; exit 1
fi
eval "$(rocks path --local)"
out=$(lua5.4 - <<'LUA'
local ip = require "interp_pool"
local where = package.searchpath("interp_pool", package.cpath)
local pool <close> = ip.new{workers = 2, init = "function sq(x) return x * x end"}
local r = pool:map("sq", {1, 2, 3, 4})
assert(#r == 4 and r[1] == 1 and r[4] == 16, "map gave the wrong results")
print("rock ok: " .. where)
LUA
)
echo "$out"
case $out in *"rock ok: $scratch/.luarocks/"*) ;; *) echo "rock_check: not loaded from the rock" >&2; exit 1 ;; esac
rocks list --porcelain | grep -q '^interp_pool' || { echo "rock_check: not listed" >&2; exit 1; }
rocks remove --local interp_pool >/dev/null
[ ! -e "$mod" ] || { echo "rock_check: $mod left after luarocks remove" >&2; exit 1; }
if rocks list --porcelain | grep -q '^interp_pool'; then
  echo "rock_check: still listed after luarocks remove" >&2; exit 1
fi
echo "rock_check: make, require + map, remove: ok"
