# Failing lines: the error on stderr with its line number, a placeholder on stdout, exit 1.
source "$DATA/common.sh"

printf 'good1\ngood2\nbad3\ngood4\nbad5\n' > "$TMP/in"
run_ip "$TMP/in" map "$DATA/funcs.lua" picky -w 2 -c 1
expect_eq "exit status" 1 "$rc"
expect_file "stdout keeps one line per input line" "good1
good2

good4

" "$TMP/out"
grep -q "^line 3: .*funcs.lua:[0-9]*: refusing 'bad3'" "$TMP/err" || fail "line 3: $(cat "$TMP/err")"
grep -q "^line 5: .*refusing 'bad5'" "$TMP/err" || fail "line 5: $(cat "$TMP/err")"
grep -q "stack traceback" "$TMP/err" || fail "no traceback: $(cat "$TMP/err")"
grep -q "in function 'picky'" "$TMP/err" || fail "traceback names picky: $(cat "$TMP/err")"
[ "$(grep -c '^line ' "$TMP/err")" -eq 2 ] || fail "two failures expected: $(cat "$TMP/err")"
# errors are reported in input order
[ "$(grep -o '^line [0-9]*' "$TMP/err" | tr '\n' ' ')" == "line 3 line 5 " ] || fail "order"

# invalid JSON lines fail in place, the others go on
printf '1\n{oops\n2\n\n3 4\n5\n' > "$TMP/badjson"
run_ip "$TMP/badjson" map "$DATA/funcs.lua" double --json
expect_eq "exit status" 1 "$rc"
expect_file "json placeholders" "2
null
4
null
null
10
" "$TMP/out"
grep -q "^line 2: invalid JSON" "$TMP/err" || fail "line 2: $(cat "$TMP/err")"
grep -q "^line 4: invalid JSON: empty line" "$TMP/err" || fail "line 4: $(cat "$TMP/err")"
grep -q "^line 5: invalid JSON: unexpected text" "$TMP/err" || fail "line 5: $(cat "$TMP/err")"

# many bad lines behind a slow item: still in order, nothing lost
{ echo '"slow"'; for i in $(seq 1 6000); do echo '{'; done; echo '7'; } > "$TMP/manybad"
run_ip "$TMP/manybad" map "$DATA/funcs.lua" double --json -w 2
expect_eq "exit status" 1 "$rc"
expect_eq "lines out" 6002 "$(wc -l < "$TMP/out")"
expect_eq "first" '"slowslow"' "$(head -1 "$TMP/out")"
expect_eq "last" '14' "$(tail -1 "$TMP/out")"
expect_eq "errors" 6000 "$(grep -c '^line ' "$TMP/err")"
expect_eq "last error" "line 6001: invalid JSON at column 1" "$(grep '^line ' "$TMP/err" | tail -1)"

# results that have no text form fail their line
printf 'x\n' > "$TMP/x"
run_ip "$TMP/x" map "$DATA/funcs.lua" cyclic
expect_eq "exit status" 1 "$rc"
grep -q "^line 1: cannot print the result: a table that contains itself" "$TMP/err" \
  || fail "cyclic: $(cat "$TMP/err")"

# memory limit
cat > "$TMP/hog.lua" <<'LUA'
function hog(s) local t = {} for i = 1, 1e8 do t[i] = s end return #t end
LUA
run_ip "$TMP/x" map "$TMP/hog.lua" hog --memory-limit 8M
expect_eq "exit status" 1 "$rc"
grep -qi "^line 1: .*memory" "$TMP/err" || fail "memory: $(cat "$TMP/err")"

# the sandbox refuses io
cat > "$TMP/sb.lua" <<'LUA'
function peek(s) return io.open(s) ~= nil end
LUA
printf '/etc/hostname\n' > "$TMP/path"
run_ip "$TMP/path" map "$TMP/sb.lua" peek --sandbox
expect_eq "exit status" 1 "$rc"
run_ip "$TMP/path" map "$TMP/sb.lua" peek
expect_eq "exit status" 0 "$rc"
echo "failing: ok"
