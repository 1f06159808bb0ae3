// CounterStore under storage faults: a FaultFileSystem makes RocksDB's
// writes fail (full disk, I/O error, failed sync) or hang on demand, and
// the data dir is removed under a running store. The store must refuse
// increments while it cannot persist, keep answering reads, recover once
// the fault clears, and never lose or publish what it did not acknowledge.

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "store/codec.h"
#include "store/counter_store.h"
#include "store/fault_file_system.h"
#include "store/store_test_util.h"
#include "testing/metric_value.h"
#include "testing/wait_until.h"
#include "testing/warning_collector.h"
#include "util/metrics.h"

namespace dist_counter {
namespace {

using test::MustOpen;
using test::ValueOf;

constexpr int kNeverMs = 3600 * 1000;  // a flush interval no test outlives

class CounterStoreFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string base = ::testing::TempDir();
    if (base.empty() || base.back() != '/') base += '/';
    std::string pattern = base + "counter_store_faults_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << pattern;
    root_ = pattern;
    dir_ = root_ + "/db";
  }

  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  // Options of a store on the fault-injecting file system, flushed only
  // when a test says.
  StoreOptions Options() {
    StoreOptions options;
    options.data_dir = dir_;
    options.challenge_id = "1";
    options.flush_interval_ms = kNeverMs;
    options.close_retry_ms = 0;
    options.TEST_env = faults_.env();
    return options;
  }

  // The value of counter `name` (or "absent") in a store opened again on
  // the plain file system, i.e. what is on disk. The store must be closed.
  std::string ValueAfterReopen(const std::string& name) {
    StoreOptions options = Options();
    options.TEST_env = nullptr;
    auto store = MustOpen(options);
    if (!store) return "open failed";
    std::string value = ValueOf(*store, name);
    EXPECT_TRUE(store->Close().ok());
    return value;
  }

  void SetFault(Fault fault) { faults_.fs()->SetFault(fault); }

  // Removes the data dir under a running store at once: renamed away
  // first, so the store never sees it half removed (say, without CURRENT
  // but still there), then deleted.
  void RemoveDataDir() {
    const std::string away = root_ + "/removed";
    std::filesystem::rename(dir_, away);
    std::filesystem::remove_all(away);
  }

  FaultEnv faults_;  // outlives every store of the test
  std::string root_;
  std::string dir_;
};

class WriteFaultTest : public CounterStoreFaultsTest,
                       public ::testing::WithParamInterface<Fault> {};

// The faults a periodic flush meets: it never syncs, so Fault::kSync
// cannot reach it (only synced writes: a forced flush, durable mode).
class UnsyncedWriteFaultTest : public WriteFaultTest {};

std::string FaultName(const ::testing::TestParamInfo<Fault>& info) {
  switch (info.param) {
    case Fault::kNoSpace:
      return "NoSpace";
    case Fault::kIOError:
      return "IOError";
    case Fault::kSync:
      return "Sync";
    default:
      return "Other";
  }
}

INSTANTIATE_TEST_SUITE_P(Faults, WriteFaultTest,
                         ::testing::Values(Fault::kNoSpace, Fault::kIOError,
                                           Fault::kSync),
                         FaultName);
INSTANTIATE_TEST_SUITE_P(Faults, UnsyncedWriteFaultTest,
                         ::testing::Values(Fault::kNoSpace, Fault::kIOError),
                         FaultName);

TEST_P(WriteFaultTest, FailedFlushRefusesIncrementsButReadsGoOn) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("a", 1).ok());
  ASSERT_TRUE(store->Flush().ok());
  ASSERT_TRUE(store->Increment("a", 2).ok());  // acknowledged, in memory
  SetFault(GetParam());
  Status s = store->Flush(/*sync=*/true);
  EXPECT_TRUE(s.IsStorageUnavailable()) << s.ToString();
  EXPECT_TRUE(store->Health().IsStorageUnavailable());

  EXPECT_TRUE(store->Increment("a", 1).IsStorageUnavailable());
  EXPECT_TRUE(store->Increment("new", 1).IsStorageUnavailable());
  EXPECT_TRUE(store->IncrementBatch({{"a", 1}}).IsStorageUnavailable());
  Status async;
  store->IncrementAsync("a", 1, [&async](const Status& r) { async = r; });
  EXPECT_TRUE(async.IsStorageUnavailable()) << async.ToString();
  EXPECT_EQ(ValueOf(*store, "a"), "3");  // reads go on
  EXPECT_EQ(ValueOf(*store, "new"), "absent");
  // Merges go on in memory; they are written on recovery.
  PnCounter remote;
  remote.SetActor("peer", ActorCounts{10, 0});
  EXPECT_TRUE(store->Merge("m", remote, nullptr).ok());
  // Still failing: still unavailable.
  EXPECT_TRUE(store->Flush().IsStorageUnavailable());

  SetFault(Fault::kNone);
  s = store->Flush();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(store->Health().ok());
  ASSERT_TRUE(store->Increment("a", 4).ok());
  ASSERT_TRUE(store->Close().ok());
  EXPECT_EQ(ValueAfterReopen("a"), "7");
  EXPECT_EQ(ValueAfterReopen("m"), "10");
  EXPECT_EQ(ValueAfterReopen("new"), "absent");
}

