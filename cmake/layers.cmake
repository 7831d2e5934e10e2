# pacegc — the library, built from one OBJECT library per layer (docs/ARCHITECTURE.md, "Layers"). Included by the
# top-level CMakeLists.txt.
#
#   layer (folder)  what it is                                         may include, besides its own folder
#   base/           os, check, meta, hardcap: what gc/ and metrics/ both need   nothing
#   pacer/          policy, pure; config.h holds the settings' parsers  nothing
#   settings/       the settings table: the library's one getenv       pacer, base
#   metrics/        the go-metrics registry and exposition             settings, pacer, base, public headers
#   gc/             mechanism: the heap and the collector              metrics, settings, pacer, base, public headers
#   malloc/         the drop-in allocator (libpacegc-malloc.so only)   gc and everything below, public headers
#
# The arrows are enforced by the compiler, not by review: each layer compiles against an include root of its own,
# ${PROJECT_BINARY_DIR}/layers/<layer>/, holding a symbolic link to its own folder and to each folder it may use and
# nothing else. An #include "gc/heap.h" in metrics/ therefore fails with "No such file or directory", and a relative
# include ("../gc/heap.h") is refused at configure time. The tests in tests/layering/ check that a forbidden include
# fails and an allowed one compiles.
#
# Each source is compiled once (position-independent, hidden visibility) and the objects of all layers make up both
# libpacegc.a (pacegc_static) and libpacegc.so (pacegc_shared).

include(GNUInstallDirs)

# pacegc_layer(<name> SOURCES <files...> [USES <layers...>] [PUBLIC_API])
#   Defines the OBJECT library pacegc_<name> from <name>/<files>; USES lists the layers its code (and the headers it
#   includes) may include; PUBLIC_API adds include/ (include/pacegc/*.h).
set(PACEGC_LAYERS "")
function(pacegc_layer name)
  cmake_parse_arguments(L "PUBLIC_API" "" "SOURCES;USES" ${ARGN})
  set(root "${PROJECT_BINARY_DIR}/layers/${name}")
  file(REMOVE_RECURSE "${root}")
  file(MAKE_DIRECTORY "${root}")
  foreach(dir IN ITEMS ${name} ${L_USES})
    if(NOT dir IN_LIST PACEGC_LAYERS AND NOT dir STREQUAL name)
      message(FATAL_ERROR "layer ${name} uses ${dir}, which is not defined before it (arrows point down only)")
    endif()
    file(CREATE_LINK "${PROJECT_SOURCE_DIR}/${dir}" "${root}/${dir}" SYMBOLIC)
  endforeach()
  list(TRANSFORM L_SOURCES PREPEND "${PROJECT_SOURCE_DIR}/${name}/")
  add_library(pacegc_${name} OBJECT ${L_SOURCES})
  set_target_properties(pacegc_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON CXX_VISIBILITY_PRESET hidden
                        VISIBILITY_INLINES_HIDDEN ON)
  target_include_directories(pacegc_${name} PRIVATE "${root}")
  if(L_PUBLIC_API)
    target_include_directories(pacegc_${name} PRIVATE "${PROJECT_SOURCE_DIR}/include")
  endif()
  target_link_libraries(pacegc_${name} PRIVATE pacegc_options Threads::Threads)
  list(APPEND PACEGC_LAYERS ${name})
  set(PACEGC_LAYERS "${PACEGC_LAYERS}" PARENT_SCOPE)
endfunction()

# A relative include ("../gc/heap.h") would step around the include roots: refused at configure time.
foreach(_pacegc_dir IN ITEMS base pacer settings metrics gc malloc)
  file(GLOB _pacegc_files "${PROJECT_SOURCE_DIR}/${_pacegc_dir}/*.h" "${PROJECT_SOURCE_DIR}/${_pacegc_dir}/*.cc")
  foreach(_pacegc_file IN LISTS _pacegc_files)
    file(STRINGS "${_pacegc_file}" _pacegc_relative REGEX "^[ \t]*#[ \t]*include[ \t]*\"\\.\\.")
    if(_pacegc_relative)
      message(FATAL_ERROR "${_pacegc_file}: a relative include steps around the layers (cmake/layers.cmake): "
                          "${_pacegc_relative}")
    endif()
  endforeach()
endforeach()
unset(_pacegc_files)
unset(_pacegc_relative)

