# interp-pool map --json: JSON values in, JSON values out.
source "$DATA/common.sh"

cat > "$TMP/in.jsonl" <<'JSON'
1
2.5
"ab"
[1, 2, 3]
{"x": 1, "nested": {"y": [true, false, null]}}
null
true
-4
JSON
run_ip "$TMP/in.jsonl" map "$DATA/funcs.lua" double --json -w 2
expect_eq "exit status" 0 "$rc"
# object key order is the table's: compare parsed objects on their own
sed -n '1,4p;6,8p' "$TMP/out" > "$TMP/scalars"
expect_file "double" '2
5
"abab"
[2,4,6]
null
true
-8
' "$TMP/scalars"
line5=$(sed -n 5p "$TMP/out")
case "$line5" in *'"x":2'*) ;; *) fail "object: $line5" ;; esac
case "$line5" in *'"nested":{"y":[true,false]}'*) ;; *) fail "object: $line5" ;; esac

# integral JSON numbers that a double holds exactly (|n| <= 2^53) arrive as Lua integers,
# others as floats (cJSON keeps numbers as doubles)
printf '3\n3.5\n"s"\n{}\n[]\n9007199254740992\n1e300\n' > "$TMP/kinds"
run_ip "$TMP/kinds" map "$DATA/funcs.lua" kind --json
expect_file "kinds" '"integer"
"float"
"string"
"table"
"table"
"integer"
"float"
' "$TMP/out"
printf '[1,2,3]\n[0.5,0.25]\n' > "$TMP/lists"
run_ip "$TMP/lists" map "$DATA/funcs.lua" sum --json
expect_file "sum" '6
0.75
' "$TMP/out"

# several values become an array, none null; plain text input still works with --json output
printf '"kiwi"\n' > "$TMP/kiwi"
run_ip "$TMP/kiwi" map "$DATA/funcs.lua" several --json
expect_file "several" '["kiwi",4,2,true,null]
' "$TMP/out"
run_ip "$TMP/kiwi" map "$DATA/funcs.lua" nothing --json
expect_file "nothing" 'null
' "$TMP/out"
echo "json: ok"
