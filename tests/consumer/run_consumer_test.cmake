# Installed-package tests for pacegc, run by ctest as `cmake -DSTEP=... -P run_consumer_test.cmake`
# (registered by tests/consumer/register.cmake).
#
# STEP=install       cmake --install the build into <BUILD_DIR>/consumer-test/prefix, then check the tree:
#                    include/ holds exactly pacegc/pacegc.h and pacegc/pacegc.hpp; the libraries, the CMake package
#                    and pacegc.pc are there; no installed package file names the source or build tree or mimalloc.
# STEP=find_package  configure and build tests/consumer against that prefix (CMAKE_PREFIX_PATH), check that the
#                    package came from the prefix, and run consumer_cpp, consumer_c and consumer_c_static (and
#                    consumer_malloc, linked with pacegc::malloc, when the drop-in allocator was installed).
# STEP=pkg_config    compile consumer.c with `pkg-config --cflags --libs pacegc` (shared) and with
#                    `pkg-config --static --cflags --libs pacegc` against libpacegc.a, and run both.
#
# Required: STEP SOURCE_DIR BUILD_DIR LIBDIR INCLUDEDIR VERSION C_COMPILER CXX_COMPILER GENERATOR
# Optional: CONFIG (build configuration)
cmake_minimum_required(VERSION 3.20)

foreach(_var IN ITEMS STEP SOURCE_DIR BUILD_DIR LIBDIR INCLUDEDIR VERSION C_COMPILER CXX_COMPILER GENERATOR)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer_test.cmake: -D${_var}=... is required")
  endif()
endforeach()

set(WORK_DIR "${BUILD_DIR}/consumer-test")
set(PREFIX "${WORK_DIR}/prefix")
set(PREFIX_LIBDIR "${PREFIX}/${LIBDIR}")
set(PREFIX_INCLUDEDIR "${PREFIX}/${INCLUDEDIR}")
set(CONSUMER_SOURCE_DIR "${SOURCE_DIR}/tests/consumer")
if(DEFINED CONFIG AND NOT CONFIG STREQUAL "")
  set(_config_args --config "${CONFIG}")
  set(_build_type "${CONFIG}")
else()
  set(_config_args "")
  set(_build_type "Release")
endif()
string(REGEX MATCH "^([0-9]+)\\.([0-9]+)" _ "${VERSION}")
set(VERSION_MAJOR "${CMAKE_MATCH_1}")
set(VERSION_MINOR "${CMAKE_MATCH_2}")

# run(<description> COMMAND <args...> [OUTPUT_VAR <var>] [EXPECT <substring>])
# Runs a command; on a non-zero exit (or when EXPECT is not in its stdout) prints everything and fails the test.
function(run what)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "OUTPUT_VAR;EXPECT" "COMMAND")
  execute_process(COMMAND ${arg_COMMAND}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc STREQUAL "0")
    string(JOIN " " cmdline ${arg_COMMAND})
    message(FATAL_ERROR "${what} failed (exit ${rc})\ncommand: ${cmdline}\n"
                        "--- stdout ---\n${out}\n--- stderr ---\n${err}")
  endif()
  if(DEFINED arg_EXPECT AND NOT out MATCHES "${arg_EXPECT}")
    message(FATAL_ERROR "${what}: output lacks '${arg_EXPECT}'\n--- stdout ---\n${out}\n--- stderr ---\n${err}")
  endif()
  if(DEFINED arg_OUTPUT_VAR)
    string(STRIP "${out}" out)
    set(${arg_OUTPUT_VAR} "${out}" PARENT_SCOPE)
  endif()
  if(NOT out STREQUAL "")
    message("${out}")
  endif()
  message(STATUS "${what}: ok")
endfunction()

function(require_file path)
  if(NOT EXISTS "${path}")
    message(FATAL_ERROR "install tree lacks ${path}")
  endif()
endfunction()

