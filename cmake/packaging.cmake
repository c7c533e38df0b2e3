# Debian packages with CPack: `cpack -G DEB` in a build configured with
# -DCMAKE_INSTALL_PREFIX=/usr (scripts/deb_check.sh does it). One package per install
# component; dpkg-shlibdeps finds the shared libraries each one needs (liblua5.4-0, libcjson1,
# libc6), and the dependencies between our own packages are written here.
set(CPACK_PACKAGE_NAME interp-pool)
set(CPACK_PACKAGE_VENDOR "The interp_pool authors")
set(CPACK_PACKAGE_CONTACT "The interp_pool authors <interp-pool@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Parallel isolated Lua 5.4 interpreters in one process")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_COMPONENTS_ALL lib dev lua cli)
if(TARGET interp_pool_mpi) # built when MPI is found (mpi/)
  list(APPEND CPACK_COMPONENTS_ALL mpi)
endif()
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.invalid/interp_pool")
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)

set(CPACK_DEBIAN_LIB_PACKAGE_NAME libinterp-pool0)
set(CPACK_COMPONENT_LIB_DESCRIPTION
  "Parallel isolated Lua 5.4 interpreters for C hosts (shared library)\n A pool of worker threads, each owning one isolated Lua 5.4 state; values are copied\n between states as MessagePack.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libinterp-pool-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "libinterp-pool0 (= ${PROJECT_VERSION}-1), liblua5.4-dev, pkg-config")
set(CPACK_COMPONENT_DEV_DESCRIPTION
  "Parallel isolated Lua 5.4 interpreters for C hosts (development files)\n Headers, the static library, the CMake package and the pkg-config files.")

set(CPACK_DEBIAN_MPI_PACKAGE_NAME libinterp-pool-mpi-dev)
set(CPACK_DEBIAN_MPI_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_MPI_PACKAGE_DEPENDS
  "libinterp-pool-dev (= ${PROJECT_VERSION}-1), libopenmpi-dev, pkg-config")
set(CPACK_COMPONENT_MPI_DESCRIPTION
  "interp_pool across the ranks of an MPI job (development files)\n The interp_pool_mpi static library and header: the same submit, futures and map over\n the ranks of an Open MPI job (mpiexec), with its CMake package and pkg-config file.")

set(CPACK_DEBIAN_LUA_PACKAGE_NAME lua-interp-pool)
set(CPACK_DEBIAN_LUA_PACKAGE_SECTION interpreters)
set(CPACK_DEBIAN_LUA_PACKAGE_DEPENDS "lua5.4")
set(CPACK_COMPONENT_LUA_DESCRIPTION
  "Parallel isolated Lua 5.4 states for lua5.4 scripts\n The interp_pool module: pool:map, submit and futures, channels, deadlines, a sandbox.")

set(CPACK_DEBIAN_CLI_PACKAGE_NAME interp-pool)
set(CPACK_DEBIAN_CLI_PACKAGE_SECTION utils)
set(CPACK_COMPONENT_CLI_DESCRIPTION
  "Run Lua code in parallel over lines of input\n interp-pool map calls a Lua function on every line of stdin on a pool of isolated\n Lua 5.4 states; interp-pool run runs a script with the module preloaded.")
include(CPack)
