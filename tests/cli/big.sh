# 10^5 lines stream through with bounded memory: the peak RSS of a run over 10^5 long lines
# stays within a small margin of a run over 10^4 (holding the input, the results or one
# message per line would add tens of MB).
source "$DATA/common.sh"

pad=$(printf '%0100d' 0)
awk -v pad="$pad" 'BEGIN { for (i = 1; i <= 100000; i++) print i "-" pad }' > "$TMP/big"
head -n 10000 "$TMP/big" > "$TMP/small"
cat > "$TMP/f.lua" <<'LUA'
function key(s) return (s:match("^(%d+)-")) .. ":" .. #s end
LUA

peak_kb() { # INPUT -> peak RSS of the run in KiB (0 if /usr/bin/time is missing)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f '%M' -o "$TMP/rss" "$IP" map "$TMP/f.lua" key -w 2 < "$1" > "$TMP/out"
    cat "$TMP/rss"
  else
    "$IP" map "$TMP/f.lua" key -w 2 < "$1" > "$TMP/out"
    echo 0
  fi
}

small=$(peak_kb "$TMP/small")
expect_eq "small lines out" 10000 "$(wc -l < "$TMP/out")"
big=$(peak_kb "$TMP/big")
expect_eq "big lines out" 100000 "$(wc -l < "$TMP/out")"
expect_eq "first" "1:$((2 + 100))" "$(head -1 "$TMP/out")"
expect_eq "last" "100000:$((7 + 100))" "$(tail -1 "$TMP/out")"
# every line, in order
awk -F: '$1 != NR { print "line " NR ": " $0; bad = 1; exit } END { exit bad }' "$TMP/out" \
  || fail "results out of order"
echo "peak RSS: $small KiB for 10^4 lines, $big KiB for 10^5 lines (10.5 MB of input)"
# Sanitizer runtimes keep freed memory in quarantine: the bound means nothing there.
if [ -z "${INTERP_SANITIZE:-}" ] && [ "$small" -gt 0 ]; then
  [ "$big" -le $((small + 4096)) ] || fail "memory grows with the input: $small KiB -> $big KiB"
fi
echo "big: ok"