TEST_P(UnsyncedWriteFaultTest, BackgroundFlushFailsThenRecoversByItself) {
  Metrics metrics;
  StoreOptions options = Options();
  options.flush_interval_ms = 10;
  options.metrics = &metrics;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("a", 5).ok());
  SetFault(GetParam());
  ASSERT_TRUE(store->Increment("a", 1).ok() ||
              store->Health().IsStorageUnavailable());
  ASSERT_TRUE(test::WaitUntil([&] {
    store->Increment("b", 1).ok();  // keeps something dirty
    return !store->Health().ok();
  }));
  EXPECT_TRUE(store->Increment("a", 1).IsStorageUnavailable());
  EXPECT_EQ(
      test::MetricValue(metrics.Render(), "dist_counter_storage_available"), 0)
      << metrics.Render();

  SetFault(Fault::kNone);
  ASSERT_TRUE(test::WaitUntil([&] { return store->Health().ok(); }));
  const std::string text = metrics.Render();
  EXPECT_EQ(test::MetricValue(text, "dist_counter_storage_available"), 1)
      << text;
  EXPECT_GE(test::MetricValue(text, "dist_counter_storage_recoveries_total")
                .value_or(0),
            1)
      << text;
  EXPECT_GE(
      test::MetricValue(text, "dist_counter_storage_errors_total").value_or(0),
      1)
      << text;
  ASSERT_TRUE(store->Increment("a", 1).ok());
  const std::string a = ValueOf(*store, "a");
  const std::string b = ValueOf(*store, "b");
  ASSERT_TRUE(store->Close().ok());
  EXPECT_EQ(ValueAfterReopen("a"), a);
  EXPECT_EQ(ValueAfterReopen("b"), b);
}

TEST_P(WriteFaultTest, FailedDurableIncrementIsNeverVisibleNorKept) {
  StoreOptions options = Options();
  options.durable = true;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("a", 1).ok());
  const uint64_t cursor = store->LatestCursor();

  SetFault(GetParam());
  Status s = store->Increment("a", 5);
  EXPECT_TRUE(s.IsStorageUnavailable()) << s.ToString();
  EXPECT_TRUE(store->Increment("b", 1).IsStorageUnavailable());
  EXPECT_TRUE(store->IncrementBatch({{"c", 1}}).IsStorageUnavailable());
  Status async;
  store->IncrementAsync("a", 7, [&async](const Status& r) { async = r; });
  EXPECT_TRUE(async.IsStorageUnavailable()) << async.ToString();
  // Not visible to reads nor to peers.
  EXPECT_EQ(ValueOf(*store, "a"), "1");
  EXPECT_EQ(ValueOf(*store, "b"), "absent");
  EXPECT_EQ(ValueOf(*store, "c"), "absent");
  std::vector<CounterChange> changes;
  uint64_t next = 0;
  store->ChangesSince(cursor, 100, &changes, &next);
  EXPECT_TRUE(changes.empty());
  EXPECT_EQ(store->LatestCursor(), cursor);

  SetFault(Fault::kNone);
  ASSERT_TRUE(store->Flush().ok());
  ASSERT_TRUE(store->Increment("a", 2).ok());
  EXPECT_EQ(ValueOf(*store, "a"), "3");
  ASSERT_TRUE(store->Close().ok());
  // Even where a failed sync left its record in the WAL, the recovery
  // rewrote the published state over it.
  EXPECT_EQ(ValueAfterReopen("a"), "3");
  EXPECT_EQ(ValueAfterReopen("b"), "absent");
  EXPECT_EQ(ValueAfterReopen("c"), "absent");
}

