// WaitUntil() polls a condition until it holds or a deadline passes, for
// tests that wait on background work (merge rounds, other processes).
// Tests never assert timings: the deadline only bounds a failing test.

#ifndef DIST_COUNTER_TESTS_TESTING_WAIT_UNTIL_H_
#define DIST_COUNTER_TESTS_TESTING_WAIT_UNTIL_H_

#include <functional>

namespace dist_counter {
namespace test {

// Calls `done` every `poll_ms` until it returns true or `timeout_ms` has
// passed, then once more. Returns true as soon as `done` does, else its last
// answer. Runs `done` on the calling thread only.
bool WaitUntil(const std::function<bool()>& done, int timeout_ms = 20000,
               int poll_ms = 20);

}  // namespace test
}  // namespace dist_counter

#endif  // DIST_COUNTER_TESTS_TESTING_WAIT_UNTIL_H_