if(STEP STREQUAL "install")
  file(REMOVE_RECURSE "${WORK_DIR}")
  run("cmake --install into ${PREFIX}"
      COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}" ${_config_args})

  # (e) Public headers only: nothing under include/ but pacegc/pacegc.h and pacegc/pacegc.hpp.
  file(GLOB_RECURSE _installed LIST_DIRECTORIES true RELATIVE "${PREFIX_INCLUDEDIR}" "${PREFIX_INCLUDEDIR}/*")
  list(SORT _installed)
  set(_expected "pacegc;pacegc/pacegc.h;pacegc/pacegc.hpp")
  if(NOT _installed STREQUAL _expected)
    string(REPLACE ";" "\n  " _installed_lines "${_installed}")
    message(FATAL_ERROR "${PREFIX_INCLUDEDIR} must hold exactly pacegc/pacegc.h and pacegc/pacegc.hpp; "
                        "it holds:\n  ${_installed_lines}")
  endif()

  set(_cmakedir "${PREFIX_LIBDIR}/cmake/pacegc")
  foreach(_f IN ITEMS libpacegc.a libpacegc.so libpacegc.so.${VERSION_MAJOR} pkgconfig/pacegc.pc
                      cmake/pacegc/pacegcConfig.cmake cmake/pacegc/pacegcConfigVersion.cmake
                      cmake/pacegc/pacegcTargets.cmake)
    require_file("${PREFIX_LIBDIR}/${_f}")
  endforeach()

  # Installed package files must be relocatable (no source or build paths), and mimalloc must not be in either
  # link interface (the exported targets, the .pc file).
  file(GLOB _package_files "${_cmakedir}/*.cmake")
  file(GLOB _link_interface_files "${_cmakedir}/pacegcTargets*.cmake")
  list(APPEND _package_files "${PREFIX_LIBDIR}/pkgconfig/pacegc.pc")
  list(APPEND _link_interface_files "${PREFIX_LIBDIR}/pkgconfig/pacegc.pc")
  foreach(_f IN LISTS _package_files)
    set(_forbidden "${SOURCE_DIR}" "${BUILD_DIR}")
    if(_f IN_LIST _link_interface_files)
      list(APPEND _forbidden "mimalloc")
    endif()
    file(READ "${_f}" _text)
    foreach(_bad IN LISTS _forbidden)
      string(FIND "${_text}" "${_bad}" _pos)
      if(NOT _pos EQUAL -1)
        message(FATAL_ERROR "${_f} mentions '${_bad}'; installed package files must not")
      endif()
    endforeach()
  endforeach()

  # The shared library loads mimalloc with dlopen at run time; it must not be linked against it.
  file(GET_RUNTIME_DEPENDENCIES
       LIBRARIES "${PREFIX_LIBDIR}/libpacegc.so"
       RESOLVED_DEPENDENCIES_VAR _resolved
       UNRESOLVED_DEPENDENCIES_VAR _unresolved)
  foreach(_dep IN LISTS _resolved _unresolved)
    if(_dep MATCHES "mimalloc")
      message(FATAL_ERROR "libpacegc.so links ${_dep}; mimalloc must be loaded with dlopen, not linked")
    endif()
  endforeach()
  message(STATUS "install tree ${PREFIX}: ok")

