# Usage errors exit 2 with a clear message; --help exits 0.
source "$DATA/common.sh"

expect_status() { # STATUS PATTERN ARGS...
  local want=$1 pat=$2; shift 2
  set +e
  "$IP" "$@" < /dev/null > "$TMP/out" 2> "$TMP/err"
  local got=$?
  set -e
  expect_eq "status of: $*" "$want" "$got"
  grep -q -- "$pat" "$TMP/err" "$TMP/out" || fail "'$pat' not in output of: $* ($(cat "$TMP/err"))"
}
expect_status 2 "Usage: interp-pool COMMAND"
expect_status 0 "Usage: interp-pool COMMAND" --help
expect_status 0 "Usage: interp-pool map" map --help
expect_status 0 "Usage: interp-pool run" run --help
expect_status 0 "Usage: interp-pool map" help map
expect_status 0 "interp-pool 0" --version
expect_status 2 "unknown command 'frobnicate'" frobnicate
expect_status 2 "expected SCRIPT and FUNC" map
expect_status 2 "expected SCRIPT and FUNC" map "$DATA/funcs.lua"
expect_status 2 "too many arguments" map "$DATA/funcs.lua" upper extra
expect_status 2 "cannot read" map /nonexistent.lua upper
expect_status 2 "defines no global function 'nope'" map "$DATA/funcs.lua" nope
# ranges are the library's (its texts); the CLI only parses
expect_status 2 "^interp-pool map: workers must be from 0 (the online CPUs) to 4096$" map "$DATA/funcs.lua" upper --workers 4097
expect_status 2 "^interp-pool map: workers must be from 0 (the online CPUs) to 4096$" map "$DATA/funcs.lua" upper --workers -1
expect_status 2 "--workers: expected an integer, got 'x'" map "$DATA/funcs.lua" upper --workers x
expect_status 2 "--workers: expected an integer" map "$DATA/funcs.lua" upper --workers 99999999999
expect_status 2 "--chunksize: expected a positive integer" map "$DATA/funcs.lua" upper --chunksize -1
expect_status 2 "^interp-pool map: --chunksize: chunksize must be at most 1048576 (INTERP_MAP_MAX_CHUNKSIZE)$" map "$DATA/funcs.lua" upper --chunksize 1048577
expect_status 2 "timeout" map "$DATA/funcs.lua" upper --timeout abc
expect_status 2 "memory-limit" map "$DATA/funcs.lua" upper --memory-limit 12Q
expect_status 2 "unknown option" map "$DATA/funcs.lua" upper --frob
expect_status 2 "needs a value" map "$DATA/funcs.lua" upper --workers
printf 'function f( end\n' > "$TMP/broken.lua"
expect_status 2 "cannot load" map "$TMP/broken.lua" f
expect_status 2 "expected SCRIPT" run
echo "usage: ok"
