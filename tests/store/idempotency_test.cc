// CounterStore::IncrementOnce(): exactly-once increments per idempotency
// key, their persistence (reopen, kill -9 of a durable node), concurrent
// retries, expiry by compaction and the bounded in-memory cache; and the
// record codec of store/idempotency.h.

#include "store/idempotency.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "store/counter_store.h"
#include "store/fault_file_system.h"
#include "store/store_test_util.h"
#include "testing/http_client.h"
#include "testing/node_process.h"
#include "testing/wait_until.h"

namespace dist_counter {
namespace {

using test::MustOpen;
using test::ValueOf;

constexpr int kNeverMs = 3600 * 1000;

// A fingerprint of the current format only, as tests pass them.
RequestFingerprint Fp(const std::string& current) {
  RequestFingerprint fingerprint;
  fingerprint.current = current;
  return fingerprint;
}

class IdempotencyTest : public ::testing::Test {
 protected:
  StoreOptions Options(bool durable = false) {
    StoreOptions options;
    options.data_dir = dir_.Sub("db");
    options.challenge_id = "1";
    options.flush_interval_ms = kNeverMs;
    options.durable = durable;
    return options;
  }

  // Options(durable) on `faults`'s Env, with no retry of a failed final
  // flush at close: for tests that fail the sync.
  StoreOptions FaultyDurableOptions(FaultEnv* faults) {
    StoreOptions options = Options(/*durable=*/true);
    options.close_retry_ms = 0;
    options.TEST_env = faults->env();
    return options;
  }

  // IncrementOnce() that must succeed; returns its outcome.
  static IdempotentOutcome Once(CounterStore* store, const std::string& key,
                                const std::string& body,
                                const std::string& name = "c") {
    IdempotentOutcome outcome = IdempotentOutcome::kApplied;
    int reply = 0;
    Status s =
        store->IncrementOnce(key, Fp(FingerprintRequest(name + body)), 204,
                             name, std::stoll(body), &outcome, &reply);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (outcome != IdempotentOutcome::kKeyReused) {
      EXPECT_EQ(reply, 204);
    }
    return outcome;
  }

  // The raw record of `key` on disk ("" if none), read with the store
  // closed.
  std::string OnDisk(const std::string& key) {
    rocksdb::DB* db = nullptr;
    rocksdb::Options options;
    rocksdb::Status rs =
        rocksdb::DB::OpenForReadOnly(options, dir_.Sub("db"), &db);
    EXPECT_TRUE(rs.ok()) << rs.ToString();
    if (!rs.ok()) return "";
    std::unique_ptr<rocksdb::DB> owned(db);
    std::string value;
    rs = db->Get(rocksdb::ReadOptions(), IdempotencyDbKey(key), &value);
    return rs.ok() ? value : "";
  }

