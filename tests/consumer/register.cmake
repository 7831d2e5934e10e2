# Registers the installed-package consumer tests (included by the top-level CMakeLists.txt after
# add_subdirectory(tests)). Each test runs tests/consumer/run_consumer_test.cmake with one STEP:
#   consumer_install       install this build into <build>/consumer-test/prefix and check the tree
#   consumer_find_package  build tests/consumer with find_package(pacegc) against it and run the programs
#   consumer_pkg_config    build consumer.c with pkg-config (shared and --static) against it and run it
# The last two need the first (a ctest fixture), so `ctest -R consumer_pkg_config` runs the install first.
include(GNUInstallDirs)

if(PACEGC_SANITIZE)
  # A sanitized library is never installed, and its programs would need the sanitizer runtime to link.
  message(STATUS "pacegc: consumer tests not registered (PACEGC_SANITIZE=${PACEGC_SANITIZE})")
elseif(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  # Installing with --prefix would still write into those absolute directories, outside the test's prefix.
  message(STATUS "pacegc: consumer tests not registered (absolute CMAKE_INSTALL_LIBDIR or CMAKE_INSTALL_INCLUDEDIR)")
else()
  foreach(_pacegc_step IN ITEMS install find_package pkg_config)
    add_test(NAME consumer_${_pacegc_step}
             COMMAND "${CMAKE_COMMAND}"
                     "-DSTEP=${_pacegc_step}"
                     "-DSOURCE_DIR=${PROJECT_SOURCE_DIR}"
                     "-DBUILD_DIR=${PROJECT_BINARY_DIR}"
                     "-DCONFIG=$<CONFIG>"
                     "-DLIBDIR=${CMAKE_INSTALL_LIBDIR}"
                     "-DINCLUDEDIR=${CMAKE_INSTALL_INCLUDEDIR}"
                     "-DVERSION=${PROJECT_VERSION}"
                     "-DC_COMPILER=${CMAKE_C_COMPILER}"
                     "-DCXX_COMPILER=${CMAKE_CXX_COMPILER}"
                     "-DGENERATOR=${CMAKE_GENERATOR}"
                     -P "${CMAKE_CURRENT_LIST_DIR}/run_consumer_test.cmake")
    set_tests_properties(consumer_${_pacegc_step} PROPERTIES LABELS consumer TIMEOUT 600)
  endforeach()
  set_tests_properties(consumer_install PROPERTIES FIXTURES_SETUP pacegc_installed)
  set_tests_properties(consumer_find_package consumer_pkg_config PROPERTIES FIXTURES_REQUIRED pacegc_installed)
  unset(_pacegc_step)
endif()