TEST_P(WriteFaultTest, FailedDurableResetIsNeverVisibleNorKept) {
  StoreOptions options = Options();
  options.durable = true;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("a", 4).ok());
  const uint64_t cursor = store->LatestCursor();

  SetFault(GetParam());
  Status s = store->Reset("a");
  EXPECT_TRUE(s.IsStorageUnavailable()) << s.ToString();
  EXPECT_EQ(ValueOf(*store, "a"), "4");
  std::vector<CounterChange> changes;
  uint64_t next = 0;
  store->ChangesSince(cursor, 100, &changes, &next);
  EXPECT_TRUE(changes.empty());
  // While the store cannot persist, resets are refused up front.
  EXPECT_TRUE(store->Reset("a").IsStorageUnavailable());

  SetFault(Fault::kNone);
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(ValueOf(*store, "a"), "4");
  ASSERT_TRUE(store->Close().ok());
  // Where the failed sync left the reset in the WAL, the recovery rewrote
  // the published state over it.
  EXPECT_EQ(ValueAfterReopen("a"), "4");
}

TEST_P(WriteFaultTest, ResetsAreRefusedWhileTheStoreCannotPersist) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("a", 3).ok());
  SetFault(GetParam());
  EXPECT_TRUE(store->Flush(/*sync=*/true).IsStorageUnavailable());
  EXPECT_TRUE(store->Reset("a").IsStorageUnavailable());
  EXPECT_EQ(ValueOf(*store, "a"), "3");
  SetFault(Fault::kNone);
  ASSERT_TRUE(store->Flush().ok());
  ASSERT_TRUE(store->Reset("a").ok());
  ASSERT_TRUE(store->Close().ok());
  EXPECT_EQ(ValueAfterReopen("a"), "0");
}

TEST_P(WriteFaultTest, DurableStoreRecoversInTheBackground) {
  StoreOptions options = Options();
  options.durable = true;
  options.flush_interval_ms = 10;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  SetFault(GetParam());
  EXPECT_TRUE(store->Increment("a", 1).IsStorageUnavailable());
  SetFault(Fault::kNone);
  ASSERT_TRUE(test::WaitUntil([&] { return store->Health().ok(); }));
  ASSERT_TRUE(store->Increment("a", 2).ok());
  ASSERT_TRUE(store->Close().ok());
  EXPECT_EQ(ValueAfterReopen("a"), "2");
}

// Threads increment while the disk fails and recovers, twice. Stores in
// *acknowledged the increments that returned OK; returns false if the
// store did not fail or recover as expected.
bool HammerThroughFaults(CounterStore* store, FaultFileSystem* fs, Fault fault,
                         int64_t* acknowledged) {
  std::atomic<int64_t> ok{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&] {
      while (!stop.load()) {
        if (store->Increment("hammered", 1).ok()) ++ok;
      }
    });
  }
  bool as_expected = true;
  for (int round = 0; round < 2 && as_expected; ++round) {
    const int64_t before = ok.load();
    as_expected = test::WaitUntil([&] { return ok.load() > before + 50; });
    fs->SetFault(fault);
    as_expected =
        as_expected && test::WaitUntil([&] { return !store->Health().ok(); });
    fs->SetFault(Fault::kNone);
    as_expected =
        as_expected && test::WaitUntil([&] { return store->Health().ok(); });
  }
  stop = true;
  for (std::thread& w : workers) w.join();
  *acknowledged = ok.load();
  return as_expected;
}

TEST_P(WriteFaultTest, NothingAcknowledgedIsLostAcrossFaults) {
  for (bool durable : {false, true}) {
    if (!durable && GetParam() == Fault::kSync) continue;  // never syncs
    SCOPED_TRACE(durable ? "durable" : "default mode");
    std::filesystem::remove_all(dir_);
    StoreOptions options = Options();
    options.flush_interval_ms = 5;
    options.durable = durable;
    auto store = MustOpen(options);
    ASSERT_TRUE(store);
    int64_t acknowledged = 0;
    EXPECT_TRUE(HammerThroughFaults(store.get(), faults_.fs(), GetParam(),
                                    &acknowledged));
    EXPECT_EQ(ValueOf(*store, "hammered"), std::to_string(acknowledged));
    ASSERT_TRUE(store->Close().ok());
    EXPECT_EQ(ValueAfterReopen("hammered"), std::to_string(acknowledged));
  }
}

TEST_F(CounterStoreFaultsTest, CloseRetriesTheFinalFlushUntilTheFaultClears) {
  StoreOptions options = Options();
  options.close_retry_ms = 60000;  // only bounds a failing test
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("a", 3).ok());
  SetFault(Fault::kNoSpace);
  std::thread clearer([this] {
    test::WaitUntil([this] { return faults_.fs()->failures() > 2; });
    SetFault(Fault::kNone);
  });
  Status s = store->Close();
  clearer.join();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(ValueAfterReopen("a"), "3");
}