  test::TempDir dir_;
};

TEST(IdempotencyCodecTest, RecordRoundTripsAsCompactJson) {
  IdempotencyRecord record{"00112233aabbccdd", 204, 1700000000};
  const std::string encoded = EncodeIdempotencyRecord(record);
  EXPECT_EQ(encoded,
            R"({"v":2,"h":"00112233aabbccdd","s":204,"t":1700000000})");
  IdempotencyRecord decoded;
  ASSERT_TRUE(DecodeIdempotencyRecord(encoded, &decoded).ok());
  EXPECT_EQ(decoded.fingerprint, record.fingerprint);
  EXPECT_EQ(decoded.reply, 204);
  EXPECT_EQ(decoded.expires, 1700000000);
  EXPECT_EQ(decoded.format, 2);
  EXPECT_TRUE(DecodeIdempotencyRecord("{}", &decoded).IsCorruption());
}

TEST(IdempotencyCodecTest, RecordsWithoutAFormatAreFormatOne) {
  IdempotencyRecord decoded;
  ASSERT_TRUE(
      DecodeIdempotencyRecord(
          R"({"h":"00112233aabbccdd","s":204,"t":1700000000})", &decoded)
          .ok());
  EXPECT_EQ(decoded.format, 1);
  EXPECT_EQ(decoded.fingerprint, "00112233aabbccdd");
  // A format-1 record is compared with the format-1 fingerprint only.
  RequestFingerprint request;
  request.current = "00112233aabbccdd";
  request.legacy = "ffffffffffffffff";
  EXPECT_FALSE(SameRequest(decoded, request));
  request.legacy = "00112233aabbccdd";
  EXPECT_TRUE(SameRequest(decoded, request));
}

TEST(IdempotencyCodecTest, UnknownFormatsAreCorruption) {
  IdempotencyRecord decoded;
  for (const char* value :
       {R"({"v":3,"h":"00112233aabbccdd","s":204,"t":1700000000})",
        R"({"v":"2","h":"00112233aabbccdd","s":204,"t":1700000000})",
        R"({"v":1,"h":"00112233aabbccdd","s":204,"t":1700000000})"}) {
    EXPECT_TRUE(DecodeIdempotencyRecord(value, &decoded).IsCorruption())
        << value;
  }
}

// The pair that collided when the fingerprint hashed the text as sent:
// POST /counter/a with body "\n5" and POST /counter/a%0A with body "5".
TEST(IdempotencyFingerprintTest, ANameEndingInANewlineIsAnotherRequest) {
  EXPECT_EQ(std::string("POST /counter/a") + "\n" + "\n5",
            std::string("POST /counter/a\n") + "\n" + "5");
  EXPECT_NE(CanonicalRequest("POST /counter", {{"a", 5}}),
            CanonicalRequest("POST /counter", {{"a\n", 5}}));
  EXPECT_NE(
      FingerprintRequest(CanonicalRequest("POST /counter", {{"a", 5}})),
      FingerprintRequest(CanonicalRequest("POST /counter", {{"a\n", 5}})));
}

TEST(IdempotencyFingerprintTest, FieldsAreLengthPrefixed) {
  EXPECT_EQ(CanonicalRequest("POST /counter", {{"a", 5}}),
            "13:POST /counter1:11:a1:5");
  // Names that hold what a separator would be stay apart.
  EXPECT_NE(CanonicalRequest("POST /counters", {{"a1:b", 1}}),
            CanonicalRequest("POST /counters", {{"a", 1}, {"b", 1}}));
  EXPECT_NE(CanonicalRequest("POST /counter", {{"a", 1}}),
            CanonicalRequest("POST /counters", {{"a", 1}}));
  EXPECT_NE(CanonicalRequest("POST /counter", {{"a", 1}}),
            CanonicalRequest("POST /counter", {{"a", -1}}));
}

TEST(IdempotencyFingerprintTest, ABatchInAnotherOrderIsTheSameRequest) {
  EXPECT_EQ(CanonicalRequest("POST /counters", {{"b", 2}, {"a", 1}, {"c", 0}}),
            CanonicalRequest("POST /counters", {{"a", 1}, {"c", 0}, {"b", 2}}));
  EXPECT_NE(CanonicalRequest("POST /counters", {{"a", 1}, {"b", 2}}),
            CanonicalRequest("POST /counters", {{"a", 2}, {"b", 1}}));
}

TEST(IdempotencyCodecTest, KeysAreOneTo128PrintableBytes) {
  EXPECT_TRUE(ValidateIdempotencyKey("a").ok());
  EXPECT_TRUE(ValidateIdempotencyKey(std::string(128, 'k')).ok());
  EXPECT_TRUE(ValidateIdempotencyKey("").IsInvalidArgument());
  EXPECT_TRUE(
      ValidateIdempotencyKey(std::string(129, 'k')).IsInvalidArgument());
  EXPECT_TRUE(ValidateIdempotencyKey("a\tb").IsInvalidArgument());
  EXPECT_TRUE(ValidateIdempotencyKey("caf\xc3\xa9").IsInvalidArgument());
  EXPECT_NE(FingerprintRequest("a"), FingerprintRequest("b"));
  EXPECT_EQ(FingerprintRequest("a").size(), 16u);
}

TEST_F(IdempotencyTest, FirstIsAppliedRetryIsNotDifferentBodyIsReused) {
  auto store = MustOpen(Options());
  EXPECT_EQ(Once(store.get(), "k1", "5"), IdempotentOutcome::kApplied);
  EXPECT_EQ(Once(store.get(), "k1", "5"), IdempotentOutcome::kReplayed);
  EXPECT_EQ(Once(store.get(), "k1", "6"), IdempotentOutcome::kKeyReused);
  EXPECT_EQ(Once(store.get(), "k1", "5", "other"),
            IdempotentOutcome::kKeyReused);
  EXPECT_EQ(ValueOf(*store, "c"), "5");
  EXPECT_EQ(Once(store.get(), "k2", "5"), IdempotentOutcome::kApplied);
  EXPECT_EQ(ValueOf(*store, "c"), "10");
}

TEST_F(IdempotencyTest, BatchIsAppliedOncePerKey) {
  for (bool durable : {false, true}) {
    SCOPED_TRACE(durable ? "durable" : "default");
    test::TempDir dir;
    StoreOptions options = Options(durable);
    options.data_dir = dir.Sub("db");
    const std::vector<std::pair<std::string, int64_t>> deltas = {{"a", 2},
                                                                 {"b", -1}};
    IdempotentOutcome outcome;
    int reply = 0;
    {
      auto store = MustOpen(options);
      ASSERT_TRUE(
          store
              ->IncrementBatchOnce("k", Fp("f1"), 204, deltas, &outcome, &reply)
              .ok());
      EXPECT_EQ(outcome, IdempotentOutcome::kApplied);
      ASSERT_TRUE(
          store
              ->IncrementBatchOnce("k", Fp("f1"), 204, deltas, &outcome, &reply)
              .ok());
      EXPECT_EQ(outcome, IdempotentOutcome::kReplayed);
      ASSERT_TRUE(
          store
              ->IncrementBatchOnce("k", Fp("f2"), 204, deltas, &outcome, &reply)
              .ok());
      EXPECT_EQ(outcome, IdempotentOutcome::kKeyReused);
      // One bad name: nothing applied, nothing recorded.
      EXPECT_TRUE(store
                      ->IncrementBatchOnce("k2", Fp("f3"), 204,
                                           {{"a", 1}, {"bad/name", 1}},
                                           &outcome, &reply)
                      .IsInvalidArgument());
      ASSERT_TRUE(store
                      ->IncrementBatchOnce("k2", Fp("f3"), 204, {{"a", 1}},
                                           &outcome, &reply)
                      .ok());
      EXPECT_EQ(outcome, IdempotentOutcome::kApplied);
    }
    auto store = MustOpen(options);
    ASSERT_TRUE(
        store->IncrementBatchOnce("k", Fp("f1"), 204, deltas, &outcome, &reply)
            .ok());
    EXPECT_EQ(outcome, IdempotentOutcome::kReplayed);
    EXPECT_EQ(ValueOf(*store, "a"), "3");
    EXPECT_EQ(ValueOf(*store, "b"), "-1");
  }
}

TEST_F(IdempotencyTest, RefusedIncrementLeavesTheKeyUnknown) {
  auto store = MustOpen(Options());
  IdempotentOutcome outcome;
  int reply = 0;
  EXPECT_TRUE(
      store->IncrementOnce("k", Fp("f"), 204, "bad/name", 1, &outcome, &reply)
          .IsInvalidArgument());
  EXPECT_TRUE(store->IncrementOnce("", Fp("f"), 204, "c", 1, &outcome, &reply)
                  .IsInvalidArgument());
  ASSERT_TRUE(store->Increment("c", INT64_MAX).ok());
  ASSERT_TRUE(store->Increment("c", INT64_MAX).ok());
  EXPECT_TRUE(
      store->IncrementOnce("k", Fp("f"), 204, "c", INT64_MAX, &outcome, &reply)
          .IsInvalidArgument());
  EXPECT_EQ(Once(store.get(), "k", "1"), IdempotentOutcome::kApplied);
}

TEST_F(IdempotencyTest, RetryAfterReopenIsRecognised) {
  for (bool durable : {false, true}) {
    SCOPED_TRACE(durable ? "durable" : "default");
    test::TempDir dir;
    StoreOptions options = Options(durable);
    options.data_dir = dir.Sub("db");
    {
      auto store = MustOpen(options);
      EXPECT_EQ(Once(store.get(), "k", "3"), IdempotentOutcome::kApplied);
    }
    auto store = MustOpen(options);
    EXPECT_EQ(Once(store.get(), "k", "3"), IdempotentOutcome::kReplayed);
    EXPECT_EQ(Once(store.get(), "k", "4"), IdempotentOutcome::kKeyReused);
    EXPECT_EQ(ValueOf(*store, "c"), "3");
  }
}

TEST_F(IdempotencyTest, KeyIsWrittenInTheCountersFlush) {
  auto store = MustOpen(Options());
  EXPECT_EQ(Once(store.get(), "k", "3"), IdempotentOutcome::kApplied);
  ASSERT_TRUE(store->Flush().ok());
  ASSERT_TRUE(store->Close().ok());
  const std::string record = OnDisk("k");
  IdempotencyRecord decoded;
  ASSERT_TRUE(DecodeIdempotencyRecord(record, &decoded).ok()) << record;
  EXPECT_EQ(decoded.reply, 204);
  EXPECT_EQ(decoded.fingerprint, FingerprintRequest("c3"));
}

TEST_F(IdempotencyTest, ConcurrentRetriesOfOneKeyApplyOnce) {
  for (bool durable : {false, true}) {
    SCOPED_TRACE(durable ? "durable" : "default");
    test::TempDir dir;
    StoreOptions options = Options(durable);
    options.data_dir = dir.Sub("db");
    auto store = MustOpen(options);
    constexpr int kThreads = 8;
    constexpr int kKeys = 2000;
    std::atomic<int> applied{0};
    // Every thread sends key k at once: they meet at a barrier per key.
    std::atomic<int> arrived{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (int k = 0; k < kKeys; ++k) {
          ++arrived;
          while (arrived.load() < (k + 1) * kThreads) std::this_thread::yield();
          if (Once(store.get(), "key" + std::to_string(k), "1") ==
              IdempotentOutcome::kApplied) {
            ++applied;
          }
        }
      });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(applied.load(), kKeys);
    EXPECT_EQ(ValueOf(*store, "c"), std::to_string(kKeys));
  }
}

TEST_F(IdempotencyTest, ExpiredKeysAreAbsentAndDroppedByCompaction) {
  StoreOptions options = Options();
  options.idempotency_window_s = 1;
  auto store = MustOpen(options);
  // A record made at second t expires at t + 1; waits past it.
  auto wait_expiry = [](int64_t before) {
    ASSERT_TRUE(
        test::WaitUntil([&] { return UnixNowSeconds() >= before + 2; }, 10000));
  };
  int64_t before = UnixNowSeconds();
  EXPECT_EQ(Once(store.get(), "old", "1"), IdempotentOutcome::kApplied);
  EXPECT_EQ(Once(store.get(), "old", "1"), IdempotentOutcome::kReplayed);
  ASSERT_TRUE(store->Flush().ok());
  wait_expiry(before);
  // Expired: the key is new again.
  before = UnixNowSeconds();
  EXPECT_EQ(Once(store.get(), "old", "2"), IdempotentOutcome::kApplied);
  EXPECT_EQ(ValueOf(*store, "c"), "3");
  EXPECT_EQ(Once(store.get(), "gone", "1"), IdempotentOutcome::kApplied);
  ASSERT_TRUE(store->Flush().ok());
  ASSERT_TRUE(store->Close().ok());
  EXPECT_NE(OnDisk("gone"), "");  // not dropped before it expires
  store = MustOpen(options);
  wait_expiry(before);
  ASSERT_TRUE(store->TEST_CompactAll().ok());
  ASSERT_TRUE(store->Close().ok());
  store.reset();
  EXPECT_EQ(OnDisk("gone"), "");
  EXPECT_EQ(OnDisk("old"), "");
}

TEST_F(IdempotencyTest, UnexpiredKeysSurviveCompaction) {
  auto store = MustOpen(Options());
  EXPECT_EQ(Once(store.get(), "k", "1"), IdempotentOutcome::kApplied);
  ASSERT_TRUE(store->Flush().ok());
  ASSERT_TRUE(store->TEST_CompactAll().ok());
  ASSERT_TRUE(store->Close().ok());
  store.reset();
  EXPECT_NE(OnDisk("k"), "");
}

TEST_F(IdempotencyTest, MemoryStaysBoundedUnderAMillionKeys) {
  StoreOptions options = Options();
  options.flush_interval_ms = 100;
  options.idempotency_cache_keys = 1000;
  auto store = MustOpen(options);
  constexpr int kKeys = 1000000;
  size_t most = 0;
  for (int i = 0; i < kKeys; ++i) {
    IdempotentOutcome outcome;
    int reply = 0;
    ASSERT_TRUE(store
                    ->IncrementOnce("k" + std::to_string(i), Fp("f"), 204, "c",
                                    1, &outcome, &reply)
                    .ok());
    if (i % 20000 == 0) {
      ASSERT_TRUE(store->Flush().ok());
    }
    if (i % 1000 == 0)
      most = std::max(most, store->IdempotencyRecordsInMemory());
  }
  ASSERT_TRUE(store->Flush().ok());
  // The cache holds its bound; unwritten records never outlive a flush.
  EXPECT_LE(store->IdempotencyRecordsInMemory(), 1000u);
  EXPECT_LE(most, 1000u + 20000u);
  // The first key was evicted long ago: it is read back from RocksDB.
  IdempotentOutcome outcome;
  int reply = 0;
  ASSERT_TRUE(
      store->IncrementOnce("k0", Fp("f"), 204, "c", 1, &outcome, &reply).ok());
  EXPECT_EQ(outcome, IdempotentOutcome::kReplayed);
  EXPECT_EQ(ValueOf(*store, "c"), std::to_string(kKeys));
}

// A durable increment whose sync fails is not acknowledged, and neither is
// its key: once the store recovers, the retry is applied (once), and the
// unsynced record never comes back from the WAL on its own.
TEST_F(IdempotencyTest, FailedDurableSyncForgetsTheKeyWithTheIncrement) {
  FaultEnv faults;
  StoreOptions options = FaultyDurableOptions(&faults);
  auto store = MustOpen(options);
  EXPECT_EQ(Once(store.get(), "other", "1", "o"), IdempotentOutcome::kApplied);
  faults.fs()->SetFault(Fault::kSync);
  IdempotentOutcome outcome;
  int reply = 0;
  Status s = store->IncrementOnce("k", Fp(FingerprintRequest("c7")), 204, "c",
                                  7, &outcome, &reply);
  EXPECT_TRUE(s.IsStorageUnavailable()) << s.ToString();
  faults.fs()->SetFault(Fault::kNone);
  ASSERT_TRUE(test::WaitUntil([&] { return store->Flush(true).ok(); }));
  EXPECT_EQ(ValueOf(*store, "c"), "absent");
  // Neither the record nor the increment is on disk (both may have reached
  // the WAL unsynced).
  ASSERT_TRUE(store->Close().ok());
  store.reset();
  EXPECT_EQ(OnDisk("k"), "");
  store = MustOpen(options);
  EXPECT_EQ(ValueOf(*store, "c"), "absent");
  EXPECT_EQ(Once(store.get(), "k", "7"), IdempotentOutcome::kApplied);
  EXPECT_EQ(Once(store.get(), "k", "7"), IdempotentOutcome::kReplayed);
  EXPECT_EQ(Once(store.get(), "other", "1", "o"), IdempotentOutcome::kReplayed);
  ASSERT_TRUE(store->Close().ok());
  store.reset();
  options.TEST_env = nullptr;
  store = MustOpen(options);
  EXPECT_EQ(ValueOf(*store, "c"), "7");
  EXPECT_EQ(Once(store.get(), "k", "7"), IdempotentOutcome::kReplayed);
}

// Records written before the format had a number hash the request text as
// sent: a retry is still recognised by that hash until the record expires,
// and a record of an unknown format is an error, never a new key.
TEST_F(IdempotencyTest, FormatOneRecordsOnDiskAreStillHonoured) {
  const std::string legacy = FingerprintRequest("POST /counter/c\n5");
  ASSERT_TRUE(MustOpen(Options())->Close().ok());
  {
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(
        rocksdb::DB::Open(rocksdb::Options(), dir_.Sub("db"), &db).ok());
    std::unique_ptr<rocksdb::DB> owned(db);
    const std::string expires = std::to_string(UnixNowSeconds() + 3600);
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), IdempotencyDbKey("old"),
                "{\"h\":\"" + legacy + "\",\"s\":204,\"t\":" + expires + "}")
            .ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), IdempotencyDbKey("future"),
                        "{\"v\":9,\"h\":\"" + legacy +
                            "\",\"s\":204,\"t\":" + expires + "}")
                    .ok());
  }
  auto store = MustOpen(Options());
  RequestFingerprint request;
  request.current =
      FingerprintRequest(CanonicalRequest("POST /counter", {{"c", 5}}));
  request.legacy = legacy;
  IdempotentOutcome outcome;
  int reply = 0;
  ASSERT_TRUE(
      store->IncrementOnce("old", request, 204, "c", 5, &outcome, &reply).ok());
  EXPECT_EQ(outcome, IdempotentOutcome::kReplayed);
  request.legacy = FingerprintRequest("POST /counter/c\n6");
  ASSERT_TRUE(
      store->IncrementOnce("old", request, 204, "c", 6, &outcome, &reply).ok());
  EXPECT_EQ(outcome, IdempotentOutcome::kKeyReused);
  EXPECT_TRUE(
      store->IncrementOnce("future", request, 204, "c", 5, &outcome, &reply)
          .IsCorruption());
  EXPECT_EQ(ValueOf(*store, "c"), "absent");
}

