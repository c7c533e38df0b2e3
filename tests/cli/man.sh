# The manual page interp-pool(1), made from cli/README.md, agrees with the command: it renders
# without warnings, carries the version --version prints, and names every option of --help.
source "$DATA/common.sh"
page="$(dirname "$IP")/interp-pool.1"
[ -f "$page" ] || fail "no manual page at $page"
version=$("$IP" --version)
expect_eq "--version" "interp-pool $(sed -n 's/^#define INTERP_POOL_VERSION_STRING "\(.*\)"$/\1/p' "$DATA/../../../core/interp_pool.h")" "$version"
head -1 "$page" | grep -qF "\"$version\"" || fail "the page's version: $(head -1 "$page"), --version: $version"
if command -v groff > /dev/null; then
  warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
  [ -z "$warnings" ] || fail "groff: $warnings"
  text=$(MANWIDTH=200 man -l "$page" 2> /dev/null || groff -man -Tutf8 "$page")
else
  text=$(cat "$page")
fi
# every option --help lists (short and long), for the command and for map and run
for cmd in "" map run; do
  help=$("$IP" $cmd --help)
  for opt in $(grep -oE '(^|[ ,])--?[a-z][a-z-]*' <<< "$help" | tr -d ' ,' | sort -u); do
    grep -qF -- "$opt" <<< "$text" || fail "interp-pool $cmd --help lists $opt; the manual page does not"
  done
done
for section in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" EXAMPLES "SEE ALSO"; do
  grep -q "^$section" <<< "$text" || fail "the manual page lacks $section"
done
echo "man: ok"
