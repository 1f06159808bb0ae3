# The libFuzzer build (fuzz/), off by default:
#
#   cmake -DCMAKE_CXX_COMPILER=clang++ -DDIST_COUNTER_BUILD_FUZZERS=ON ...
#
# compiles everything with coverage instrumentation for libFuzzer plus
# AddressSanitizer and UBSan (any UB aborts, so the fuzzer reports it;
# only pointer-overflow can be let through, by fuzz/ubsan.supp, for a
# finding in RapidJSON's own headers).
# scripts/fuzz.sh does this in build-fuzz/ and runs the targets.

option(DIST_COUNTER_BUILD_FUZZERS "Build the libFuzzer targets (clang)" OFF)

if(DIST_COUNTER_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "DIST_COUNTER_BUILD_FUZZERS needs clang "
                        "(-DCMAKE_CXX_COMPILER=clang++)")
  endif()
  set(_fuzz -fsanitize=fuzzer-no-link,address,undefined
            -fno-sanitize-recover=all -fsanitize-recover=pointer-overflow
            -fno-omit-frame-pointer)
  add_compile_options(${_fuzz})
  add_link_options(-fsanitize=address,undefined)
endif()
