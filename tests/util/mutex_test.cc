#include "util/mutex.h"

#include <gtest/gtest.h>

#include <atomic>
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

TEST(SharedMutexTest, ReadersHoldItTogether) {
  SharedMutex mu;
  std::atomic<bool> second_reader_in{false};
  std::thread reader;
  {
    ReaderMutexLock lock(&mu);
    reader = std::thread([&] {
      ReaderMutexLock reader_lock(&mu);
      second_reader_in = true;
    });
    // The deadline only bounds a failing test (an exclusive lock would keep
    // the second reader out for as long as this one holds it).
    for (int i = 0; i < 20000 && !second_reader_in; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_TRUE(second_reader_in);
  }
  reader.join();
}

TEST(SharedMutexTest, AWriterKeepsReadersOut) {
  SharedMutex mu;
  std::atomic<bool> reader_started{false};
  std::atomic<bool> reader_in{false};
  std::thread reader;
  {
    WriterMutexLock lock(&mu);
    reader = std::thread([&] {
      reader_started = true;
      ReaderMutexLock reader_lock(&mu);
      reader_in = true;
    });
    while (!reader_started) std::this_thread::yield();
    // Give the reader time to get in if it wrongly could; a correct lock
    // keeps it out however long this takes.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_FALSE(reader_in);
  }
  reader.join();
  EXPECT_TRUE(reader_in);
}

TEST(SharedMutexTest, WritersExcludeReadersAndEachOther) {
  struct Pair {
    SharedMutex mu;
    int a GUARDED_BY(mu) = 0;
    int b GUARDED_BY(mu) = 0;  // always equal to a outside a writer
  } pair;
  std::atomic<bool> go{false};
  auto write = [&] {
    while (!go) std::this_thread::yield();  // both writers start together
    for (int i = 0; i < 200000; ++i) {
      WriterMutexLock lock(&pair.mu);
      ++pair.a;
      ++pair.b;
    }
  };
  std::atomic<bool> torn{false};
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done) {
      ReaderMutexLock lock(&pair.mu);
      if (pair.a != pair.b) torn = true;
    }
  });
  std::thread w1(write), w2(write);
  go = true;
  w1.join();
  w2.join();
  done = true;
  reader.join();
  EXPECT_FALSE(torn);
  ReaderMutexLock lock(&pair.mu);
  EXPECT_EQ(pair.a, 400000);
  EXPECT_EQ(pair.b, 400000);
}

}  // namespace
}  // namespace dist_counter