// Keyed increments, batches and durable resets never wait for the disk on
// the caller's thread: with the disk hung, each call returns without an
// answer, and every answer comes once the disk does (a retry of a key
// whose first request awaits its sync gets that request's result).
TEST_F(IdempotencyTest, AsyncWritesReturnBeforeTheDiskAnswers) {
  FaultEnv faults;
  StoreOptions options = Options(/*durable=*/true);
  options.TEST_env = faults.env();
  auto store = MustOpen(options);
  ASSERT_TRUE(store->Increment("r", 5).ok());
  faults.fs()->SetFault(Fault::kStall);
  std::atomic<int> answered{0};
  std::atomic<int> replayed{0};
  auto once = [&](const Status& s, IdempotentOutcome outcome, int reply) {
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_NE(outcome, IdempotentOutcome::kKeyReused);
    EXPECT_EQ(reply, 204);
    if (outcome == IdempotentOutcome::kReplayed) ++replayed;
    ++answered;
  };
  auto plain = [&](const Status& s) {
    EXPECT_TRUE(s.ok()) << s.ToString();
    ++answered;
  };
  store->IncrementOnceAsync("k", Fp("f"), 204, "c", 1, once);
  store->IncrementBatchOnceAsync("kb", Fp("g"), 204, {{"a", 1}, {"b", 2}},
                                 once);
  store->IncrementBatchAsync({{"a", 1}}, plain);
  store->ResetAsync("r", plain);
  store->IncrementOnceAsync("k", Fp("f"), 204, "c", 1, once);
  EXPECT_EQ(answered.load(), 0);
  faults.fs()->SetFault(Fault::kNone);
  ASSERT_TRUE(test::WaitUntil([&] { return answered.load() == 5; }));
  EXPECT_EQ(replayed.load(), 1);
  EXPECT_EQ(ValueOf(*store, "c"), "1");
  EXPECT_EQ(ValueOf(*store, "a"), "2");
  EXPECT_EQ(ValueOf(*store, "b"), "2");
  EXPECT_EQ(ValueOf(*store, "r"), "0");
}

