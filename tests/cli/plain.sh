# interp-pool map on plain text lines: strings, numbers, tables, several values, order.
source "$DATA/common.sh"

run_ip "$DATA/words.txt" map "$DATA/funcs.lua" upper --workers 2
expect_eq "exit status" 0 "$rc"
expect_file "upper" "APPLE
BANANA
CHERRY

A LINE WITH SPACES
üNïCöDé
" "$TMP/out"
[ ! -s "$TMP/err" ] || fail "stderr not empty: $(cat "$TMP/err")"

run_ip "$DATA/words.txt" map "$DATA/funcs.lua" length -w 2 -c 1
expect_file "length" "5
6
6
0
18
11
" "$TMP/out"

printf '1\n2.5\n1e300\n-0.0\nx\n7.0\n' > "$TMP/numbers"
run_ip "$TMP/numbers" map "$DATA/funcs.lua" as_number
expect_eq "exit status" 0 "$rc"
expect_file "numbers as Lua prints them" "1
2.5
1e+300
-0.0
nil
7.0
" "$TMP/out"

printf 'kiwi\n' > "$TMP/one"
run_ip "$TMP/one" map "$DATA/funcs.lua" record
expect_eq "exit status" 0 "$rc"
grep -q '"word":"kiwi"' "$TMP/out" || fail "record: $(cat "$TMP/out")"
grep -q '"len":4' "$TMP/out" || fail "record: $(cat "$TMP/out")"
grep -q '"vowels":2' "$TMP/out" || fail "record: $(cat "$TMP/out")"

run_ip "$TMP/one" map "$DATA/funcs.lua" several
expect_file "several values, tab-separated" "kiwi	4	2.0	true	nil
" "$TMP/out"
run_ip "$TMP/one" map "$DATA/funcs.lua" nothing
expect_file "no values" "
" "$TMP/out"

# shared subtables are printed in full at each place
run_ip "$TMP/one" map "$DATA/funcs.lua" shared
expect_eq "exit status" 0 "$rc"
grep -q '"a":\["kiwi","kiwi"\]' "$TMP/out" || fail "shared: $(cat "$TMP/out")"
grep -q '"list":\[\["kiwi","kiwi"\],\["kiwi","kiwi"\]\]' "$TMP/out" || fail "shared: $(cat "$TMP/out")"

# print() in the script goes to stderr, never into the results
run_ip "$TMP/one" map "$DATA/funcs.lua" chatty
expect_file "chatty stdout" "kiwi
" "$TMP/out"
grep -q '^seen kiwi$' "$TMP/err" || fail "print: $(cat "$TMP/err")"

# order is kept over many lines and chunks
seq 1 5000 > "$TMP/seq"
run_ip "$TMP/seq" map "$DATA/funcs.lua" as_number -w 2 -c 7
cmp -s "$TMP/seq" "$TMP/out" || fail "5000 lines out of order"

# empty input, CRLF line ends
run_ip /dev/null map "$DATA/funcs.lua" upper
expect_eq "empty input" 0 "$rc"
[ ! -s "$TMP/out" ] || fail "empty input wrote output"
printf 'ab\r\ncd\r\n' > "$TMP/crlf"
run_ip "$TMP/crlf" map "$DATA/funcs.lua" upper
expect_file "CRLF" "AB
CD
" "$TMP/out"
# any bytes: a NUL inside a line, a line of 1 MB, no newline at the end
printf 'a\0b\n' > "$TMP/nul"
run_ip "$TMP/nul" map "$DATA/funcs.lua" upper
cmp -s <(printf 'A\0B\n') "$TMP/out" || fail "NUL byte: $(od -c "$TMP/out" | head -2)"
head -c 1048576 /dev/zero | tr '\0' 'x' > "$TMP/long"
run_ip "$TMP/long" map "$DATA/funcs.lua" length
expect_file "long line without newline" "1048576
" "$TMP/out"
echo "plain: ok"
