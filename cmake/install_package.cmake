# interp_install_package(NAME COMPONENT DEPENDENCIES): install the CMake package NAME for
# find_package(NAME): its export set NAMETargets (namespace interp_pool::), NAMEConfig.cmake
# (running the find_dependency lines given in DEPENDENCIES first) and NAMEConfigVersion.cmake
# (same major version), all in LIBDIR/cmake/NAME as install component COMPONENT.
include(CMakePackageConfigHelpers)
function(interp_install_package name component dependencies)
  set(dir ${CMAKE_INSTALL_LIBDIR}/cmake/${name})
  install(EXPORT ${name}Targets NAMESPACE interp_pool:: DESTINATION ${dir}
    COMPONENT ${component})
  file(WRITE ${PROJECT_BINARY_DIR}/${name}Config.cmake.in
    "@PACKAGE_INIT@\ninclude(CMakeFindDependencyMacro)\n${dependencies}"
    "include(\"\${CMAKE_CURRENT_LIST_DIR}/${name}Targets.cmake\")\n")
  configure_package_config_file(${PROJECT_BINARY_DIR}/${name}Config.cmake.in
    ${PROJECT_BINARY_DIR}/${name}Config.cmake INSTALL_DESTINATION ${dir})
  write_basic_package_version_file(${PROJECT_BINARY_DIR}/${name}ConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
  install(FILES ${PROJECT_BINARY_DIR}/${name}Config.cmake
    ${PROJECT_BINARY_DIR}/${name}ConfigVersion.cmake DESTINATION ${dir} COMPONENT ${component})
endfunction()
