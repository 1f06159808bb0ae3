#include "util/mutex.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace dist_counter {
namespace {

TEST(MutexTest, LockExcludesOtherThreads) {
  Mutex mu;
  int total = 0;
  auto add = [&] {
    for (int i = 0; i < 100000; ++i) {
      MutexLock lock(&mu);
      ++total;
    }
  };
  std::thread a(add), b(add);
  a.join();
  b.join();
  MutexLock lock(&mu);
  EXPECT_EQ(total, 200000);
}

TEST(MutexTest, WaitReturnsOnceSignalledWithTheMutexHeld) {
  Mutex mu;
  CondVar cv;
  bool ready = false;
  std::thread signaller([&] {
    MutexLock lock(&mu);
    ready = true;
    cv.SignalAll();
  });
  {
    MutexLock lock(&mu);
    while (!ready) cv.Wait(&mu);
    EXPECT_TRUE(ready);
  }
  signaller.join();
}

TEST(MutexTest, WaitForTimesOutWithoutASignal) {
  Mutex mu;
  CondVar cv;
  MutexLock lock(&mu);
  const auto start = std::chrono::steady_clock::now();
  bool woken = true;
  // A spurious wake-up may return true early; a timeout must return false.
  for (int i = 0; i < 100 && woken; ++i) {
    woken = cv.WaitFor(&mu, std::chrono::milliseconds(5));
  }
  EXPECT_FALSE(woken);
  EXPECT_GE(std::chrono::steady_clock::now() - start,
            std::chrono::milliseconds(5));
}

}  // namespace
}  // namespace dist_counter
