#include "testing/wait_until.h"

#include <chrono>
#include <thread>

namespace dist_counter {
namespace test {

bool WaitUntil(const std::function<bool()>& done, int timeout_ms, int poll_ms) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
  return done();
}

}  // namespace test
}  // namespace dist_counter
