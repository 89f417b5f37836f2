# libbmaptk.so.0: the public API of include/bmaptk/bmaptk.h as a shared
# library, for programs that embed bmaptk (the Debian package libbmaptk-dev).
# Include after bmaptk_core is defined. The CLI keeps linking bmaptk_core
# statically, so it does not depend on this library.
#
# It is bmaptk_core whole (no second compile), exporting exactly the
# functions bmaptk.h declares: a version script made from the header keeps
# every internal helper private, so only the header is the ABI. SOVERSION
# goes up when that ABI breaks.
if(BMAPTK_STATIC)
  return() # a static binary has no shared library next to it
endif()

file(STRINGS "${PROJECT_SOURCE_DIR}/include/bmaptk/bmaptk.h" bmaptk_api_lines
     REGEX "bmaptk_[a-z0-9_]+\\(")
set(bmaptk_api_names "")
foreach(line IN LISTS bmaptk_api_lines)
  string(REGEX MATCHALL "bmaptk_[a-z0-9_]+\\(" names "${line}")
  string(REPLACE "(" "" names "${names}")
  list(APPEND bmaptk_api_names ${names})
endforeach()
list(REMOVE_DUPLICATES bmaptk_api_names)
list(SORT bmaptk_api_names)
if(NOT bmaptk_api_names)
  message(FATAL_ERROR "no function found in include/bmaptk/bmaptk.h")
endif()
list(JOIN bmaptk_api_names ";\n\t\t" bmaptk_api_symbols)
string(PREPEND bmaptk_api_symbols "\t\t")
string(APPEND bmaptk_api_symbols ";\n")
set(bmaptk_version_script "${PROJECT_BINARY_DIR}/libbmaptk.map")
file(CONFIGURE OUTPUT "${bmaptk_version_script}" CONTENT
"/* Made by cmake/library.cmake from include/bmaptk/bmaptk.h. */
BMAPTK_0 {
	global:
${bmaptk_api_symbols}	local:
		*;
};
")

# A target needs a source of its own; the code all comes from bmaptk_core.
set(bmaptk_shared_stub "${PROJECT_BINARY_DIR}/libbmaptk_stub.c")
file(CONFIGURE OUTPUT "${bmaptk_shared_stub}" CONTENT
     "/* libbmaptk is bmaptk_core whole (cmake/library.cmake). */\n\
typedef int bmaptk_library_stub;\n")
add_library(bmaptk_shared SHARED "${bmaptk_shared_stub}")
set_target_properties(bmaptk_shared PROPERTIES
  OUTPUT_NAME bmaptk
  VERSION ${PROJECT_VERSION}
  SOVERSION 0
  LINK_DEPENDS "${bmaptk_version_script}")
# Whole archive: the library has no object of its own that would pull the
# API's objects in. bmaptk_core's dependencies follow it on the link line.
target_link_libraries(bmaptk_shared PRIVATE
  -Wl,--whole-archive bmaptk_core -Wl,--no-whole-archive)
target_link_options(bmaptk_shared PRIVATE
  "-Wl,--version-script=${bmaptk_version_script}")
if(NOT BMAPTK_SANITIZE) # clang's sanitizer runtimes live in the executable
  target_link_options(bmaptk_shared PRIVATE -Wl,--no-undefined)
endif()
target_include_directories(bmaptk_shared INTERFACE
  "${PROJECT_SOURCE_DIR}/include")

install(TARGETS bmaptk_shared
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})

# libbmaptk.pc, to link the library: bmaptk.pc stays the plugin ABI, which
# links nothing (a plugin linking libbmaptk would carry a second registry).
configure_file("${PROJECT_SOURCE_DIR}/cmake/libbmaptk.pc.in" libbmaptk.pc
               @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/libbmaptk.pc"
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
