#include "util/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "util/mutex.h"

namespace dist_counter {
namespace {

// A gate tasks wait at until the test opens it.
class Gate {
 public:
  // Blocks until Open(); counts the waiter meanwhile.
  void Wait() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    ++waiting_;
    cv_.SignalAll();
    while (!open_) cv_.Wait(&mu_);
  }
  void WaitForWaiters(int n) EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    while (waiting_ < n) cv_.Wait(&mu_);
  }
  void Open() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    open_ = true;
    cv_.SignalAll();
  }

 private:
  Mutex mu_;
  CondVar cv_;  // signalled when waiting_ grows and when open_ is set
  int waiting_ GUARDED_BY(mu_) = 0;
  bool open_ GUARDED_BY(mu_) = false;
};

TEST(WorkQueueTest, RunsEverySubmittedTask) {
  std::atomic<int> ran{0};
  WorkQueue queue(2, 1000);
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(queue.TrySubmit([&] { ran.fetch_add(1); }));
  }
  for (int i = 0; i < 30000 && ran.load() < 500; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(ran.load(), 500);
}

TEST(WorkQueueTest, RefusesTasksBeyondTheBacklog) {
  Gate gate;
  WorkQueue queue(1, 2);
  ASSERT_TRUE(queue.TrySubmit([&] { gate.Wait(); }));
  gate.WaitForWaiters(1);
  // The only thread is busy: two may wait, the third is refused.
  EXPECT_TRUE(queue.TrySubmit([] {}));
  EXPECT_TRUE(queue.TrySubmit([] {}));
  EXPECT_FALSE(queue.TrySubmit([] {}));
  gate.Open();
}

TEST(WorkQueueTest, StopCancelsQueuedTasksWithoutWaitingForRunningOnes) {
  Gate gate;
  std::atomic<int> ran{0}, cancelled{0};
  WorkQueue queue(1, 100);
  ASSERT_TRUE(queue.TrySubmit([&] {
    gate.Wait();
    ran.fetch_add(1);
  }));
  gate.WaitForWaiters(1);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(queue.TrySubmit([&] { ran.fetch_add(1); },
                                [&] { cancelled.fetch_add(1); }));
  }
  std::thread stopper([&] { queue.Stop(); });
  // The queued tasks are cancelled while the running one still blocks.
  for (int i = 0; i < 30000 && cancelled.load() < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(cancelled.load(), 5);
  EXPECT_EQ(ran.load(), 0);
  gate.Open();
  stopper.join();  // Stop() returned: the running task has finished
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(cancelled.load(), 5);
}

TEST(WorkQueueTest, TasksAreRefusedAfterStop) {
  WorkQueue queue(2, 10);
  queue.Stop();
  bool cancelled = false;
  EXPECT_FALSE(queue.TrySubmit([] {}, [&] { cancelled = true; }));
  EXPECT_FALSE(cancelled) << "a refused task's cancel must not run";
  queue.Stop();  // idempotent
}

TEST(WorkQueueTest, DestructionCancelsWhatIsStillQueued) {
  Gate gate;
  std::atomic<int> ran{0}, cancelled{0};
  std::thread opener;
  {
    WorkQueue queue(1, 100);
    ASSERT_TRUE(queue.TrySubmit([&] {
      gate.Wait();
      ran.fetch_add(1);
    }));
    gate.WaitForWaiters(1);
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(queue.TrySubmit([&] { ran.fetch_add(1); },
                                  [&] { cancelled.fetch_add(1); }));
    }
    // Opens the gate once the destructor has cancelled the queued tasks.
    opener = std::thread([&] {
      while (cancelled.load() < 3) std::this_thread::yield();
      gate.Open();
    });
  }
  opener.join();
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(cancelled.load(), 3);
}

}  // namespace
}  // namespace dist_counter
