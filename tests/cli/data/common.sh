# Helpers for tests/cli/*.sh: IP (the command), DATA (this folder) come from ctest.
set -euo pipefail
: "${IP:?IP must name the interp-pool binary}" "${DATA:?DATA must name tests/cli/data}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect_eq WHAT EXPECTED ACTUAL
expect_eq() { [ "$2" == "$3" ] || fail "$1: expected [$2], got [$3]"; }
# expect_file WHAT EXPECTED_TEXT FILE
expect_file() {
  printf '%s' "$2" > "$TMP/expected"
  diff -u "$TMP/expected" "$3" >&2 || fail "$1: output differs"
}
# run_ip STDIN_FILE ARGS...: sets rc, out ($TMP/out), err ($TMP/err). A run that hangs is
# killed after 60 s and fails the test (rc 124) rather than stalling ctest.
run_ip() {
  local input=$1; shift
  set +e
  timeout 60 "$IP" "$@" < "$input" > "$TMP/out" 2> "$TMP/err"
  rc=$?
  set -e
  [ "$rc" -ne 124 ] || fail "interp-pool $* did not end within 60 s"
}