elseif(STEP STREQUAL "find_package")
  require_file("${PREFIX_LIBDIR}/cmake/pacegc/pacegcConfig.cmake")
  set(_bin "${WORK_DIR}/find_package")
  file(REMOVE_RECURSE "${_bin}")
  run("configure tests/consumer against ${PREFIX}"
      COMMAND "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${_bin}" -G "${GENERATOR}"
              "-DCMAKE_BUILD_TYPE=${_build_type}"
              "-DCMAKE_C_COMPILER=${C_COMPILER}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
              "-DCMAKE_PREFIX_PATH=${PREFIX}"
              -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
  # Found the package just installed, not one elsewhere on the system.
  file(STRINGS "${_bin}/CMakeCache.txt" _found REGEX "^pacegc_DIR:")
  string(REGEX REPLACE "^pacegc_DIR:[A-Z]+=" "" _found "${_found}")
  file(REAL_PATH "${_found}" _found)
  file(REAL_PATH "${PREFIX_LIBDIR}/cmake/pacegc" _want)
  if(NOT _found STREQUAL _want)
    message(FATAL_ERROR "find_package(pacegc) used '${_found}', expected '${_want}'")
  endif()
  run("build tests/consumer" COMMAND "${CMAKE_COMMAND}" --build "${_bin}" ${_config_args})

  set(_exes consumer_cpp consumer_c consumer_c_static)
  if(EXISTS "${PREFIX_LIBDIR}/libpacegc-malloc.so")
    list(APPEND _exes consumer_malloc)  # pacegc::malloc, the drop-in allocator
  endif()
  foreach(_exe IN LISTS _exes)
    set(_path "${_bin}/${_exe}")
    if(NOT EXISTS "${_path}" AND DEFINED CONFIG AND EXISTS "${_bin}/${CONFIG}/${_exe}")
      set(_path "${_bin}/${CONFIG}/${_exe}")  # multi-config generators
    endif()
    string(REGEX REPLACE "_static$|_malloc$" "" _tag "${_exe}")
    if(_tag STREQUAL "consumer")
      set(_tag consumer_c)  # consumer_malloc is consumer.c
    endif()
    run("run ${_exe}" COMMAND "${_path}" EXPECT "${_tag}: OK")
  endforeach()

elseif(STEP STREQUAL "pkg_config")
  find_program(PKG_CONFIG_EXECUTABLE NAMES pkg-config pkgconf)
  if(NOT PKG_CONFIG_EXECUTABLE)
    message(FATAL_ERROR "pkg-config not found: install it (Debian package pkg-config; scripts/install-deps.sh)")
  endif()
  require_file("${PREFIX_LIBDIR}/pkgconfig/pacegc.pc")
  set(ENV{PKG_CONFIG_PATH} "${PREFIX_LIBDIR}/pkgconfig")
  set(_bin "${WORK_DIR}/pkg_config")
  file(REMOVE_RECURSE "${_bin}")
  file(MAKE_DIRECTORY "${_bin}")

  run("pkg-config --modversion pacegc" COMMAND "${PKG_CONFIG_EXECUTABLE}" --modversion pacegc OUTPUT_VAR _modversion)
  if(NOT _modversion STREQUAL VERSION)
    message(FATAL_ERROR "pkg-config reports pacegc ${_modversion}, the build is ${VERSION}")
  endif()
  run("pkg-config --variable=includedir pacegc"
      COMMAND "${PKG_CONFIG_EXECUTABLE}" --variable=includedir pacegc OUTPUT_VAR _pc_includedir)
  file(REAL_PATH "${_pc_includedir}" _pc_includedir)
  file(REAL_PATH "${PREFIX_INCLUDEDIR}" _want)
  if(NOT _pc_includedir STREQUAL _want)
    message(FATAL_ERROR "pacegc.pc resolves includedir to '${_pc_includedir}', expected '${_want}'")
  endif()

  set(_cflags -std=c11 -O2 -Wall -Wextra -Wpedantic -Werror
              -DCONSUMER_EXPECT_VERSION_MAJOR=${VERSION_MAJOR} -DCONSUMER_EXPECT_VERSION_MINOR=${VERSION_MINOR})

  # Shared: what `cc prog.c $(pkg-config --cflags --libs pacegc)` gives (rpath so the test needs no
  # LD_LIBRARY_PATH; an installed system copy would be found through the loader's paths instead).
  run("pkg-config --cflags --libs pacegc"
      COMMAND "${PKG_CONFIG_EXECUTABLE}" --cflags --libs pacegc OUTPUT_VAR _pc_flags)
  separate_arguments(_pc_flags UNIX_COMMAND "${_pc_flags}")
  run("compile consumer.c with pkg-config flags"
      COMMAND "${C_COMPILER}" ${_cflags} "${CONSUMER_SOURCE_DIR}/consumer.c" ${_pc_flags}
              "-Wl,-rpath,${PREFIX_LIBDIR}" -o "${_bin}/consumer_c_pkgconfig")
  run("run consumer_c_pkgconfig" COMMAND "${_bin}/consumer_c_pkgconfig" EXPECT "consumer_c: OK")

  # Static: `pkg-config --static` adds Libs.private; -lpacegc is pinned to libpacegc.a so the check is that those
  # flags suffice to link the archive into a C program.
  run("pkg-config --static --cflags --libs pacegc"
      COMMAND "${PKG_CONFIG_EXECUTABLE}" --static --cflags --libs pacegc OUTPUT_VAR _pc_static_flags)
  separate_arguments(_pc_static_flags UNIX_COMMAND "${_pc_static_flags}")
  list(FIND _pc_static_flags "-lpacegc" _pos)
  if(_pos EQUAL -1)
    message(FATAL_ERROR "pkg-config --static --libs pacegc lacks -lpacegc: ${_pc_static_flags}")
  endif()
  list(TRANSFORM _pc_static_flags REPLACE "^-lpacegc$" "-l:libpacegc.a")
  run("compile consumer.c with pkg-config --static flags"
      COMMAND "${C_COMPILER}" ${_cflags} "${CONSUMER_SOURCE_DIR}/consumer.c" ${_pc_static_flags}
              -o "${_bin}/consumer_c_pkgconfig_static")
  run("run consumer_c_pkgconfig_static" COMMAND "${_bin}/consumer_c_pkgconfig_static" EXPECT "consumer_c: OK")

else()
  message(FATAL_ERROR "run_consumer_test.cmake: unknown STEP '${STEP}' (install, find_package, pkg_config)")
endif()