TEST_F(CounterStoreFaultsTest, CloseReportsAFinalFlushThatCannotBeMade) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  const uint64_t incarnation = store->incarnation();
  ASSERT_TRUE(store->Increment("a", 3).ok());
  SetFault(Fault::kNoSpace);
  Status s = store->Close();
  EXPECT_TRUE(s.IsStorageUnavailable()) << s.ToString();
  EXPECT_NE(s.message().find("final flush failed"), std::string::npos);
  EXPECT_TRUE(store->Close().ok());  // idempotent
  SetFault(Fault::kNone);
  // Not a clean stop: the next open takes a new incarnation.
  store = MustOpen(Options());
  ASSERT_TRUE(store);
  EXPECT_EQ(store->incarnation(), incarnation + 1);
}

TEST_F(CounterStoreFaultsTest, HungFlushesBoundTheBacklog) {
  StoreOptions options = Options();
  options.flush_interval_ms = 5;
  options.max_unflushed_ms = 50;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("a", 1).ok());
  SetFault(Fault::kStall);
  ASSERT_TRUE(test::WaitUntil([&] {
    Status s = store->Health();
    return s.IsStorageUnavailable() &&
           s.message().find("no successful flush") != std::string::npos;
  }));
  EXPECT_TRUE(store->Increment("a", 1).IsStorageUnavailable());
  EXPECT_EQ(ValueOf(*store, "a"), "1");
  SetFault(Fault::kNone);
  ASSERT_TRUE(test::WaitUntil([&] { return store->Health().ok(); }));
  EXPECT_TRUE(store->Increment("a", 1).ok());
}

TEST_F(CounterStoreFaultsTest, RemovedDataDirIsDetectedAndRefusesWrites) {
  StoreOptions options = Options();
  options.flush_interval_ms = 10;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("a", 1).ok());
  RemoveDataDir();
  ASSERT_TRUE(test::WaitUntil([&] { return !store->Health().ok(); }));
  Status s = store->Health();
  EXPECT_TRUE(s.IsStorageUnavailable());
  EXPECT_NE(s.message().find("is gone"), std::string::npos) << s.ToString();
  EXPECT_TRUE(store->Increment("a", 1).IsStorageUnavailable());
  EXPECT_EQ(ValueOf(*store, "a"), "1");
  // Nothing can be persisted: the stop says so.
  s = store->Close();
  EXPECT_TRUE(s.IsStorageUnavailable()) << s.ToString();
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/CURRENT"));
}

TEST_F(CounterStoreFaultsTest, DurableIncrementIntoARemovedDataDirFails) {
  StoreOptions options = Options();
  options.durable = true;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("a", 1).ok());
  RemoveDataDir();
  // The sync goes into files no longer on disk: it must not be
  // acknowledged, whether or not the periodic check has run yet.
  Status s = store->Increment("a", 1);
  EXPECT_TRUE(s.IsStorageUnavailable()) << s.ToString();
  std::atomic<bool> called{false};
  Status async_result;
  store->IncrementAsync("b", 1, [&](const Status& result) {
    async_result = result;
    called = true;
  });
  ASSERT_TRUE(test::WaitUntil([&] { return called.load(); }));
  EXPECT_TRUE(async_result.IsStorageUnavailable()) << async_result.ToString();
  EXPECT_EQ(ValueOf(*store, "a"), "1");
  EXPECT_EQ(ValueOf(*store, "b"), "absent");
  s = store->Health();
  EXPECT_NE(s.message().find("is gone"), std::string::npos) << s.ToString();
  EXPECT_FALSE(store->Close().ok());
}

TEST_F(CounterStoreFaultsTest, StopRightAfterTheDataDirIsRemovedFails) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("a", 1).ok());
  ASSERT_TRUE(store->Flush(/*sync=*/true).ok());
  RemoveDataDir();
  // Nothing is left to flush, but nothing is on disk either.
  Status s = store->Close();
  EXPECT_TRUE(s.IsStorageUnavailable()) << s.ToString();
  EXPECT_NE(s.message().find("is gone"), std::string::npos) << s.ToString();
}

TEST_F(CounterStoreFaultsTest, ReplacedDataDirIsDetected) {
  StoreOptions options = Options();
  options.flush_interval_ms = 10;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  std::filesystem::rename(dir_, root_ + "/moved");
  std::filesystem::create_directory(dir_);
  ASSERT_TRUE(test::WaitUntil([&] { return !store->Health().ok(); }));
  EXPECT_NE(store->Health().message().find("replaced"), std::string::npos)
      << store->Health().ToString();
  EXPECT_TRUE(store->Increment("a", 1).IsStorageUnavailable());
  EXPECT_FALSE(store->Close().ok());
}

