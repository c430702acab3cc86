# Compiler flags shared by every adalog target. The default build targets generic x86-64;
# AVX2 / AVX-512 / VNNI code lives in its own translation units compiled with per-file flags
# (see adalog_isa_sources) and is selected at run time, so no binary dies with SIGILL.
add_library(adalog_warnings INTERFACE)
target_compile_options(adalog_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow=local -Wno-unused-parameter>)

if(ADALOG_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
# ThreadSanitizer sees our code only: libgomp and oneDNN are not instrumented, so their barriers are
# invisible to it and runs with OpenMP teams of more than one thread report false races. Use it
# with one OpenMP thread per call (docs/deploy.md, "Threading model").
if(ADALOG_SANITIZE_THREAD)
  if(ADALOG_SANITIZE)
    message(FATAL_ERROR "ADALOG_SANITIZE_THREAD and ADALOG_SANITIZE cannot be combined")
  endif()
  add_compile_options(-fsanitize=thread)
  add_link_options(-fsanitize=thread)
endif()

# assert() stays on in the sanitizer and fuzz builds whatever CMAKE_BUILD_TYPE says: CMake's
# Release / RelWithDebInfo / MinSizeRel flags carry -DNDEBUG, which would compile out the internal
# invariants (e.g. the executors' workspace bounds checks) exactly where a bug should be caught.
if(ADALOG_SANITIZE OR ADALOG_BUILD_FUZZ)
  foreach(lang C CXX)
    foreach(cfg RELEASE RELWITHDEBINFO MINSIZEREL)
      string(REGEX REPLACE "(^| )[-/]DNDEBUG( |$)" " " CMAKE_${lang}_FLAGS_${cfg} "${CMAKE_${lang}_FLAGS_${cfg}}")
    endforeach()
  endforeach()
endif()

# adalog_isa_sources(<isa> <files...>): compile files for one ISA level.
#   isa: avx2 | avxvnni | avx512 | avx512vnni
function(adalog_isa_sources isa)
  if(isa STREQUAL "avx2")
    set(flags "-mavx2;-mfma;-mf16c")
  elseif(isa STREQUAL "avxvnni")
    # AVX-VNNI (VEX vpdpbusd / vpdpwssd) on top of AVX2: an extension, not an IsaLevel of its
    # own (Zen 4 has AVX-512 VNNI without it); its kernels check the cpu flag at run time.
    set(flags "-mavx2;-mfma;-mf16c;-mavxvnni")
  elseif(isa STREQUAL "avx512")
    set(flags "-mavx2;-mfma;-mf16c;-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq")
  elseif(isa STREQUAL "avx512vnni")
    set(flags "-mavx2;-mfma;-mf16c;-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;-mavx512vnni")
  else()
    message(FATAL_ERROR "adalog_isa_sources: unknown isa ${isa}")
  endif()
  set_source_files_properties(${ARGN} PROPERTIES COMPILE_OPTIONS "${flags}")
endfunction()