pacegc_layer(base SOURCES check.cc dirty.cc hardcap.cc meta.cc os.cc)
pacegc_layer(pacer SOURCES config.cc goal.cc limit.cc limiter.cc pacer.cc scavenge.cc trigger.cc)
pacegc_layer(settings USES base pacer SOURCES settings.cc)
pacegc_layer(metrics PUBLIC_API USES base pacer settings
  SOURCES api.cc clock.cc ewma.cc expose.cc log.cc metric.cc registry.cc sample.cc)
pacegc_layer(gc PUBLIC_API USES base pacer settings metrics
  SOURCES alloc.cc api.cc cgroup.cc collector.cc concurrent.cc finalize.cc heap.cc mark.cc pacing.cc roots.cc size_classes.cc
          sweep.cc thread_start.cc threads.cc trace.cc untouched.cc weak.cc)

set(PACEGC_LIBRARY_OBJECTS "")
foreach(layer IN LISTS PACEGC_LAYERS)
  list(APPEND PACEGC_LIBRARY_OBJECTS $<TARGET_OBJECTS:pacegc_${layer}>)
endforeach()

function(pacegc_library target kind)
  add_library(${target} ${kind} ${PACEGC_LIBRARY_OBJECTS})
  set_target_properties(${target} PROPERTIES OUTPUT_NAME pacegc LINKER_LANGUAGE CXX)
  target_include_directories(${target} INTERFACE
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${target} PUBLIC Threads::Threads ${CMAKE_DL_LIBS} PRIVATE $<BUILD_INTERFACE:pacegc_options>)
endfunction()

pacegc_library(pacegc_static STATIC)
pacegc_library(pacegc_shared SHARED)
set_target_properties(pacegc_static PROPERTIES EXPORT_NAME pacegc_static)
set_target_properties(pacegc_shared PROPERTIES EXPORT_NAME pacegc VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
add_library(pacegc::pacegc ALIAS pacegc_shared)
add_library(pacegc::pacegc_static ALIAS pacegc_static)

# ---- The drop-in allocator: libpacegc-malloc.so (malloc/, docs/MALLOC.md) ---------------------------------------
# The library's objects plus malloc/'s, which define malloc, free, operator new, ... It is a library of its own, not
# part of libpacegc.{a,so}: linking pacegc must never replace a program's malloc. It links mimalloc (the blocks'
# allocator; Debian's libmimalloc-dev) and is built only without a sanitizer, whose run-time replaces malloc itself.
if(PACEGC_SANITIZE)
  message(STATUS "pacegc: libpacegc-malloc is not built with PACEGC_SANITIZE=${PACEGC_SANITIZE} (the sanitizer "
                 "run-time replaces malloc itself); its tests are skipped in this build")
else()
  find_library(PACEGC_MIMALLOC_LIBRARY NAMES mimalloc)
  find_path(PACEGC_MIMALLOC_INCLUDE NAMES mimalloc.h)
  if(NOT PACEGC_MIMALLOC_LIBRARY OR NOT PACEGC_MIMALLOC_INCLUDE)
    message(STATUS "pacegc: libpacegc-malloc is not built: mimalloc's headers or library are missing "
                   "(install libmimalloc-dev: scripts/install-deps.sh)")
  else()
    set(PACEGC_BUILD_DROP_IN ON)
    pacegc_layer(malloc PUBLIC_API USES base pacer settings metrics gc SOURCES malloc.cc leak.cc symbolize.cc)
    target_include_directories(pacegc_malloc PRIVATE "${PACEGC_MIMALLOC_INCLUDE}")
    # mimalloc's functions are called through the GOT, not a PLT stub: one jump less on every malloc and free.
    target_compile_options(pacegc_malloc PRIVATE -fno-plt)
    add_library(pacegc_malloc_shared SHARED ${PACEGC_LIBRARY_OBJECTS} $<TARGET_OBJECTS:pacegc_malloc>)
    set_target_properties(pacegc_malloc_shared PROPERTIES OUTPUT_NAME pacegc-malloc LINKER_LANGUAGE CXX
                          EXPORT_NAME malloc VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
    target_include_directories(pacegc_malloc_shared INTERFACE
      $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
    target_link_libraries(pacegc_malloc_shared PUBLIC Threads::Threads ${CMAKE_DL_LIBS}
                          PRIVATE ${PACEGC_MIMALLOC_LIBRARY} $<BUILD_INTERFACE:pacegc_options>)
    add_library(pacegc::malloc ALIAS pacegc_malloc_shared)
  endif()
endif()