// The asynchronous path keeps the synchronous one's promise: a failed sync
// forgets the key with its increment, and the retry is applied once.
TEST_F(IdempotencyTest, AsyncFailedSyncForgetsTheKeyWithTheIncrement) {
  FaultEnv faults;
  StoreOptions options = FaultyDurableOptions(&faults);
  auto store = MustOpen(options);
  faults.fs()->SetFault(Fault::kSync);
  std::atomic<bool> answered{false};
  Status result;
  store->IncrementOnceAsync("k", Fp("f"), 204, "c", 7,
                            [&](const Status& s, IdempotentOutcome, int) {
                              result = s;
                              answered = true;
                            });
  ASSERT_TRUE(test::WaitUntil([&] { return answered.load(); }));
  EXPECT_TRUE(result.IsStorageUnavailable()) << result.ToString();
  faults.fs()->SetFault(Fault::kNone);
  ASSERT_TRUE(test::WaitUntil([&] { return store->Flush(true).ok(); }));
  EXPECT_EQ(ValueOf(*store, "c"), "absent");
  answered = false;
  IdempotentOutcome outcome = IdempotentOutcome::kKeyReused;
  store->IncrementOnceAsync("k", Fp("f"), 204, "c", 7,
                            [&](const Status& s, IdempotentOutcome o, int) {
                              result = s;
                              outcome = o;
                              answered = true;
                            });
  ASSERT_TRUE(test::WaitUntil([&] { return answered.load(); }));
  EXPECT_TRUE(result.ok()) << result.ToString();
  EXPECT_EQ(outcome, IdempotentOutcome::kApplied);
  EXPECT_EQ(ValueOf(*store, "c"), "7");
}

