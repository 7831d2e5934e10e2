# pacegc — install rules, included at the end of the top-level CMakeLists.txt.
#
# Installs exactly:
#   <includedir>/pacegc/pacegc.h, pacegc.hpp     the public headers (include/pacegc/*.h, *.hpp), nothing internal
#   <libdir>/libpacegc.a                         pacegc_static
#   <libdir>/libpacegc.so{,.0,.<version>}        pacegc_shared (SOVERSION 0)
#   <libdir>/libpacegc-malloc.so{,.0,.<v>}       the drop-in allocator (pacegc::malloc; not built with a sanitizer),
#                                                  with <libdir>/pkgconfig/pacegc-malloc.pc
#   <libdir>/cmake/pacegc/                       CMake package: find_package(pacegc) gives the imported targets
#                                                  pacegc::pacegc (shared) and pacegc::pacegc_static
#   <libdir>/pkgconfig/pacegc.pc                 pkg-config: `pkg-config --cflags --libs pacegc`
#   <bindir>/pacegc-oomsim, pacegc-oomsim-worker the OOM simulator and its pacegc worker, when the benchmarks are
#                                                built (their install rules are in bench/oomsim/CMakeLists.txt)
#   <bindir>/pacegc-http-cache                   the HTTP cache example, when cpp-httplib is found (its install
#                                                rule is in examples/CMakeLists.txt)
#
# Both the CMake package and the .pc file are relocatable: they locate the prefix from their own path, so a tree
# installed with `cmake --install build --prefix DIR` (as the consumer test does) or moved later still works.
# mimalloc is loaded with dlopen at run time and appears in neither link interface; Debian's libmimalloc2.0 is a
# run-time dependency only.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(PACEGC_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/pacegc"
    CACHE STRING "Install directory of pacegc's CMake package files, relative to the prefix")
mark_as_advanced(PACEGC_INSTALL_CMAKEDIR)

# ---- Public headers ---------------------------------------------------------------------------------------------
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/pacegc"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
        FILES_MATCHING PATTERN "*.h" PATTERN "*.hpp")

# ---- Libraries and exported targets -----------------------------------------------------------------------------
# In the package the shared library is pacegc::pacegc (the default a consumer should link) and the static one
# pacegc::pacegc_static: the same names as the in-tree ALIAS targets, so a consumer's CMake code is identical
# whether it uses pacegc through add_subdirectory or find_package.
set_target_properties(pacegc_shared PROPERTIES EXPORT_NAME pacegc)
set_target_properties(pacegc_static PROPERTIES EXPORT_NAME pacegc_static)

# pacegc_options (the project-wide warning/sanitizer/verify flags) is a build-time detail and must reach the
# libraries as $<BUILD_INTERFACE:pacegc_options>. Linked bare, even PRIVATE, it lands in the static library's
# link interface ($<LINK_ONLY:pacegc_options>) and install(EXPORT) would fail; in that case export it too (an
# INTERFACE target installs no files; consumers of the static library then get only its link options) and say so.
set(_pacegc_export_targets pacegc_static pacegc_shared)
if(PACEGC_BUILD_DROP_IN)
  list(APPEND _pacegc_export_targets pacegc_malloc_shared)  # pacegc::malloc
endif()
foreach(_pacegc_lib IN ITEMS pacegc_static pacegc_shared)
  foreach(_pacegc_prop IN ITEMS LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
    get_target_property(_pacegc_deps ${_pacegc_lib} ${_pacegc_prop})
    if(_pacegc_deps AND ("pacegc_options" IN_LIST _pacegc_deps OR "$<LINK_ONLY:pacegc_options>" IN_LIST _pacegc_deps))
      if(NOT "pacegc_options" IN_LIST _pacegc_export_targets)
        list(APPEND _pacegc_export_targets pacegc_options)
        message(AUTHOR_WARNING "${_pacegc_lib} links pacegc_options directly, so it is exported as "
                "pacegc::pacegc_options. Link it as $<BUILD_INTERFACE:pacegc_options> to keep it out of the package.")
      endif()
    endif()
  endforeach()
endforeach()

install(TARGETS ${_pacegc_export_targets}
        EXPORT pacegcTargets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}"
        INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")

install(EXPORT pacegcTargets
        NAMESPACE pacegc::
        FILE pacegcTargets.cmake
        DESTINATION "${PACEGC_INSTALL_CMAKEDIR}")

configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/pacegcConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/cmake/pacegcConfig.cmake"
  INSTALL_DESTINATION "${PACEGC_INSTALL_CMAKEDIR}")
# 0.x releases are compatible with each other under SameMajorVersion, matching SOVERSION 0.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/cmake/pacegcConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMajorVersion)
install(FILES "${PROJECT_BINARY_DIR}/cmake/pacegcConfig.cmake"
              "${PROJECT_BINARY_DIR}/cmake/pacegcConfigVersion.cmake"
        DESTINATION "${PACEGC_INSTALL_CMAKEDIR}")

# ---- pkg-config -------------------------------------------------------------------------------------------------
# prefix is derived from ${pcfiledir} (the directory holding the .pc file, supported by pkg-config and pkgconf)
# unless a directory was configured as an absolute path, which then is used as is.
file(RELATIVE_PATH _pacegc_pc_to_prefix "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig" "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" _pacegc_pc_to_prefix "${_pacegc_pc_to_prefix}")
set(PACEGC_PC_PREFIX "\${pcfiledir}/${_pacegc_pc_to_prefix}")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(PACEGC_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(PACEGC_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(PACEGC_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(PACEGC_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

# Libs.private serves static linking (pkg-config --static): threads, dlopen, and the C++ runtime when the library
# has C++ sources (a C program linking libpacegc.a with the C driver would not get libstdc++ otherwise).
set(PACEGC_PC_LIBS_PRIVATE "-pthread")
foreach(_pacegc_lib IN LISTS CMAKE_DL_LIBS)
  string(APPEND PACEGC_PC_LIBS_PRIVATE " -l${_pacegc_lib}")
endforeach()
set(_pacegc_has_cxx OFF)
foreach(_pacegc_layer IN LISTS PACEGC_LAYERS)  # the libraries are made of these layers' objects (layers.cmake)
  get_target_property(_pacegc_sources pacegc_${_pacegc_layer} SOURCES)
  foreach(_pacegc_src IN LISTS _pacegc_sources)
    if(_pacegc_src MATCHES "\\.(cc|cpp|cxx|c\\+\\+|C)$")
      set(_pacegc_has_cxx ON)
    endif()
  endforeach()
endforeach()
if(_pacegc_has_cxx)
  string(APPEND PACEGC_PC_LIBS_PRIVATE " -lstdc++ -lm")
endif()

configure_file("${PROJECT_SOURCE_DIR}/cmake/pacegc.pc.in" "${PROJECT_BINARY_DIR}/cmake/pacegc.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/cmake/pacegc.pc" DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(PACEGC_BUILD_DROP_IN)
  configure_file("${PROJECT_SOURCE_DIR}/cmake/pacegc-malloc.pc.in" "${PROJECT_BINARY_DIR}/cmake/pacegc-malloc.pc" @ONLY)
  install(FILES "${PROJECT_BINARY_DIR}/cmake/pacegc-malloc.pc" DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
endif()

unset(_pacegc_export_targets)
unset(_pacegc_deps)
unset(_pacegc_pc_to_prefix)
unset(_pacegc_sources)
unset(_pacegc_layer)
unset(_pacegc_has_cxx)
