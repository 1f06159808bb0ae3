// FUZZ_CHECK(condition): a property the fuzz target asserts on every input.
// A failure prints the condition and aborts, which libFuzzer reports as a
// crash and saves the input.

#ifndef DIST_COUNTER_FUZZ_FUZZ_CHECK_H_
#define DIST_COUNTER_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition)                                          \
  do {                                                                 \
    if (!(condition)) {                                                \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, \
                   __LINE__, #condition);                              \
      std::abort();                                                    \
    }                                                                  \
  } while (0)

#endif  // DIST_COUNTER_FUZZ_FUZZ_CHECK_H_
