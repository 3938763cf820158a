# Poller backends: src/poll/poller_<name>.c, one per backend, behind the
# ops table of src/poll/poller.h. MOTE_POLLERS says which are compiled in;
# at run time the MOTE_POLLER environment variable picks one of them
# (default: the first built in the order epoll, kqueue, uring).
#
#   epoll   Linux.
#   uring   Linux io_uring, over the system's liburing (Debian: liburing-dev),
#           built by default on Linux when liburing is found, skipped
#           (with a status line) when it is not. Chosen only by name
#           (MOTE_POLLER=uring); it falls back to epoll at run time when
#           the kernel refuses io_uring.
#   kqueue  the kernel's on BSD and macOS. On Linux, over libkqueue (kqueue
#           in user space on top of epoll), built from the tarball in
#           MOTE_KQUEUE_SHARED_DIR into this build folder and linked into
#           libmote. That is a test configuration (CI runs the suite
#           through it), so a Linux build never adds it by itself: a
#           libmote that carries its own copy of libkqueue is not one to
#           install.
#
# Included from src/CMakeLists.txt. Sets MOTE_POLLER_SOURCES and
# MOTE_POLLER_DEFINITIONS, and defines mote_add_poller_deps(), which
# src/CMakeLists.txt calls once the library targets exist.
if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
  set(_mote_default_pollers "epoll;uring")
else()
  set(_mote_default_pollers kqueue)
endif()
set(MOTE_POLLERS "${_mote_default_pollers}" CACHE STRING
  "Poller backends to build (epoll, kqueue, uring); MOTE_POLLER picks one at run time")
set(MOTE_KQUEUE_SHARED_DIR "${PROJECT_SOURCE_DIR}/../shared/third_party" CACHE PATH
  "Folder holding libkqueue-*.tar.gz, for the kqueue backend on Linux")

set(MOTE_POLLER_SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/poll/poller.c)
set(MOTE_POLLER_DEFINITIONS "")
set(_mote_libkqueue "")
set(MOTE_URING_LIBRARY "")
foreach(_p IN LISTS MOTE_POLLERS)
  if(NOT _p MATCHES "^(epoll|kqueue|uring)$")
    message(FATAL_ERROR "MOTE_POLLERS: unknown poller '${_p}' (known: epoll, kqueue, uring)")
  endif()
  if(_p STREQUAL "uring")
    find_path(MOTE_URING_INCLUDE_DIR liburing.h)
    find_library(MOTE_URING_LIB uring)
    if(NOT CMAKE_SYSTEM_NAME STREQUAL "Linux" OR NOT MOTE_URING_INCLUDE_DIR OR NOT MOTE_URING_LIB)
      message(STATUS "uring: skipped (liburing not found; Debian: liburing-dev)")
      continue()
    endif()
    set(MOTE_URING_LIBRARY ${MOTE_URING_LIB})
    message(STATUS "uring: over ${MOTE_URING_LIB}")
  endif()
  if(_p STREQUAL "kqueue" AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
    file(GLOB _tarball "${MOTE_KQUEUE_SHARED_DIR}/libkqueue-*.tar.gz")
    if(NOT _tarball)
      message(WARNING "kqueue: skipped (no libkqueue-*.tar.gz in ${MOTE_KQUEUE_SHARED_DIR})")
      continue()
    endif()
    list(GET _tarball -1 _tarball)
    # A new tarball reconfigures, and the hash pins the unpacked copy to it.
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_tarball})
    file(SHA256 ${_tarball} _sha)
    include(ExternalProject)
    set(_stamp "")
    if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.24)
      set(_stamp DOWNLOAD_EXTRACT_TIMESTAMP ON) # files dated at extraction (CMP0135)
    endif()
    set(_kq ${CMAKE_BINARY_DIR}/libkqueue)
    # libkqueue's epoll_wait asks for as many events as the caller has
    # kevent slots, though one epoll event can make two kevents (read and
    # write); the events that do not fit are dropped, and being
    # edge-triggered they never come back. cmake/libkqueue-fix.cmake halves
    # the request in the unpacked copy (test-poller's "many_ready" catches
    # the drop).
    ExternalProject_Add(mote_libkqueue_build
      URL ${_tarball}
      URL_HASH SHA256=${_sha}
      ${_stamp}
      PREFIX ${_kq}
      INSTALL_DIR ${_kq}/install
      PATCH_COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=<SOURCE_DIR>
        -P ${PROJECT_SOURCE_DIR}/cmake/libkqueue-fix.cmake
      CMAKE_ARGS -DCMAKE_C_COMPILER=${CMAKE_C_COMPILER} -DCMAKE_BUILD_TYPE=RelWithDebInfo
        -DENABLE_SHARED=OFF -DENABLE_STATIC=ON -DCMAKE_POSITION_INDEPENDENT_CODE=ON
        -DVERSION_OVERRIDE=0.0.0 -DCMAKE_INSTALL_PREFIX=<INSTALL_DIR> -DCMAKE_INSTALL_LIBDIR=lib
      BUILD_BYPRODUCTS ${_kq}/install/lib/libkqueue.a)
    file(MAKE_DIRECTORY ${_kq}/install/include/kqueue)
    add_library(mote_libkqueue STATIC IMPORTED)
    set_target_properties(mote_libkqueue PROPERTIES
      IMPORTED_LOCATION ${_kq}/install/lib/libkqueue.a
      INTERFACE_INCLUDE_DIRECTORIES ${_kq}/install/include/kqueue)
    add_dependencies(mote_libkqueue mote_libkqueue_build)
    set(_mote_libkqueue ${_kq}/install/lib/libkqueue.a)
    message(STATUS "kqueue: over libkqueue from ${_tarball}")
  endif()
  string(TOUPPER ${_p} _P)
  list(APPEND MOTE_POLLER_SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/poll/poller_${_p}.c)
  list(APPEND MOTE_POLLER_DEFINITIONS MOTE_POLLER_${_P}=1)
