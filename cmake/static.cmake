# One fully static bmaptk, linked with musl against the private prefix that
# scripts/build-static.sh builds (use that script; by hand:
#   cmake -S . -B build-static -DCMAKE_C_COMPILER=musl-gcc \
#         -DBMAPTK_STATIC=ON -DBMAPTK_STATIC_PREFIX=DIR -DBMAPTK_TESTS=OFF
# ). Include it before the first pkg_check_modules: it points pkg-config at
# the prefix alone, with --static so the private libraries (libcurl's
# libssh2 and OpenSSL) come along.
#
# What differs from the normal build: every module is built in, plugins
# cannot be loaded (BMAPTK_STATIC=1 for src/core/plugin_loader.c), libxml2
# and libcurl are linked rather than loaded on first use, no gpgme
# (signature checks fail with a message), no ISA-L (zlib decodes gzip), no
# tests. The binary is linked -static -Wl,--gc-sections, stripped in
# Release/MinSizeRel builds, with its linker map next to it (bmaptk.map).
option(BMAPTK_STATIC "Link one static binary with musl (scripts/build-static.sh)"
       OFF)
if(NOT BMAPTK_STATIC)
  return()
endif()

set(BMAPTK_STATIC_PREFIX "" CACHE PATH
    "Dependency prefix made by scripts/build-static.sh --prefix-only")
if(NOT EXISTS "${BMAPTK_STATIC_PREFIX}/lib/pkgconfig/libcurl.pc")
  message(FATAL_ERROR "BMAPTK_STATIC needs BMAPTK_STATIC_PREFIX, the prefix "
    "made by scripts/build-static.sh (no libcurl.pc in "
    "'${BMAPTK_STATIC_PREFIX}/lib/pkgconfig')")
endif()
if(BMAPTK_SANITIZE)
  message(FATAL_ERROR "BMAPTK_STATIC and BMAPTK_SANITIZE do not go together")
endif()
if(CMAKE_VERSION VERSION_LESS 3.22)
  message(FATAL_ERROR "BMAPTK_STATIC needs CMake 3.22 (PKG_CONFIG_ARGN)")
endif()

# The C library must be musl's: glibc's is not meant to be linked
# statically (NSS, iconv and dlopen behind getaddrinfo and friends). Which
# libc.a a static link takes, the linker's own trace tells.
set(bmaptk_probe "${CMAKE_BINARY_DIR}/CMakeFiles/bmaptk_libc_probe")
file(WRITE "${bmaptk_probe}.c" "int main(void) { return 0; }\n")
execute_process(
  COMMAND ${CMAKE_C_COMPILER} -static "${bmaptk_probe}.c" -o "${bmaptk_probe}"
          -Wl,--trace
  OUTPUT_VARIABLE bmaptk_trace ERROR_VARIABLE bmaptk_trace)
string(REGEX MATCH "[^\n]*/libc\\.a" bmaptk_libc "${bmaptk_trace}")
if(NOT bmaptk_libc MATCHES "musl")
  message(FATAL_ERROR "BMAPTK_STATIC needs musl-gcc as the compiler "
    "(-DCMAKE_C_COMPILER=musl-gcc; it links '${bmaptk_libc}')")
endif()
get_filename_component(bmaptk_musl_libdir "${bmaptk_libc}" DIRECTORY)

# pkg-config sees the prefix and nothing else; -lm, -lpthread and -ldl in
# the .pc files resolve to musl's (empty) archives, never to glibc's.
set(ENV{PKG_CONFIG_LIBDIR} "${BMAPTK_STATIC_PREFIX}/lib/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
set(PKG_CONFIG_ARGN --static)
set(CMAKE_FIND_LIBRARY_SUFFIXES .a)
list(PREPEND CMAKE_PREFIX_PATH "${BMAPTK_STATIC_PREFIX}")
list(PREPEND CMAKE_LIBRARY_PATH "${bmaptk_musl_libdir}")

# The prefix also holds the kernel's UAPI headers (FIEMAP, BLK* ioctls),
# which musl does not ship.
include_directories(SYSTEM "${BMAPTK_STATIC_PREFIX}/include")
add_compile_definitions(BMAPTK_STATIC=1)
add_compile_options(-ffunction-sections -fdata-sections)
add_link_options(
  -static -Wl,--gc-sections "-Wl,-Map=$<TARGET_PROPERTY:NAME>.map"
  "$<$<OR:$<CONFIG:Release>,$<CONFIG:MinSizeRel>>:-s>")

if(BMAPTK_TESTS)
  message(STATUS "BMAPTK_STATIC: the test suite is not built (no cmocka)")
  set(BMAPTK_TESTS OFF CACHE BOOL "Build the test suite" FORCE)
endif()

# libxml2 and libcurl are dlopened on first use by the normal build
# (src/core/xml_api.c, src/sources/curl_api.c); a static binary links them.
# Deferred to the end of the top-level CMakeLists.txt, where bmaptk_core
# exists.
function(bmaptk_static_link_lazy_libs)
  target_link_libraries(bmaptk_core PUBLIC PkgConfig::XML2 PkgConfig::CURL)
endfunction()
cmake_language(DEFER CALL bmaptk_static_link_lazy_libs)
