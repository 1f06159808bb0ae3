# Warnings for our own code, and the optional ASan+UBSan build.
#
#   cmake -DDIST_COUNTER_SANITIZE=ON ...   builds everything with
#   -fsanitize=address,undefined; the test suite must pass under it.

option(DIST_COUNTER_SANITIZE "Build with AddressSanitizer and UBSan" OFF)
option(DIST_COUNTER_WERROR "Treat warnings as errors" OFF)

add_library(dist_counter_flags INTERFACE)
target_compile_options(dist_counter_flags INTERFACE -Wall -Wextra)
if(DIST_COUNTER_WERROR)
  target_compile_options(dist_counter_flags INTERFACE -Werror)
endif()

if(DIST_COUNTER_SANITIZE)
  set(_san -fsanitize=address,undefined -fno-omit-frame-pointer
           -fno-sanitize-recover=undefined)
  add_compile_options(${_san})
  add_link_options(${_san})
endif()
