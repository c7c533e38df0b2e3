# interp-pool run: the module preloaded, arg and ... set, errors and os.exit reported.
source "$DATA/common.sh"

cat > "$TMP/script.lua" <<'LUA'
local ip = require "interp_pool"
local n = select("#", ...)
assert(n == 2 and ... == "one" and select(2, ...) == "two")
assert(arg[0]:match("script.lua$") and arg[1] == "one" and arg[2] == "two")
local pool <close> = ip.new{workers = 2}
local out = pool:map(function(x) return x + 1 end, {1, 2, 3})
print(out[1] + out[2] + out[3])
LUA
run_ip /dev/null run "$TMP/script.lua" one two
expect_eq "exit status" 0 "$rc"
expect_file "stdout" "9
" "$TMP/out"

printf 'local x = nil\nx.field = 1\n' > "$TMP/err.lua"
run_ip /dev/null run "$TMP/err.lua"
expect_eq "exit status of an error" 1 "$rc"
grep -q "err.lua:2: attempt to index a nil value" "$TMP/err" || fail "$(cat "$TMP/err")"
grep -q "stack traceback" "$TMP/err" || fail "no traceback: $(cat "$TMP/err")"

printf 'os.exit(7)\n' > "$TMP/exit.lua"
run_ip /dev/null run "$TMP/exit.lua"
expect_eq "os.exit status" 7 "$rc"

printf 'print(require("interp_pool")._VERSION)\n' > "$TMP/stdin.lua"
run_ip "$TMP/stdin.lua" run -
expect_eq "script from stdin" 0 "$rc"
grep -q "^interp_pool " "$TMP/out" || fail "$(cat "$TMP/out")"

run_ip /dev/null run "$TMP/missing.lua"
expect_eq "missing script" 1 "$rc"
grep -q "cannot open" "$TMP/err" || fail "$(cat "$TMP/err")"
echo "run: ok"
