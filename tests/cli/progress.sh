# The progress line: drawn on stderr when it is a terminal (a pty made by script(1)), with a
# percentage and an ETA when stdin is a regular file; never drawn otherwise.
source "$DATA/common.sh"

seq 1 20000 > "$TMP/in"
# not a terminal: stderr stays empty
run_ip "$TMP/in" map "$DATA/funcs.lua" as_number
expect_eq "exit status" 0 "$rc"
[ ! -s "$TMP/err" ] || fail "progress drawn on a non-terminal: $(head -c 200 "$TMP/err")"

if ! command -v script > /dev/null; then
  echo "progress: script(1) missing, terminal case skipped"
  exit 0
fi
# a terminal: stdout to a file, stderr (the pty) captured by script
timeout 60 script -qec "'$IP' map '$DATA/funcs.lua' as_number < '$TMP/in' > '$TMP/out'" \
  "$TMP/typescript" > /dev/null
cmp -s "$TMP/in" "$TMP/out" || fail "results differ under a terminal"
tr '\r' '\n' < "$TMP/typescript" > "$TMP/lines"
grep -q "100% \[#*\] 20000 items" "$TMP/lines" || fail "no final progress line: $(tail -c 300 "$TMP/lines")"
grep -q "/s" "$TMP/lines" || fail "no rate"
# from a pipe the size is unknown: counts and elapsed time only
timeout 60 script -qec "cat '$TMP/in' | '$IP' map '$DATA/funcs.lua' as_number > '$TMP/out'" \
  "$TMP/typescript" > /dev/null
tr '\r' '\n' < "$TMP/typescript" > "$TMP/lines"
grep -q "^.*20000 items .*elapsed" "$TMP/lines" || fail "no pipe progress: $(tail -c 300 "$TMP/lines")"
echo "progress: ok"
