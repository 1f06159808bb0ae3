# Warnings for our own code, and the optional sanitizer builds.
#
#   cmake -DDIST_COUNTER_SANITIZE=ON ...   builds everything with
#   -fsanitize=address,undefined; the test suite must pass under it.
#   cmake -DDIST_COUNTER_TSAN=ON ...       builds everything with
#   -fsanitize=thread; the threaded suites (store, cluster, HTTP) must
#   pass under it (scripts/test.sh runs them).

option(DIST_COUNTER_SANITIZE "Build with AddressSanitizer and UBSan" OFF)
option(DIST_COUNTER_TSAN "Build with ThreadSanitizer" OFF)
option(DIST_COUNTER_WERROR "Treat warnings as errors" OFF)

add_library(dist_counter_flags INTERFACE)
# A dropped Status (the class is [[nodiscard]]) is an error, not a warning.
target_compile_options(dist_counter_flags INTERFACE -Wall -Wextra
                                                   -Werror=unused-result)
if(DIST_COUNTER_WERROR)
  target_compile_options(dist_counter_flags INTERFACE -Werror)
endif()

if(DIST_COUNTER_SANITIZE)
  set(_san -fsanitize=address,undefined -fno-omit-frame-pointer
           -fno-sanitize-recover=undefined)
  add_compile_options(${_san})
  add_link_options(${_san})
endif()

if(DIST_COUNTER_TSAN)
  if(DIST_COUNTER_SANITIZE)
    message(FATAL_ERROR "DIST_COUNTER_TSAN and DIST_COUNTER_SANITIZE exclude each other")
  endif()
  set(_tsan -fsanitize=thread -fno-omit-frame-pointer)
  add_compile_options(${_tsan})
  add_link_options(${_tsan})
endif()