endforeach()
if(NOT MOTE_POLLER_DEFINITIONS)
  message(FATAL_ERROR "MOTE_POLLERS='${MOTE_POLLERS}': no poller backend left to build")
endif()
message(STATUS "mote pollers: ${MOTE_POLLER_DEFINITIONS}")

# libkqueue goes inside both libraries, so that neither the build tree's
# tests nor an installed copy's consumers need to know about it: the
# shared one links the PIC archive and keeps its symbols to itself; the
# static one gets its members appended (GNU ar's MRI script).
function(mote_add_poller_deps)
  # liburing is the system's: the shared library needs it, and whoever
  # links the static one links it too.
  if(MOTE_URING_LIBRARY)
    target_include_directories(mote_objects PRIVATE ${MOTE_URING_INCLUDE_DIR})
    # By name, not path: the installed CMake package stays relocatable.
    target_link_libraries(mote_static PRIVATE uring)
    target_link_libraries(mote_shared PRIVATE uring)
    set(MOTE_PC_LIBS_PRIVATE " -luring" PARENT_SCOPE)
    set(MOTE_PC_STATIC_LIBS " -luring" PARENT_SCOPE)
  endif()
  if(NOT _mote_libkqueue)
    return()
  endif()
  target_link_libraries(mote_objects PRIVATE mote_libkqueue)
  target_link_libraries(mote_shared PRIVATE mote_libkqueue)
  target_link_options(mote_shared PRIVATE -Wl,--exclude-libs,libkqueue.a)
  target_link_libraries(mote_static PUBLIC rt)
  target_link_libraries(mote_shared PRIVATE rt)
  add_dependencies(mote_static mote_libkqueue_build)
  file(GENERATE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/merge-libkqueue.mri
    CONTENT "open $<TARGET_FILE:mote_static>\naddlib ${_mote_libkqueue}\nsave\nend\n")
  add_custom_command(TARGET mote_static POST_BUILD
    COMMAND ${CMAKE_COMMAND} -DAR=${CMAKE_AR} -DSCRIPT=${CMAKE_CURRENT_BINARY_DIR}/merge-libkqueue.mri
      -P ${PROJECT_SOURCE_DIR}/cmake/ar-script.cmake
    COMMENT "Appending libkqueue.a to libmote.a")
  if(MOTE_URING_LIBRARY)
    set(MOTE_PC_LIBS_PRIVATE " -luring -lrt" PARENT_SCOPE)
  else()
    set(MOTE_PC_LIBS_PRIVATE " -lrt" PARENT_SCOPE)
  endif()
endfunction()