// A durable node acknowledges a keyed increment only once the key is
// synced with it: after kill -9 the retry is recognised, not counted again.
TEST(IdempotencyNodeTest, RetryAfterKillNineOfADurableNode) {
  test::TempDir dir;
  test::NodeProcessOptions options;
  options.data_dir = dir.Sub("db");
  options.flags = {"--challenge_id=1", "--durable",
                   "--flush_interval_ms=3600000"};
  test::NodeProcess node(options);
  ASSERT_TRUE(node.StartAndWait());
  const std::map<std::string, std::string> key = {{"Idempotency-Key", "k-1"}};
  auto r = test::HttpRequest("POST", node.Url("/counter/c"), "5", key);
  ASSERT_EQ(r.status, 204) << r.body;
  node.Kill9();
  ASSERT_TRUE(node.Restart());
  r = test::HttpRequest("POST", node.Url("/counter/c"), "5", key);
  EXPECT_EQ(r.status, 204) << r.body;
  r = test::HttpRequest("POST", node.Url("/counter/c"), "6", key);
  EXPECT_EQ(r.status, 422) << r.body;
  r = test::HttpRequest("GET", node.Url("/counter/c/value"));
  EXPECT_EQ(r.body, "5");
  EXPECT_EQ(node.Stop(), 0);
}

}  // namespace
}  // namespace dist_counter
