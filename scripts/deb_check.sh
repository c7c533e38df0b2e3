#!/usr/bin/env bash
# CI stage "deb": build the Debian packages with CPack (build/deb, prefix /usr, no tests), check
# their dependencies, unpack them with dpkg -x into a scratch root (no root rights, nothing
# installed on this machine), then use what was unpacked: the C consumer built against the
# packaged library four ways and the MPI library two ways under mpiexec
# (tests/install/run_test.cmake with PREFIX), the Lua module from lua5.4, and the interp-pool
# command.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
jobs=$(nproc)
cmake -S . -B build/deb -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
  -DINTERP_BUILD_TESTS=OFF -DINTERP_BUILD_BENCH=OFF -DINTERP_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build/deb -j"$jobs" >/dev/null
rm -f build/deb/*.deb
(cd build/deb && cpack -G DEB >cpack.log 2>&1) || { cat build/deb/cpack.log; exit 1; }

fail() { echo "deb_check: $*" >&2; exit 1; }
deb() { ls build/deb/"$1"_*.deb; }
needs() { # package dependency...
  local p=$1 d; d=$(dpkg-deb -f "$(deb "$p")" Depends)
  shift
  for want in "$@"; do
    case ", $d," in *", $want"[\ ,]*) ;; *) fail "$p lacks Depends $want: $d" ;; esac
  done
}
needs libinterp-pool0 liblua5.4-0 libc6
needs libinterp-pool-dev libinterp-pool0 liblua5.4-dev
needs lua-interp-pool lua5.4
needs interp-pool liblua5.4-0 libcjson1 libc6
needs libinterp-pool-mpi-dev libinterp-pool-dev libopenmpi-dev
dpkg-deb -c "$(deb libinterp-pool-mpi-dev)" | grep '/libinterp_pool_mpi.a$' >/dev/null || fail "libinterp-pool-mpi-dev has no library"
dpkg-deb -c "$(deb interp-pool)" | grep -q '/man1/interp-pool.1' || fail "interp-pool has no manual page"
if dpkg-deb -f "$(deb lua-interp-pool)" Depends | grep -q liblua; then
  fail "lua-interp-pool depends on liblua: the module must take Lua from the interpreter"
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
for p in libinterp-pool0 libinterp-pool-dev libinterp-pool-mpi-dev lua-interp-pool interp-pool; do
  dpkg -x "$(deb $p)" "$root"
done
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
cmake -DPREFIX="$root/usr" -DSRC="$src/tests/install" -DWORK="$root/work" -DCC="${CC:-cc}" \
  -P tests/install/run_test.cmake 2>&1

out=$(LUA_CPATH="$root/usr/lib/$multiarch/lua/5.4/?.so" lua5.4 -e '
  local ip = require "interp_pool"
  local pool <close> = ip.new{workers = 2, init = "function sq(x) return x * x end"}
  print(table.concat(pool:map("sq", {1, 2, 3}), " "))')
[ "$out" = "1 4 9" ] || fail "the packaged Lua module gave '$out'"

printf 'function up(s) return s:upper() end\n' >"$root/up.lua"
out=$(printf 'a\nb\n' | LD_LIBRARY_PATH="$root/usr/lib/$multiarch" "$root/usr/bin/interp-pool" map "$root/up.lua" up -w 2)
[ "$out" = "$(printf 'A\nB')" ] || fail "the packaged interp-pool gave '$out'"
"$root/usr/bin/interp-pool" --version | grep -q "^interp-pool $(sed -n 's/^#define INTERP_POOL_VERSION_STRING "\(.*\)"/\1/p' core/interp_pool.h)$" ||
  fail "interp-pool --version disagrees with the header"
echo "deb_check: $(cd build/deb && ls ./*.deb | xargs -n1 basename | tr '\n' ' ')unpacked and used: ok"
