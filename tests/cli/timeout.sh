# --timeout: a line that runs past its time limit fails, the others go on. (The limit is the
# pool's task_timeout applied to every task, map chunks included.)
source "$DATA/common.sh"

cat > "$TMP/slow.lua" <<'LUA'
function maybe_spin(s) if s == "spin" then while true do end end return s end
LUA
printf 'a\nspin\nb\n' > "$TMP/spin"
run_ip "$TMP/spin" map "$TMP/slow.lua" maybe_spin --timeout 0.2 -w 2
expect_eq "exit status" 1 "$rc"
expect_file "timeout output" "a

b
" "$TMP/out"
grep -qi "^line 2: .*time" "$TMP/err" || fail "timeout: $(cat "$TMP/err")"
echo "timeout: ok"