TEST_F(CounterStoreFaultsTest, MaxUnflushedIsNeverBelowThreeFlushIntervals) {
  StoreOptions options = Options();
  options.flush_interval_ms = 40;
  options.max_unflushed_ms = 1;  // below 3 x 40 ms: 120 ms applies
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("a", 1).ok());
  SetFault(Fault::kStall);
  ASSERT_TRUE(test::WaitUntil([&] {
    return store->Health().message().find("no successful flush") !=
           std::string::npos;
  }));
  EXPECT_NE(store->Health().message().find("(limit 120 ms)"), std::string::npos)
      << store->Health().ToString();
  SetFault(Fault::kNone);
  ASSERT_TRUE(test::WaitUntil([&] { return store->Health().ok(); }));
  EXPECT_TRUE(store->Close().ok());
}

TEST_F(CounterStoreFaultsTest, FlushSecondsCountTheTimeFlushesSpendWriting) {
  using std::chrono::steady_clock;
  Metrics metrics;
  StoreOptions options = Options();
  options.metrics = &metrics;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  auto seconds = [&metrics] {
    return test::MetricValue(metrics.Render(),
                             "dist_counter_flush_seconds_total");
  };
  EXPECT_EQ(seconds(), 0);
  ASSERT_TRUE(store->Increment("a", 1).ok());
  // The flush's write hangs for at least 300 ms, which it must count.
  SetFault(Fault::kStall);
  std::thread flush([&store] { EXPECT_TRUE(store->Flush().ok()); });
  ASSERT_TRUE(test::WaitUntil([&] { return faults_.fs()->stalled() > 0; }));
  const steady_clock::time_point stalled_at = steady_clock::now();
  test::WaitUntil([&] {
    return steady_clock::now() - stalled_at >= std::chrono::milliseconds(300);
  });
  SetFault(Fault::kNone);
  flush.join();
  EXPECT_GE(seconds().value_or(0), 0.3) << metrics.Render();
  EXPECT_EQ(test::MetricValue(metrics.Render(), "dist_counter_flushes_total"),
            1);
  EXPECT_TRUE(store->Close().ok());
}

TEST_F(CounterStoreFaultsTest, StorageErrorsAreLoggedAtMostEvery30Seconds) {
  std::atomic<int> skipped_s{0};  // how far the store's log clock is ahead
  test::WarningCollector log;
  Metrics metrics;
  StoreOptions options = Options();
  options.metrics = &metrics;
  options.TEST_now = [&skipped_s] {
    return std::chrono::steady_clock::now() +
           std::chrono::seconds(skipped_s.load());
  };
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  auto lines = [&log](const std::string& text) {
    int n = 0;
    for (const std::string& line : log.Lines()) {
      n += line.find(text) != std::string::npos;
    }
    return n;
  };
  auto errors = [&metrics] {
    return test::MetricValue(metrics.Render(),
                             "dist_counter_storage_errors_total")
        .value_or(-1);
  };
  const char kFirst[] = "storage unavailable, refusing increments";
  const char kAgain[] = "storage still unavailable";
  ASSERT_TRUE(store->Increment("a", 1).ok());
  SetFault(Fault::kIOError);
  // Every failed flush is an error; only the first is logged at once.
  for (int i = 0; i < 4; ++i) {
    const double before = errors();
    EXPECT_TRUE(store->Flush().IsStorageUnavailable());
    EXPECT_GT(errors(), before);
  }
  EXPECT_EQ(lines(kFirst), 1);
  EXPECT_EQ(lines(kAgain), 0);
  skipped_s = 29;
  EXPECT_TRUE(store->Flush().IsStorageUnavailable());
  EXPECT_EQ(lines(kAgain), 0);
  skipped_s = 31;  // 30 s after the first: logged again, once
  EXPECT_TRUE(store->Flush().IsStorageUnavailable());
  EXPECT_TRUE(store->Flush().IsStorageUnavailable());
  EXPECT_EQ(lines(kAgain), 1);

  SetFault(Fault::kNone);
  ASSERT_TRUE(test::WaitUntil([&] { return store->Flush().ok(); }));
  EXPECT_EQ(lines("storage available again after 31 s"), 1);
  EXPECT_EQ(lines(kFirst), 1);
  EXPECT_TRUE(store->Close().ok());
}

}  // namespace
}  // namespace dist_counter
