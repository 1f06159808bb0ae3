#include "util/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

namespace dist_counter {
namespace {

TEST(WorkQueueTest, RunsEveryAcceptedTaskBeforeDestruction) {
  std::atomic<int> ran{0};
  {
    WorkQueue queue(2, 1000);
    for (int i = 0; i < 500; ++i) {
      ASSERT_TRUE(queue.TrySubmit([&] { ran.fetch_add(1); }));
    }
  }
  EXPECT_EQ(ran.load(), 500);
}

TEST(WorkQueueTest, RefusesTasksBeyondTheBacklog) {
  std::mutex mu;
  std::condition_variable cv;
  bool started = false, release = false;
  WorkQueue queue(1, 2);
  ASSERT_TRUE(queue.TrySubmit([&] {
    std::unique_lock<std::mutex> lock(mu);
    started = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  }));
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return started; });
  }
  // The only thread is busy: two may wait, the third is refused.
  EXPECT_TRUE(queue.TrySubmit([] {}));
  EXPECT_TRUE(queue.TrySubmit([] {}));
  EXPECT_FALSE(queue.TrySubmit([] {}));
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
}

}  // namespace
}  // namespace dist_counter
