# Hardening flags for release builds (checked by tests/e2e/elf_hardening.sh):
#
#   -D_FORTIFY_SOURCE=3          bounds-checked libc calls (__*_chk); needs
#                                optimisation, so only in optimised configs
#   -fstack-protector-strong     canaries (__stack_chk_fail)
#   PIE                          position-independent executables (ASLR)
#   -Wl,-z,relro -Wl,-z,now      full RELRO: the GOT is read-only after start
#   -Wl,-z,noexecstack           no executable stack
#
# Not for Debug builds (debuggers and -O0 do not mix with fortify) nor for
# sanitizer or fuzzing builds (ASan replaces the libc checks, and fortified
# calls hide accesses from it). Include after BMAPTK_SANITIZE and BMAPTK_FUZZ
# are defined. BMAPTK_HARDENING=OFF turns it off, e.g. for a distribution
# that passes its own flags (dpkg-buildflags).
include(CheckCCompilerFlag)
include(CheckLinkerFlag)
include(CheckPIESupported)

option(BMAPTK_HARDENING
       "Harden release builds: fortify, stack protector, PIE, full RELRO" ON)

if(NOT BMAPTK_HARDENING OR BMAPTK_SANITIZE OR BMAPTK_FUZZ)
  return()
endif()

set(hardening_not_debug "$<NOT:$<CONFIG:Debug>>")
set(hardening_optimised
    "$<OR:$<CONFIG:Release>,$<CONFIG:RelWithDebInfo>,$<CONFIG:MinSizeRel>>")

# -U first: a _FORTIFY_SOURCE from CFLAGS or the compiler's defaults would
# otherwise be a "redefined" warning, an error under -Werror.
add_compile_options("$<${hardening_optimised}:-U_FORTIFY_SOURCE>"
                    "$<${hardening_optimised}:-D_FORTIFY_SOURCE=3>")

check_c_compiler_flag(-fstack-protector-strong BMAPTK_HAVE_SSP_STRONG)
if(BMAPTK_HAVE_SSP_STRONG)
  add_compile_options("$<${hardening_not_debug}:-fstack-protector-strong>")
endif()

# PIE: -fPIE from CMAKE_POSITION_INDEPENDENT_CODE, -pie for executables
# (shared objects such as plugins must not get it).
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
check_pie_supported(OUTPUT_VARIABLE hardening_pie_msg LANGUAGES C)
add_link_options(
  "$<$<AND:${hardening_not_debug},$<STREQUAL:$<TARGET_PROPERTY:TYPE>,EXECUTABLE>>:-pie>")

foreach(flag relro now noexecstack)
  string(TOUPPER "${flag}" upper)
  check_linker_flag(C "-Wl,-z,${flag}" BMAPTK_HAVE_Z_${upper})
  if(BMAPTK_HAVE_Z_${upper})
    add_link_options("$<${hardening_not_debug}:-Wl,-z,${flag}>")
  endif()
endforeach()
