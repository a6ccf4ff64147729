# plugjail's CMake package, installed as PREFIX/lib/cmake/plugjail/plugjailConfig.cmake by
# scripts/install.sh (docs/install.md). Everything plugjail ships for C and C++ is a
# header, so every target here is INTERFACE: nothing to link, nothing architecture-bound.
#
#   find_package(plugjail 0.1 CONFIG REQUIRED)
#
#   plugjail::plugin     for plugin authors: the plugin ABI header (plugjail.h) and
#                        position-independent code. Build the plugin as a MODULE library,
#                        or use plugjail_add_plugin(NAME SOURCES...) below.
#   plugjail::host       for host applications: the host client headers (plugjail/...)
#                        and Threads::Threads (defined once C or CXX is enabled).
#   plugjail::plugjail   the installed plugjail executable (IMPORTED), e.g. for add_test().
#
#   plugjail_EXECUTABLE  the installed plugjail (hand it to a host client as its explicit
#                        path when PREFIX/bin is not on PATH)
#   plugjail_STUB        the in-jail stub plugjail runs (PREFIX/libexec/plugjail/)
#   plugjail_PROFILES_DIR  the shipped profiles (default.yaml, strict.yaml, ...)
#   plugjail_INCLUDE_DIR   PREFIX/include
#
# The prefix is found from this file's own real location (symlinks resolved: a merged /usr
# reached through /lib, or a stow-style symlink farm, still lands in the real tree), so the
# installed tree can be moved or staged with DESTDIR.

cmake_policy(PUSH)
cmake_policy(VERSION 3.14...3.31)

get_filename_component(_plugjail_dir "${CMAKE_CURRENT_LIST_DIR}" REALPATH)
get_filename_component(_plugjail_prefix "${_plugjail_dir}/../../.." ABSOLUTE)

set(plugjail_INCLUDE_DIR "${_plugjail_prefix}/include")
set(plugjail_EXECUTABLE "${_plugjail_prefix}/bin/plugjail")
set(plugjail_STUB "${_plugjail_prefix}/libexec/plugjail/plugjail-stub")
set(plugjail_PROFILES_DIR "${_plugjail_prefix}/share/plugjail/profiles")

if(NOT EXISTS "${plugjail_INCLUDE_DIR}/plugjail.h")
  set(plugjail_FOUND FALSE)
  set(plugjail_NOT_FOUND_MESSAGE
      "${plugjail_INCLUDE_DIR}/plugjail.h is missing: this plugjail installation is incomplete")
  unset(_plugjail_dir)
  unset(_plugjail_prefix)
  cmake_policy(POP)
  return()
endif()

if(NOT TARGET plugjail::plugin)
  add_library(plugjail::plugin INTERFACE IMPORTED)
  set_target_properties(plugjail::plugin PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${plugjail_INCLUDE_DIR}"
    # A plugin is dlopen'ed by the stub: it must be position-independent. MODULE and
    # SHARED libraries are already; this also covers object libraries feeding one.
    INTERFACE_POSITION_INDEPENDENT_CODE ON)
endif()

# The host clients use threads. FindThreads needs C or C++ enabled: a project with neither
# (project(x NONE)) gets no plugjail::host, which it could not compile against anyway.
get_property(_plugjail_languages GLOBAL PROPERTY ENABLED_LANGUAGES)
if(NOT TARGET plugjail::host AND ("C" IN_LIST _plugjail_languages OR "CXX" IN_LIST _plugjail_languages))
  include(CMakeFindDependencyMacro)
  find_dependency(Threads)
  add_library(plugjail::host INTERFACE IMPORTED)
  set_target_properties(plugjail::host PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${plugjail_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES Threads::Threads)
endif()

if(NOT TARGET plugjail::plugjail AND EXISTS "${plugjail_EXECUTABLE}")
  add_executable(plugjail::plugjail IMPORTED)
  set_target_properties(plugjail::plugjail PROPERTIES
    IMPORTED_LOCATION "${plugjail_EXECUTABLE}")
endif()

# plugjail_add_plugin(NAME SOURCES...): a plugin, i.e. a MODULE library (a .so meant for
# dlopen, never linked against) built against plugjail::plugin, named NAME.so (no "lib"
# prefix) so that `plugjail call --plugin NAME.so` reads naturally.
if(NOT COMMAND plugjail_add_plugin)
  function(plugjail_add_plugin name)
    add_library(${name} MODULE ${ARGN})
    target_link_libraries(${name} PRIVATE plugjail::plugin)
    set_target_properties(${name} PROPERTIES PREFIX "")
  endfunction()
endif()

unset(_plugjail_dir)
unset(_plugjail_prefix)
unset(_plugjail_languages)
cmake_policy(POP)
