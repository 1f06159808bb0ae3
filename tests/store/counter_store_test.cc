#include "store/counter_store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "store/codec.h"
#include "store/store_test_util.h"
#include "testing/metric_value.h"
#include "util/decimal.h"
#include "util/metrics.h"

namespace dist_counter {

// Shows a PnCounter in test failures as "{actor:+p-n,...}".
void PrintTo(const PnCounter& counter, std::ostream* os) {
  *os << counter.DebugString();
}

namespace {

using test::MustOpen;
using test::ValueOf;

constexpr int kNeverMs = 3600 * 1000;  // a flush interval no test outlives
constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// ---------------------------------------------------------------------------
// Child processes. Some tests need a second process: one that dies like
// `kill -9`, or one that competes for the data dir. The test binary re-runs
// itself (fork + exec, so the child starts clean, without the parent's
// RocksDB threads and locks) with kChildEnv set to "<mode>:<root dir>".
// ChildEnvironment::SetUp, which gtest runs after main() started and before
// any test, then does the child's work and never returns.

constexpr char kChildEnv[] = "DIST_COUNTER_STORE_TEST_CHILD";

constexpr int kChildOk = 0;
constexpr int kChildBusy = 3;
constexpr int kChildOtherError = 4;

StoreOptions ChildOptions(const std::string& root) {
  StoreOptions options;
  options.data_dir = root + "/db";
  options.challenge_id = "1";
  options.flush_interval_ms = kNeverMs;
  return options;
}

// Opens the store, increments "c" by 5, flushes, increments "c" by 7 and
// "lost" by 1 without flushing, writes its identity to <root>/child.txt and
// kills itself with SIGKILL: no Close(), no destructor, no final flush.
[[noreturn]] void CrashChild(const std::string& root) {
  std::unique_ptr<CounterStore> store;
  if (!CounterStore::Open(ChildOptions(root), &store).ok() ||
      !store->Increment("c", 5).ok() || !store->Flush().ok() ||
      !store->Increment("c", 7).ok() || !store->Increment("lost", 1).ok()) {
    _exit(kChildOtherError);
  }
  {
    std::ofstream out(root + "/child.txt");
    out << store->actor_id() << "\n"
        << store->incarnation() << "\n"
        << store->node_id() << "\n";
  }
  std::raise(SIGKILL);
  _exit(kChildOtherError);  // not reached
}

// Default mode: counters "c" (5) and "d" (4) are flushed, "c" is reset and
// flushed, then "c" takes 2 more and "d" is reset without a flush, and the
// child kills itself with SIGKILL.
[[noreturn]] void ResetCrashChild(const std::string& root) {
  std::unique_ptr<CounterStore> store;
  if (!CounterStore::Open(ChildOptions(root), &store).ok() ||
      !store->Increment("c", 5).ok() || !store->Increment("d", 4).ok() ||
      !store->Flush().ok() || !store->Reset("c").ok() || !store->Flush().ok() ||
      !store->Increment("c", 2).ok() || !store->Reset("d").ok()) {
    _exit(kChildOtherError);
  }
  std::raise(SIGKILL);
  _exit(kChildOtherError);  // not reached
}

// Durable mode, never flushed: "c" takes 5, is reset, takes 3; "d" takes 4
// and is reset; then SIGKILL. Every acknowledged change is synced.
[[noreturn]] void DurableResetCrashChild(const std::string& root) {
  StoreOptions options = ChildOptions(root);
  options.durable = true;
  std::unique_ptr<CounterStore> store;
  if (!CounterStore::Open(options, &store).ok() ||
      !store->Increment("c", 5).ok() || !store->Reset("c").ok() ||
      !store->Increment("c", 3).ok() || !store->Increment("d", 4).ok() ||
      !store->Reset("d").ok()) {
    _exit(kChildOtherError);
  }
  std::raise(SIGKILL);
  _exit(kChildOtherError);  // not reached
}

// The descriptor limit LowLimitChild runs under: the default
// max_open_files plus room for the process and RocksDB's other files, far
// below the number of SST files the test creates.
constexpr rlim_t kLowDescriptorLimit = 200;

// Under RLIMIT_NOFILE kLowDescriptorLimit, opens the store with default
// options (reading every counter), increments, and closes it. Exits
// kChildOk if all of that worked.
[[noreturn]] void LowLimitChild(const std::string& root) {
  rlimit limit{kLowDescriptorLimit, kLowDescriptorLimit};
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) _exit(kChildOtherError);
  std::unique_ptr<CounterStore> store;
  Status s = CounterStore::Open(ChildOptions(root), &store);
  if (s.ok()) s = store->Increment("c000000", 1);
  if (s.ok()) s = store->Close();
  if (s.ok()) _exit(kChildOk);
  std::fprintf(stderr, "child: %s\n", s.ToString().c_str());
  _exit(kChildOtherError);
}

// Tries to open the store; exits kChildBusy if it is held elsewhere.
[[noreturn]] void OpenChild(const std::string& root) {
  std::unique_ptr<CounterStore> store;
  Status s = CounterStore::Open(ChildOptions(root), &store);
  if (s.ok()) {
    _exit(store->Close().ok() ? kChildOk : kChildOtherError);
  }
  if (s.IsBusy()) _exit(kChildBusy);
  std::fprintf(stderr, "child: %s\n", s.ToString().c_str());
  _exit(kChildOtherError);
}

class ChildEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* env = std::getenv(kChildEnv);
    if (env == nullptr) return;  // the normal test run
    const std::string arg = env;
    const size_t colon = arg.find(':');
    const std::string mode = arg.substr(0, colon);
    const std::string root = arg.substr(colon + 1);
    if (mode == "crash") CrashChild(root);
    if (mode == "open") OpenChild(root);
    if (mode == "low_limit") LowLimitChild(root);
    if (mode == "reset_crash") ResetCrashChild(root);
    if (mode == "durable_reset_crash") DurableResetCrashChild(root);
    _exit(kChildOtherError);
  }
};

::testing::Environment* const kChildEnvironment =
    ::testing::AddGlobalTestEnvironment(new ChildEnvironment);

// Runs this binary as a child in `mode` on `root` and waits for it. Returns
// the raw wait status, or -1 if it could not be started.
int RunChild(const std::string& mode, const std::string& root) {
  const std::string env_entry =
      std::string(kChildEnv) + "=" + mode + ":" + root;
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  env_strings.push_back(env_entry);
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string self = "/proc/self/exe";
  char* argv[] = {self.data(), nullptr};

  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    execve("/proc/self/exe", argv, envp.data());
    _exit(127);
  }
  int wstatus = 0;
  if (waitpid(pid, &wstatus, 0) != pid) return -1;
  return wstatus;
}

// ---------------------------------------------------------------------------

class CounterStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string base = ::testing::TempDir();
    if (base.empty() || base.back() != '/') base += '/';
    std::string pattern = base + "counter_store_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << pattern;
    root_ = pattern;
    dir_ = root_ + "/db";
  }

  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  StoreOptions Options() const {
    StoreOptions options;
    options.data_dir = dir_;
    options.challenge_id = "1";
    options.flush_interval_ms = kNeverMs;
    return options;
  }

  // Reads `key` from the data dir through a separate read-only RocksDB
  // handle, i.e. what is on disk (WAL included) right now. Returns the
  // RocksDB status (NotFound if the key is not there).
  rocksdb::Status ReadFromDisk(const std::string& key,
                               std::string* value) const {
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s =
        rocksdb::DB::OpenForReadOnly(rocksdb::Options(), dir_, &raw);
    if (!s.ok()) return s;
    std::unique_ptr<rocksdb::DB> db(raw);
    return db->Get(rocksdb::ReadOptions(), key, value);
  }

  // The value of counter `name` as stored on disk, or "absent".
  std::string DiskValueOf(const std::string& name) const {
    std::string json;
    rocksdb::Status s = ReadFromDisk(CounterKey(name), &json);
    if (s.IsNotFound()) return "absent";
    EXPECT_TRUE(s.ok()) << s.ToString();
    PnCounter state;
    Status d = DecodeCounter(json, &state);
    EXPECT_TRUE(d.ok()) << d.ToString();
    return state.ValueString();
  }

  // Writes `key` = `value` with a plain RocksDB handle (store closed).
  void PutRaw(const std::string& key, const std::string& value) const {
    rocksdb::DB* raw = nullptr;
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::Status s = rocksdb::DB::Open(options, dir_, &raw);
    ASSERT_TRUE(s.ok()) << s.ToString();
    std::unique_ptr<rocksdb::DB> db(raw);
    s = db->Put(rocksdb::WriteOptions(), key, value);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_TRUE(db->Close().ok());
  }

  // Deletes `key` with a plain RocksDB handle (store closed).
  rocksdb::Status DeleteFromDisk(const std::string& key) const {
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(rocksdb::Options(), dir_, &raw);
    if (!s.ok()) return s;
    std::unique_ptr<rocksdb::DB> db(raw);
    s = db->Delete(rocksdb::WriteOptions(), key);
    if (!s.ok()) return s;
    return db->Close();
  }

  std::string root_;  // removed in TearDown
  std::string dir_;   // the data dir, inside root_
};

TEST_F(CounterStoreTest, IncrementThenGet) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  EXPECT_EQ(ValueOf(*store, "hits"), "absent");
  ASSERT_TRUE(store->Increment("hits", 2).ok());
  ASSERT_TRUE(store->Increment("hits", -3).ok());
  ASSERT_TRUE(store->Increment("hits", 5).ok());
  EXPECT_EQ(ValueOf(*store, "hits"), "4");
  PnCounter state;
  ASSERT_TRUE(store->Get("hits", &state).ok());
  ASSERT_EQ(state.actors().size(), 1u);
  EXPECT_EQ(state.actors().begin()->first, store->actor_id());
  EXPECT_EQ(state.actors().begin()->second, (ActorCounts{7, 3}));
  EXPECT_EQ(store->size(), 1u);
}

TEST_F(CounterStoreTest, GetOfUnknownCounterLeavesStateUnchanged) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  PnCounter state;
  state.SetActor("sentinel", ActorCounts{1, 1});
  const PnCounter before = state;
  EXPECT_TRUE(store->Get("nope", &state).IsNotFound());
  EXPECT_EQ(state, before);
}

TEST_F(CounterStoreTest, DeltaZeroCreatesTheCounter) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("zero", 0).ok());
  EXPECT_EQ(ValueOf(*store, "zero"), "0");
  EXPECT_EQ(store->size(), 1u);
  std::vector<std::string> names;
  store->List("", "", 10, &names);
  EXPECT_EQ(names, std::vector<std::string>{"zero"});
  // And it survives a restart.
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(Options());
  ASSERT_TRUE(store);
  EXPECT_EQ(ValueOf(*store, "zero"), "0");
}

TEST_F(CounterStoreTest, OverflowIsRefusedAndChangesNothing) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  const int64_t big = std::numeric_limits<int64_t>::max();
  ASSERT_TRUE(store->Increment("c", big).ok());
  ASSERT_TRUE(store->Increment("c", big).ok());
  ASSERT_TRUE(store->Increment("c", 1).ok());  // P = UINT64_MAX
  const uint64_t cursor = store->LatestCursor();
  EXPECT_TRUE(store->Increment("c", 1).IsInvalidArgument());
  EXPECT_EQ(ValueOf(*store, "c"), "18446744073709551615");
  EXPECT_EQ(store->LatestCursor(), cursor);  // not even marked changed
  // Decrements are a separate total and still fit.
  ASSERT_TRUE(store->Increment("c", -5).ok());
  EXPECT_EQ(ValueOf(*store, "c"), "18446744073709551610");
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(Options());
  ASSERT_TRUE(store);
  EXPECT_EQ(ValueOf(*store, "c"), "18446744073709551610");
}

TEST_F(CounterStoreTest, InvalidNamesAreRefused) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  const std::string bad[] = {"", "a/b", std::string("a\0b", 3),
                             std::string(201, 'x')};
  for (const std::string& name : bad) {
    EXPECT_TRUE(store->Increment(name, 1).IsInvalidArgument()) << name;
    EXPECT_TRUE(store->IncrementBatch({{name, 1}}).IsInvalidArgument());
    bool changed = true;
    EXPECT_TRUE(store->Merge(name, PnCounter(), &changed).IsInvalidArgument());
    EXPECT_FALSE(changed);
  }
  EXPECT_EQ(store->size(), 0u);
  EXPECT_TRUE(store->Increment(std::string(200, 'x'), 1).ok());
  EXPECT_TRUE(store->Increment("spaces and ünïcødé", 1).ok());
  EXPECT_EQ(store->size(), 2u);
}

TEST_F(CounterStoreTest, ValuesPersistExactlyAcrossCloseAndReopen) {
  const int64_t big = std::numeric_limits<int64_t>::max();
  {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Increment("a", 4).ok());
    ASSERT_TRUE(store->Increment("b", -9).ok());
    ASSERT_TRUE(store->Increment("big", big).ok());
    ASSERT_TRUE(store->Increment("big", big).ok());
    ASSERT_TRUE(store->Increment("big", 1).ok());
    PnCounter peer;
    peer.SetActor("2.1.peer0001", ActorCounts{kMax, 0});
    ASSERT_TRUE(store->Merge("big", peer, nullptr).ok());
    ASSERT_TRUE(store->Close().ok());
  }
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  EXPECT_EQ(ValueOf(*store, "a"), "4");
  EXPECT_EQ(ValueOf(*store, "b"), "-9");
  EXPECT_EQ(ValueOf(*store, "big"), "36893488147419103230");  // 2*(2^64-1)
  EXPECT_EQ(store->size(), 3u);
  // Increments after the restart add to what was there.
  ASSERT_TRUE(store->Increment("a", 1).ok());
  EXPECT_EQ(ValueOf(*store, "a"), "5");
}

TEST_F(CounterStoreTest, DestructorClosesAndFlushes) {
  {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Increment("a", 3).ok());
  }  // no Close(): the destructor must do it
  EXPECT_EQ(DiskValueOf("a"), "3");
}

TEST_F(CounterStoreTest, CleanReopenKeepsIncarnationAndActor) {
  std::string actor;
  uint64_t incarnation = 0;
  for (int i = 0; i < 3; ++i) {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    if (i == 0) {
      actor = store->actor_id();
      incarnation = store->incarnation();
    }
    EXPECT_EQ(store->incarnation(), incarnation);
    EXPECT_EQ(store->actor_id(), actor);
    EXPECT_EQ(store->node_id().size(), 8u);
    EXPECT_EQ(store->challenge_id(), "1");
    EXPECT_EQ(store->actor_id(), "1." + std::to_string(store->incarnation()) +
                                     "." + store->node_id());
    ASSERT_TRUE(store->Increment("c", 1).ok());
    ASSERT_TRUE(store->Close().ok());
  }
  // Clean stops add no actors.
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  PnCounter state;
  ASSERT_TRUE(store->Get("c", &state).ok());
  EXPECT_EQ(state.actors().size(), 1u);
  EXPECT_EQ(state.ValueString(), "3");
}

TEST_F(CounterStoreTest, OpenAfterUncleanStopRaisesIncarnation) {
  std::string node_id;
  uint64_t last_incarnation = 0;
  std::vector<std::string> actors;
  for (int i = 0; i < 3; ++i) {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    EXPECT_GT(store->incarnation(), last_incarnation);
    last_incarnation = store->incarnation();
    if (i == 0) node_id = store->node_id();
    EXPECT_EQ(store->node_id(), node_id);
    for (const std::string& old : actors) EXPECT_NE(store->actor_id(), old);
    actors.push_back(store->actor_id());
    ASSERT_TRUE(store->Increment("c", 1).ok());
    ASSERT_TRUE(store->Close().ok());
    // Forget the clean stop, as if the process had died after its flush.
    ASSERT_TRUE(DeleteFromDisk(std::string(kMetaCleanStopKey)).ok());
  }
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  PnCounter state;
  ASSERT_TRUE(store->Get("c", &state).ok());
  EXPECT_EQ(state.actors().size(), 3u);
  EXPECT_EQ(state.ValueString(), "3");
}

// Actor id of node `node_id` (challenge id "1") at `incarnation`.
std::string ActorAt(uint64_t incarnation, const std::string& node_id) {
  return "1." + std::to_string(incarnation) + "." + node_id;
}

TEST_F(CounterStoreTest, OpenStartsAbovePlantedFutureIncarnations) {
  uint64_t last = 0;
  std::string node_id;
  {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Increment("c", 2).ok());
    last = store->incarnation();
    node_id = store->node_id();
    ASSERT_TRUE(store->Close().ok());
  }
  // As if the process had died: the next start would take last + 1, which
  // an old peer planted (with a full P) along with last + 3.
  ASSERT_TRUE(DeleteFromDisk(std::string(kMetaCleanStopKey)).ok());
  PnCounter planted;
  planted.SetActor(ActorAt(last + 1, node_id), ActorCounts{kMax, 0});
  planted.SetActor(ActorAt(last + 3, node_id), ActorCounts{5, 0});
  ASSERT_NO_FATAL_FAILURE(
      PutRaw(CounterKey("planted"), EncodeCounter(planted)));
  uint64_t raised = 0;
  {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    EXPECT_EQ(store->node_id(), node_id);
    EXPECT_EQ(store->incarnation(), last + 4);
    raised = store->incarnation();
    Status s = store->Increment("planted", 1);
    EXPECT_TRUE(s.ok()) << s.ToString();
    s = store->Increment("c", 1);
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(ValueOf(*store, "c"), "3");
    PnCounter state;
    ASSERT_TRUE(store->Get("planted", &state).ok());
    EXPECT_EQ(state.actors().size(), 3u);
    EXPECT_EQ(state.actors().at(store->actor_id()).p, 1u);
    ASSERT_TRUE(store->Close().ok());
  }
  // The raised incarnation is on disk: a clean restart keeps it.
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  EXPECT_EQ(store->incarnation(), raised);
}

TEST_F(CounterStoreTest, OnlyThisNodesUnusedIncarnationsRaiseTheNext) {
  uint64_t last = 0;
  std::string node_id;
  {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Increment("c", 1).ok());
    last = store->incarnation();
    node_id = store->node_id();
    ASSERT_TRUE(store->Close().ok());  // clean: `last` goes on
  }
  const std::string other_node =
      node_id == "0000abcd" ? "0000abce" : "0000abcd";
  const std::string far = std::to_string(last + 100);
  PnCounter lookalikes;
  lookalikes.SetActor(ActorAt(last, node_id), ActorCounts{1, 0});  // ours
  lookalikes.SetActor("11." + far + "." + node_id, ActorCounts{1, 0});
  lookalikes.SetActor("x.1." + far + "." + node_id, ActorCounts{1, 0});
  lookalikes.SetActor(ActorAt(last + 100, other_node), ActorCounts{1, 0});
  lookalikes.SetActor("1.0" + far + "." + node_id, ActorCounts{1, 0});
  lookalikes.SetActor("1.+" + far + "." + node_id, ActorCounts{1, 0});
  lookalikes.SetActor("1." + far + "0." + node_id + "0", ActorCounts{1, 0});
  ASSERT_NO_FATAL_FAILURE(
      PutRaw(CounterKey("lookalikes"), EncodeCounter(lookalikes)));
  {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    EXPECT_EQ(store->incarnation(), last);
    ASSERT_TRUE(store->Close().ok());
  }
  // One planted above a clean stop's incarnation does count.
  PnCounter planted;
  planted.SetActor(ActorAt(last + 2, node_id), ActorCounts{kMax, 0});
  ASSERT_NO_FATAL_FAILURE(
      PutRaw(CounterKey("planted"), EncodeCounter(planted)));
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  EXPECT_EQ(store->incarnation(), last + 3);
}

TEST_F(CounterStoreTest, PlantedLastIncarnationGivesANewNodeId) {
  std::string node_id;
  {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    node_id = store->node_id();
    ASSERT_TRUE(store->Close().ok());
  }
  PnCounter planted;
  planted.SetActor(ActorAt(kMax, node_id), ActorCounts{kMax, 0});
  ASSERT_NO_FATAL_FAILURE(
      PutRaw(CounterKey("planted"), EncodeCounter(planted)));
  std::string new_node_id;
  {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    new_node_id = store->node_id();
    EXPECT_NE(new_node_id, node_id);
    EXPECT_EQ(new_node_id.size(), 8u);
    EXPECT_EQ(store->incarnation(), 1u);
    Status s = store->Increment("planted", 1);
    EXPECT_TRUE(s.ok()) << s.ToString();
    ASSERT_TRUE(store->Close().ok());
  }
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  EXPECT_EQ(store->node_id(), new_node_id);
  EXPECT_EQ(store->incarnation(), 1u);
}

TEST_F(CounterStoreTest, DifferentDirsGetDifferentNodeIds) {
  auto a = MustOpen(Options());
  ASSERT_TRUE(a);
  StoreOptions other = Options();
  other.data_dir = root_ + "/db2";
  auto b = MustOpen(other);
  ASSERT_TRUE(b);
  // Same challenge id: the actors must still differ (node ids are random,
  // 32 bits; a clash here would be a one in four billion event).
  EXPECT_NE(a->node_id(), b->node_id());
  EXPECT_NE(a->actor_id(), b->actor_id());
}

TEST_F(CounterStoreTest, SecondOpenOfAnOpenDirIsBusy) {
  auto first = MustOpen(Options());
  ASSERT_TRUE(first);
  std::unique_ptr<CounterStore> second;
  Status s = CounterStore::Open(Options(), &second);
  EXPECT_TRUE(s.IsBusy()) << s.ToString();
  EXPECT_EQ(second, nullptr);
  // The first is unharmed, and the dir opens again once it is closed.
  ASSERT_TRUE(first->Increment("a", 1).ok());
  ASSERT_TRUE(first->Close().ok());
  auto third = MustOpen(Options());
  ASSERT_TRUE(third);
  EXPECT_EQ(ValueOf(*third, "a"), "1");
}

TEST_F(CounterStoreTest, OpenFromAnotherProcessIsBusy) {
  auto store = MustOpen(ChildOptions(root_));
  ASSERT_TRUE(store);
  const int wstatus = RunChild("open", root_);
  ASSERT_TRUE(WIFEXITED(wstatus)) << wstatus;
  EXPECT_EQ(WEXITSTATUS(wstatus), kChildBusy);
  // Once the dir is free the same child opens it.
  ASSERT_TRUE(store->Close().ok());
  const int again = RunChild("open", root_);
  ASSERT_TRUE(WIFEXITED(again)) << again;
  EXPECT_EQ(WEXITSTATUS(again), kChildOk);
}

TEST_F(CounterStoreTest, OpenFailureUnrelatedToTheLockIsNotBusy) {
  // A data dir that cannot be created. Its path mentions "lock", which
  // must not be mistaken for the LOCK file being held.
  std::ofstream(root_ + "/block").put('x');
  StoreOptions options = Options();
  options.data_dir = root_ + "/block/db";
  std::unique_ptr<CounterStore> store;
  Status s = CounterStore::Open(options, &store);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_FALSE(s.IsBusy());
}

TEST_F(CounterStoreTest, OpenRequiresDataDirAndChallengeId) {
  std::unique_ptr<CounterStore> store;
  StoreOptions options = Options();
  options.data_dir.clear();
  EXPECT_TRUE(CounterStore::Open(options, &store).IsInvalidArgument());
  options = Options();
  options.challenge_id.clear();
  EXPECT_TRUE(CounterStore::Open(options, &store).IsInvalidArgument());
  EXPECT_EQ(store, nullptr);
}

TEST_F(CounterStoreTest, OpenRefusesAnUnboundedMaxOpenFiles) {
  std::unique_ptr<CounterStore> store;
  StoreOptions options = Options();
  options.max_open_files = -1;
  EXPECT_TRUE(CounterStore::Open(options, &store).IsInvalidArgument());
  options.max_open_files = 0;
  EXPECT_TRUE(CounterStore::Open(options, &store).IsInvalidArgument());
  EXPECT_EQ(store, nullptr);
}

// The number of this process's descriptors open on a file in `dir` whose
// name ends in `suffix`.
int OpenDescriptorsIn(const std::string& dir, const std::string& suffix) {
  int count = 0;
  for (const auto& fd : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const std::string target =
        std::filesystem::read_symlink(fd.path(), ec).string();
    if (ec || target.compare(0, dir.size() + 1, dir + "/") != 0) continue;
    if (target.size() >= suffix.size() &&
        target.compare(target.size() - suffix.size(), suffix.size(), suffix) ==
            0) {
      ++count;
    }
  }
  return count;
}

TEST_F(CounterStoreTest, OpenStoreKeepsItsSstDescriptorsBounded) {
  // A data dir of far more SST files than the store may keep open, made
  // with a plain RocksDB handle and tiny files.
  constexpr int kCounters = 4000;
  const int bound = StoreOptions().max_open_files;
  ASSERT_GT(bound, 0);
  ASSERT_LE(bound, 128);
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    options.write_buffer_size = 64 << 10;
    options.target_file_size_base = 4 << 10;
    options.compression = rocksdb::kNoCompression;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    PnCounter state;
    for (int a = 0; a < 20; ++a) {
      ASSERT_TRUE(state.Add("peer." + std::to_string(a) + ".0000000a", 1).ok());
    }
    for (int i = 0; i < kCounters; ++i) {
      char name[16];
      std::snprintf(name, sizeof(name), "c%06d", i);
      ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), CounterKey(name),
                          EncodeCounter(state))
                      .ok());
    }
    // Rewrites everything into files of the target size.
    rocksdb::CompactRangeOptions compact;
    compact.bottommost_level_compaction =
        rocksdb::BottommostLevelCompaction::kForce;
    ASSERT_TRUE(db->CompactRange(compact, nullptr, nullptr).ok());
    ASSERT_TRUE(db->Close().ok());
  }
  int sst_files = 0;
  for (const auto& file : std::filesystem::directory_iterator(dir_)) {
    if (file.path().extension() == ".sst") ++sst_files;
  }
  ASSERT_GT(sst_files, 2 * bound);

  // Open() reads every counter, so every SST file is visited.
  StoreOptions options = Options();
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->size(), static_cast<size_t>(kCounters));
  EXPECT_EQ(ValueOf(*store, "c003999"), "20");
  const int open_ssts = OpenDescriptorsIn(dir_, ".sst");
  EXPECT_GT(open_ssts, 0);
  EXPECT_LE(open_ssts, bound) << sst_files << " SST files in the data dir";
  // Everything RocksDB holds in the data dir (WAL, MANIFEST, LOCK too).
  EXPECT_LE(OpenDescriptorsIn(dir_, ""), bound + 10);
  ASSERT_TRUE(store->Increment("c000000", 1).ok());
  ASSERT_TRUE(store->Close().ok());
  EXPECT_EQ(OpenDescriptorsIn(dir_, ""), 0);

  // The same store works in a process allowed far fewer descriptors than
  // there are SST files.
  ASSERT_GT(static_cast<rlim_t>(sst_files), kLowDescriptorLimit);
  const int wstatus = RunChild("low_limit", root_);
  ASSERT_TRUE(WIFEXITED(wstatus)) << wstatus;
  EXPECT_EQ(WEXITSTATUS(wstatus), kChildOk);
}

TEST_F(CounterStoreTest, FlushTimerWritesWithoutFlush) {
  StoreOptions options = Options();
  options.flush_interval_ms = 50;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("t", 3).ok());
  // No Flush(), no Close(): only the timer can put it on disk. Poll with a
  // generous deadline; this checks that it happens, not how fast.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::string on_disk = DiskValueOf("t");
  while (on_disk == "absent" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    on_disk = DiskValueOf("t");
  }
  EXPECT_EQ(on_disk, "3");
}

TEST_F(CounterStoreTest, WithoutFlushNothingIsOnDiskUntilClose) {
  auto store = MustOpen(Options());  // flush interval of an hour
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("t", 3).ok());
  EXPECT_EQ(DiskValueOf("t"), "absent");
  // The identity is on disk already, synced at Open.
  std::string incarnation;
  ASSERT_TRUE(
      ReadFromDisk(std::string(kMetaIncarnationKey), &incarnation).ok());
  EXPECT_EQ(incarnation, std::to_string(store->incarnation()));
  ASSERT_TRUE(store->Close().ok());
  EXPECT_EQ(DiskValueOf("t"), "3");
}

TEST_F(CounterStoreTest, FlushWritesDirtyCountersAsCompactJson) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("t", 3).ok());
  ASSERT_TRUE(store->Increment("t", -1).ok());
  ASSERT_TRUE(store->Flush().ok());
  std::string json;
  ASSERT_TRUE(ReadFromDisk("counter/t", &json).ok());
  EXPECT_EQ(json, "{\"" + store->actor_id() + "\":{\"p\":3,\"n\":1}}");
  std::string format;
  ASSERT_TRUE(ReadFromDisk("meta/format", &format).ok());
  EXPECT_EQ(format, "1");
  std::string node_id;
  ASSERT_TRUE(ReadFromDisk("meta/node_id", &node_id).ok());
  EXPECT_EQ(node_id, store->node_id());
  std::string challenge_id;
  ASSERT_TRUE(ReadFromDisk("meta/challenge_id", &challenge_id).ok());
  EXPECT_EQ(challenge_id, "1");
}

TEST_F(CounterStoreTest, DurableIncrementIsOnDiskWhenItReturns) {
  StoreOptions options = Options();  // flush interval of an hour
  options.durable = true;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("d", 3).ok());
  EXPECT_EQ(DiskValueOf("d"), "3");
  ASSERT_TRUE(store->Increment("d", -1).ok());
  EXPECT_EQ(DiskValueOf("d"), "2");
  ASSERT_TRUE(store->IncrementBatch({{"d", 5}, {"e", 1}}).ok());
  EXPECT_EQ(DiskValueOf("d"), "7");
  EXPECT_EQ(DiskValueOf("e"), "1");
}

TEST_F(CounterStoreTest, KillNineRestartKeepsActorSafety) {
  const int wstatus = RunChild("crash", root_);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited with " << wstatus;
  ASSERT_EQ(WTERMSIG(wstatus), SIGKILL);
  std::string old_actor, old_node_id;
  uint64_t old_incarnation = 0;
  {
    std::ifstream in(root_ + "/child.txt");
    ASSERT_TRUE(in >> old_actor >> old_incarnation >> old_node_id);
  }

  auto store = MustOpen(ChildOptions(root_));
  ASSERT_TRUE(store);
  // The flushed increment survived, the unflushed ones are gone.
  EXPECT_EQ(ValueOf(*store, "c"), "5");
  EXPECT_EQ(ValueOf(*store, "lost"), "absent");
  // A new actor, so a peer's copy of the old one cannot hide new counts.
  EXPECT_GT(store->incarnation(), old_incarnation);
  EXPECT_NE(store->actor_id(), old_actor);
  EXPECT_EQ(store->node_id(), old_node_id);

  // A peer had pulled "c" before the crash, with the old actor at 12.
  ASSERT_TRUE(store->Increment("c", 1).ok());
  PnCounter peer;
  peer.SetActor(old_actor, ActorCounts{12, 0});
  bool changed = false;
  ASSERT_TRUE(store->Merge("c", peer, &changed).ok());
  EXPECT_TRUE(changed);
  // 12 from the old incarnation (via the peer) + 1 made after the restart.
  EXPECT_EQ(ValueOf(*store, "c"), "13");
  PnCounter state;
  ASSERT_TRUE(store->Get("c", &state).ok());
  EXPECT_EQ(state.actors().at(old_actor), (ActorCounts{12, 0}));
  EXPECT_EQ(state.actors().at(store->actor_id()), (ActorCounts{1, 0}));
}

TEST_F(CounterStoreTest, IncrementBatchAppliesEverything) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("a", 10).ok());
  ASSERT_TRUE(
      store->IncrementBatch({{"a", 1}, {"b", -2}, {"a", 3}, {"c", 0}}).ok());
  EXPECT_EQ(ValueOf(*store, "a"), "14");
  EXPECT_EQ(ValueOf(*store, "b"), "-2");
  EXPECT_EQ(ValueOf(*store, "c"), "0");
  EXPECT_TRUE(store->IncrementBatch({}).ok());
  EXPECT_EQ(store->size(), 3u);
}

TEST_F(CounterStoreTest, IncrementBatchIsAllOrNothing) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  const int64_t big = std::numeric_limits<int64_t>::max();
  ASSERT_TRUE(store->Increment("full", big).ok());
  ASSERT_TRUE(store->Increment("full", big).ok());  // P = UINT64_MAX - 1
  ASSERT_TRUE(store->Increment("other", 5).ok());
  const uint64_t cursor = store->LatestCursor();

  // One overflowing entry: nothing applies, not even earlier entries.
  Status s = store->IncrementBatch({{"other", 1}, {"new", 1}, {"full", 2}});
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find("full"), std::string::npos) << s.message();
  // Repeated names are summed, so two entries that each fit can overflow.
  s = store->IncrementBatch({{"other", 1}, {"full", 1}, {"full", 1}});
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  // An invalid name anywhere: nothing applies.
  s = store->IncrementBatch({{"other", 1}, {"bad/name", 1}});
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();

  EXPECT_EQ(ValueOf(*store, "other"), "5");
  EXPECT_EQ(ValueOf(*store, "full"), "18446744073709551614");
  EXPECT_EQ(ValueOf(*store, "new"), "absent");
  EXPECT_EQ(store->size(), 2u);
  EXPECT_EQ(store->LatestCursor(), cursor);

  // The same entries minus the overflow go through.
  ASSERT_TRUE(store->IncrementBatch({{"other", 1}, {"full", 1}}).ok());
  EXPECT_EQ(ValueOf(*store, "full"), "18446744073709551615");
}

TEST_F(CounterStoreTest, MergeCreatesRaisesAndIsIdempotent) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  PnCounter peer;
  peer.SetActor("2.1.peer0001", ActorCounts{5, 1});

  bool changed = false;
  ASSERT_TRUE(store->Merge("m", peer, &changed).ok());
  EXPECT_TRUE(changed);
  EXPECT_EQ(ValueOf(*store, "m"), "4");

  // The same state again: nothing changes, not even the cursor.
  const uint64_t cursor = store->LatestCursor();
  changed = true;
  ASSERT_TRUE(store->Merge("m", peer, &changed).ok());
  EXPECT_FALSE(changed);
  EXPECT_EQ(store->LatestCursor(), cursor);

  // An older state of the peer never lowers anything.
  PnCounter older;
  older.SetActor("2.1.peer0001", ActorCounts{3, 0});
  ASSERT_TRUE(store->Merge("m", older, &changed).ok());
  EXPECT_FALSE(changed);
  EXPECT_EQ(ValueOf(*store, "m"), "4");

  // Local increments and a newer peer state combine.
  ASSERT_TRUE(store->Increment("m", 10).ok());
  PnCounter newer;
  newer.SetActor("2.1.peer0001", ActorCounts{6, 1});
  ASSERT_TRUE(store->Merge("m", newer, &changed).ok());
  EXPECT_TRUE(changed);
  EXPECT_EQ(ValueOf(*store, "m"), "15");

  // A peer's stale copy of our own actor does not lower it either.
  PnCounter stale;
  stale.SetActor(store->actor_id(), ActorCounts{2, 0});
  ASSERT_TRUE(store->Merge("m", stale, &changed).ok());
  EXPECT_FALSE(changed);
  EXPECT_EQ(ValueOf(*store, "m"), "15");

  // Changed may be null; merged state is persisted by Close.
  ASSERT_TRUE(store->Merge("n", peer, nullptr).ok());
  ASSERT_TRUE(store->Close().ok());
  EXPECT_EQ(DiskValueOf("m"), "15");
  EXPECT_EQ(DiskValueOf("n"), "4");
}

TEST_F(CounterStoreTest, ListFiltersByPrefixAndPages) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  for (const char* name : {"b", "a", "ab", "abc", "b1", "c", "ac"}) {
    ASSERT_TRUE(store->Increment(name, 1).ok());
  }
  auto list = [&](const std::string& prefix, const std::string& after,
                  size_t limit) {
    std::vector<std::string> names;
    store->List(prefix, after, limit, &names);
    return names;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(list("", "", 100), (V{"a", "ab", "abc", "ac", "b", "b1", "c"}));
  EXPECT_EQ(list("", "", 3), (V{"a", "ab", "abc"}));
  EXPECT_EQ(list("", "abc", 3), (V{"ac", "b", "b1"}));
  EXPECT_EQ(list("", "b1", 3), (V{"c"}));
  EXPECT_EQ(list("", "c", 3), V{});
  EXPECT_EQ(list("", "", 0), V{});
  EXPECT_EQ(list("a", "", 100), (V{"a", "ab", "abc", "ac"}));
  EXPECT_EQ(list("ab", "", 100), (V{"ab", "abc"}));
  EXPECT_EQ(list("a", "ab", 100), (V{"abc", "ac"}));
  EXPECT_EQ(list("a", "ab", 1), (V{"abc"}));
  EXPECT_EQ(list("b", "", 100), (V{"b", "b1"}));
  EXPECT_EQ(list("b", "a", 100), (V{"b", "b1"}));  // start_after < prefix
  EXPECT_EQ(list("a", "b", 100), V{});             // start_after past prefix
  EXPECT_EQ(list("z", "", 100), V{});
  // Appends, does not replace.
  std::vector<std::string> names = {"keep"};
  store->List("c", "", 10, &names);
  EXPECT_EQ(names, (V{"keep", "c"}));
  // Paging through everything with limit 2 visits each name once.
  V all;
  std::string after;
  for (;;) {
    V page = list("", after, 2);
    if (page.empty()) break;
    all.insert(all.end(), page.begin(), page.end());
    after = page.back();
  }
  EXPECT_EQ(all, list("", "", 100));
}

// Names of `changes`, in order.
std::vector<std::string> Names(const std::vector<CounterChange>& changes) {
  std::vector<std::string> names;
  for (const CounterChange& c : changes) names.push_back(c.name);
  return names;
}

TEST_F(CounterStoreTest, ChangesSinceZeroReturnsEverything) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  EXPECT_EQ(store->LatestCursor(), 0u);
  std::vector<CounterChange> changes;
  uint64_t next = 99;
  store->ChangesSince(0, 100, &changes, &next);
  EXPECT_TRUE(changes.empty());
  EXPECT_EQ(next, 0u);

  ASSERT_TRUE(store->Increment("x", 1).ok());
  ASSERT_TRUE(store->Increment("y", 2).ok());
  ASSERT_TRUE(store->Increment("z", 3).ok());
  store->ChangesSince(0, 100, &changes, &next);
  ASSERT_EQ(Names(changes), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(changes[1].state.ValueString(), "2");
  EXPECT_EQ(next, store->LatestCursor());

  // Nothing new after the latest cursor.
  std::vector<CounterChange> none;
  uint64_t after = 0;
  store->ChangesSince(next, 100, &none, &after);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(after, next);
}

TEST_F(CounterStoreTest, ChangesSincePagesAndShowsEachCounterOnceAtItsLast) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  for (const char* name : {"a", "b", "c", "d"}) {
    ASSERT_TRUE(store->Increment(name, 1).ok());
  }
  ASSERT_TRUE(store->Increment("b", 5).ok());  // b moves to the end

  std::vector<CounterChange> page;
  uint64_t next = 0;
  store->ChangesSince(0, 2, &page, &next);
  ASSERT_EQ(Names(page), (std::vector<std::string>{"a", "c"}));
  std::vector<CounterChange> page2;
  store->ChangesSince(next, 2, &page2, &next);
  ASSERT_EQ(Names(page2), (std::vector<std::string>{"d", "b"}));
  EXPECT_EQ(page2[1].state.ValueString(), "6");
  EXPECT_EQ(next, store->LatestCursor());
  std::vector<CounterChange> page3;
  store->ChangesSince(next, 2, &page3, &next);
  EXPECT_TRUE(page3.empty());

  // A change after the cursor shows up in the next pull; a refused
  // increment and a merge that changes nothing do not.
  const uint64_t cursor = next;
  ASSERT_TRUE(store->Increment("a", 1).ok());
  EXPECT_FALSE(store->Increment("a/", 1).ok());
  PnCounter covered;
  ASSERT_TRUE(store->Get("c", &covered).ok());
  ASSERT_TRUE(store->Merge("c", covered, nullptr).ok());
  std::vector<CounterChange> page4;
  store->ChangesSince(cursor, 100, &page4, &next);
  ASSERT_EQ(Names(page4), (std::vector<std::string>{"a"}));
  EXPECT_EQ(page4[0].state.ValueString(), "2");
}

TEST_F(CounterStoreTest, ChangesSinceBogusCursorRestartsFromZero) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("x", 1).ok());
  ASSERT_TRUE(store->Increment("y", 1).ok());
  std::vector<CounterChange> changes;
  uint64_t next = 0;
  store->ChangesSince(store->LatestCursor() + 1000, 100, &changes, &next);
  ASSERT_EQ(Names(changes), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(next, store->LatestCursor());
}

TEST_F(CounterStoreTest, ChangesSinceZeroAfterReopenListsStoredCounters) {
  {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Increment("p", 1).ok());
    ASSERT_TRUE(store->Increment("q", 2).ok());
    ASSERT_TRUE(store->Close().ok());
  }
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  std::vector<CounterChange> changes;
  uint64_t next = 0;
  store->ChangesSince(0, 100, &changes, &next);
  ASSERT_EQ(Names(changes), (std::vector<std::string>{"p", "q"}));
  EXPECT_EQ(changes[1].state.ValueString(), "2");
}

TEST_F(CounterStoreTest, PeersPersistAcrossReopen) {
  using V = std::vector<std::string>;
  {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    EXPECT_EQ(store->Peers(), V{});
    ASSERT_TRUE(store->SetPeers({"node1:7777", "node2"}).ok());
    EXPECT_EQ(store->Peers(), (V{"node1:7777", "node2"}));
    ASSERT_TRUE(store->SetPeers({"node3:9999"}).ok());  // replaces
    EXPECT_EQ(store->Peers(), (V{"node3:9999"}));
    ASSERT_TRUE(store->Close().ok());
  }
  std::string on_disk;
  ASSERT_TRUE(ReadFromDisk(std::string(kMetaActorsKey), &on_disk).ok());
  EXPECT_EQ(on_disk, R"(["node3:9999"])");
  {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    EXPECT_EQ(store->Peers(), (V{"node3:9999"}));
    ASSERT_TRUE(store->SetPeers({}).ok());
    ASSERT_TRUE(store->Close().ok());
  }
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  EXPECT_EQ(store->Peers(), V{});
}

TEST_F(CounterStoreTest, CloseIsIdempotentAndLaterWritesFail) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("a", 1).ok());
  EXPECT_TRUE(store->Close().ok());
  EXPECT_TRUE(store->Close().ok());
  EXPECT_TRUE(store->Increment("a", 1).IsIOError());
  EXPECT_TRUE(store->IncrementBatch({{"a", 1}}).IsIOError());
  EXPECT_TRUE(store->Merge("a", PnCounter(), nullptr).IsIOError());
  EXPECT_TRUE(store->SetPeers({"x"}).IsIOError());
  EXPECT_TRUE(store->Flush().IsIOError());
  // Reads still answer from memory.
  EXPECT_EQ(ValueOf(*store, "a"), "1");
  store.reset();  // the destructor after Close is harmless
  EXPECT_EQ(DiskValueOf("a"), "1");
}

// Runs `threads` threads that each, `per_thread` times, add 1 to one of
// k0..k2, add +2 or -1 (alternately) to "shared", and add 1 to a counter of
// their own, t<thread>-<i % 50>, created on first use (so threads insert
// counters concurrently). Returns the number of failed calls.
int HammerIncrements(CounterStore* store, int threads, int per_thread) {
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([store, t, per_thread, &failures] {
      for (int i = 0; i < per_thread; ++i) {
        const std::string name = "k" + std::to_string((t + i) % 3);
        if (!store->Increment(name, 1).ok()) ++failures;
        if (!store->Increment("shared", (i % 2 == 0) ? 2 : -1).ok()) {
          ++failures;
        }
        const std::string own =
            "t" + std::to_string(t) + "-" + std::to_string(i % 50);
        if (!store->Increment(own, 1).ok()) ++failures;
      }
    });
  }
  for (auto& w : workers) w.join();
  return failures.load();
}

// Checks what HammerIncrements(store, threads, per_thread) must have left.
void ExpectHammered(const CounterStore& store, int threads, int per_thread) {
  __int128 k_sum = 0;
  for (const char* name : {"k0", "k1", "k2"}) {
    PnCounter state;
    if (store.Get(name, &state).ok()) k_sum += state.Value();
  }
  EXPECT_EQ(Int128ToString(k_sum), std::to_string(threads * per_thread));
  PnCounter shared;
  ASSERT_TRUE(store.Get("shared", &shared).ok());
  // Per thread: per_thread / 2 times +2 and per_thread / 2 times -1.
  EXPECT_EQ(shared.ValueString(), std::to_string(threads * per_thread / 2));
  for (int t = 0; t < threads; ++t) {
    __int128 own_sum = 0;
    std::vector<std::string> names;
    store.List("t" + std::to_string(t) + "-", "", 1000, &names);
    EXPECT_EQ(names.size(), 50u);
    for (const std::string& name : names) {
      PnCounter state;
      ASSERT_TRUE(store.Get(name, &state).ok());
      own_sum += state.Value();
    }
    EXPECT_EQ(Int128ToString(own_sum), std::to_string(per_thread)) << t;
  }
  EXPECT_EQ(store.size(), 4u + 50u * threads);
}

TEST_F(CounterStoreTest, ConcurrentIncrementsSumExactly) {
  StoreOptions options = Options();
  options.flush_interval_ms = 1;  // the flusher runs throughout
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  constexpr int kThreads = 8, kPerThread = 2000;
  EXPECT_EQ(HammerIncrements(store.get(), kThreads, kPerThread), 0);
  ExpectHammered(*store, kThreads, kPerThread);
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(options);
  ASSERT_TRUE(store);
  ExpectHammered(*store, kThreads, kPerThread);
}

TEST_F(CounterStoreTest, ConcurrentDurableIncrementsSumExactlyOnDisk) {
  StoreOptions options = Options();
  options.durable = true;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  constexpr int kThreads = 8, kPerThread = 100;
  EXPECT_EQ(HammerIncrements(store.get(), kThreads, kPerThread), 0);
  ExpectHammered(*store, kThreads, kPerThread);
  // Every acknowledged increment is on disk before Close.
  EXPECT_EQ(DiskValueOf("shared"), std::to_string(kThreads * kPerThread / 2));
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(options);
  ASSERT_TRUE(store);
  ExpectHammered(*store, kThreads, kPerThread);
}

TEST_F(CounterStoreTest, MetricsCountIncrementsFlushesAndMerges) {
  Metrics metrics;  // declared first: must outlive the store
  StoreOptions options = Options();
  options.metrics = &metrics;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  auto counter = [&metrics](const char* name) {
    return metrics.Counter(name)->load();
  };
  auto gauge = [&metrics](const char* name) {
    return metrics.Gauge(name)->load();
  };
  ASSERT_TRUE(store->Increment("a", 1).ok());
  ASSERT_TRUE(store->Increment("a", 2).ok());
  ASSERT_TRUE(store->IncrementBatch({{"b", 1}, {"c", 1}}).ok());
  EXPECT_FALSE(store->Increment("bad/name", 1).ok());
  EXPECT_EQ(counter("dist_counter_increments_total"), 4u);
  EXPECT_EQ(gauge("dist_counter_counters"), 3);
  EXPECT_EQ(counter("dist_counter_flushes_total"), 0u);

  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(counter("dist_counter_flushes_total"), 1u);
  EXPECT_EQ(counter("dist_counter_flushed_counters_total"), 3u);
  EXPECT_EQ(gauge("dist_counter_last_flush_batch_size"), 3);
  // Nothing dirty: nothing written.
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(counter("dist_counter_flushes_total"), 1u);
  ASSERT_TRUE(store->Increment("a", 1).ok());
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(counter("dist_counter_flushes_total"), 2u);
  EXPECT_EQ(counter("dist_counter_flushed_counters_total"), 4u);
  EXPECT_EQ(gauge("dist_counter_last_flush_batch_size"), 1);

  PnCounter peer;
  peer.SetActor("2.1.peer0001", ActorCounts{3, 0});
  ASSERT_TRUE(store->Merge("d", peer, nullptr).ok());
  ASSERT_TRUE(store->Merge("d", peer, nullptr).ok());  // no change
  EXPECT_EQ(counter("dist_counter_merge_changes_total"), 1u);
  EXPECT_EQ(gauge("dist_counter_counters"), 4);

  const std::string text = metrics.Render();
  EXPECT_NE(text.find("# TYPE dist_counter_flushes_total counter\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(test::MetricValue(text, "dist_counter_flushes_total"), 2) << text;
  EXPECT_EQ(test::MetricValue(text, "dist_counter_counters"), 4) << text;
}

TEST_F(CounterStoreTest, CorruptRecordMakesOpenFail) {
  {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Increment("x", 1).ok());
    ASSERT_TRUE(store->Increment("y", 1).ok());
    ASSERT_TRUE(store->Close().ok());
  }
  ASSERT_NO_FATAL_FAILURE(PutRaw("counter/x", "garbage"));
  std::unique_ptr<CounterStore> store;
  Status s = CounterStore::Open(Options(), &store);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("counter/x"), std::string::npos) << s.message();
  EXPECT_EQ(store, nullptr);
  // Nothing was guessed or overwritten: the bad record is still there.
  std::string value;
  ASSERT_TRUE(ReadFromDisk("counter/x", &value).ok());
  EXPECT_EQ(value, "garbage");
}

TEST_F(CounterStoreTest, CorruptMetaMakesOpenFail) {
  const std::pair<std::string, std::string> cases[] = {
      {std::string(kMetaIncarnationKey), "seven"},
      {std::string(kMetaIncarnationKey), "-1"},
      {std::string(kMetaActorsKey), "{\"not\":\"a list\"}"},
      {std::string(kMetaActorsKey), "[1,2]"},
      {std::string(kMetaFormatKey), "2"},
      {std::string(kMetaNodeIdKey), ""},
  };
  for (const auto& [key, value] : cases) {
    SCOPED_TRACE(key + " = " + value);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    {
      auto store = MustOpen(Options());
      ASSERT_TRUE(store);
      ASSERT_TRUE(store->Close().ok());
    }
    ASSERT_NO_FATAL_FAILURE(PutRaw(key, value));
    std::unique_ptr<CounterStore> store;
    Status s = CounterStore::Open(Options(), &store);
    EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  }
}

TEST_F(CounterStoreTest, AsyncDurableIncrementIsOnDiskWhenAcknowledged) {
  StoreOptions options = Options();  // flush interval of an hour
  options.durable = true;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  constexpr int kCount = 200;
  std::mutex mu;
  std::condition_variable cv;
  int acked = 0;
  std::vector<std::string> disk_values;
  for (int i = 0; i < kCount; ++i) {
    store->IncrementAsync("a", 1, [&](const Status& s) {
      EXPECT_TRUE(s.ok()) << s.ToString();
      std::lock_guard<std::mutex> lock(mu);
      ++acked;
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30),
                            [&] { return acked == kCount; }));
  }
  // Every acknowledgement came after its sync, so all are on disk.
  EXPECT_EQ(DiskValueOf("a"), std::to_string(kCount));
}

TEST_F(CounterStoreTest, AsyncIncrementAnswersAtOnceWhenRefusedOrNotDurable) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  bool called = false;
  store->IncrementAsync("x", 2, [&](const Status& s) {
    EXPECT_TRUE(s.ok());
    called = true;
  });
  EXPECT_TRUE(called);  // not durable: answered on this thread
  called = false;
  store->IncrementAsync("bad/name", 2, [&](const Status& s) {
    EXPECT_TRUE(s.IsInvalidArgument());
    called = true;
  });
  EXPECT_TRUE(called);
  PnCounter state;
  ASSERT_TRUE(store->Get("x", &state).ok());
  EXPECT_EQ(state.ValueString(), "2");
}

TEST_F(CounterStoreTest, CloseAnswersEveryQueuedAsyncIncrement) {
  StoreOptions options = Options();
  options.durable = true;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  std::atomic<int> acked{0};
  for (int i = 0; i < 100; ++i) {
    store->IncrementAsync("q", 1, [&](const Status&) { acked.fetch_add(1); });
  }
  ASSERT_TRUE(store->Close().ok());
  EXPECT_EQ(acked.load(), 100);
  store = MustOpen(options);
  ASSERT_TRUE(store);
  PnCounter state;
  ASSERT_TRUE(store->Get("q", &state).ok());
  EXPECT_EQ(state.ValueString(), "100");
}

TEST_F(CounterStoreTest, MergingAnEmptyStateNeverCreatesACounter) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  const uint64_t cursor = store->LatestCursor();
  bool changed = true;
  ASSERT_TRUE(store->Merge("ghost", PnCounter(), &changed).ok());
  EXPECT_FALSE(changed);
  EXPECT_EQ(ValueOf(*store, "ghost"), "absent");
  EXPECT_EQ(store->size(), 0u);
  EXPECT_EQ(store->LatestCursor(), cursor);
  std::vector<CounterChange> changes;
  uint64_t next = 0;
  store->ChangesSince(0, 10, &changes, &next);
  EXPECT_TRUE(changes.empty());
  // A counter created with 0 carries this node's actor at zero, so peers
  // learn of it; a peer's such counter is real here too.
  ASSERT_TRUE(store->Increment("zero", 0).ok());
  ASSERT_TRUE(store->IncrementBatch({{"zero2", 0}}).ok());
  for (const char* name : {"zero", "zero2"}) {
    PnCounter state;
    ASSERT_TRUE(store->Get(name, &state).ok());
    EXPECT_EQ(state.actors().size(), 1u) << name;
  }
  PnCounter zero;
  zero.SetActor("2.1.peer0001", ActorCounts{0, 0});
  ASSERT_TRUE(store->Merge("made", zero, &changed).ok());
  EXPECT_TRUE(changed);
  EXPECT_EQ(ValueOf(*store, "made"), "0");
  ASSERT_TRUE(store->Close().ok());
  EXPECT_EQ(DiskValueOf("ghost"), "absent");
  EXPECT_EQ(DiskValueOf("made"), "0");
}

TEST_F(CounterStoreTest, MaxCountersRefusesNewNamesOnly) {
  for (bool durable : {false, true}) {
    SCOPED_TRACE(durable ? "durable" : "default mode");
    std::filesystem::remove_all(dir_);
    Metrics metrics;
    StoreOptions options = Options();
    options.durable = durable;
    options.max_counters = 2;
    options.metrics = &metrics;
    auto store = MustOpen(options);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Increment("a", 1).ok());
    ASSERT_TRUE(store->IncrementBatch({{"b", 1}, {"a", 1}}).ok());
    EXPECT_TRUE(store->Increment("c", 1).IsResourceExhausted());
    EXPECT_TRUE(
        store->IncrementBatch({{"a", 1}, {"c", 1}}).IsResourceExhausted());
    Status async;
    store->IncrementAsync("c", 1, [&async](const Status& s) { async = s; });
    EXPECT_TRUE(async.IsResourceExhausted()) << async.ToString();
    EXPECT_EQ(ValueOf(*store, "c"), "absent");
    EXPECT_EQ(ValueOf(*store, "a"), "2");  // the refused batch changed nothing
    // Existing counters keep working.
    ASSERT_TRUE(store->Increment("a", 1).ok());
    ASSERT_TRUE(store->IncrementBatch({{"a", 1}, {"b", 1}}).ok());
    // A peer's new counter is refused too, and counted; its known ones
    // merge.
    PnCounter peer;
    peer.SetActor("2.1.peer0001", ActorCounts{5, 0});
    EXPECT_TRUE(store->Merge("c", peer, nullptr).IsResourceExhausted());
    EXPECT_TRUE(store->Merge("b", peer, nullptr).ok());
    EXPECT_EQ(ValueOf(*store, "b"), "7");
    EXPECT_EQ(store->size(), 2u);
    const std::string text = metrics.Render();
    EXPECT_EQ(test::MetricValue(text,
                                "dist_counter_merges_refused_total{reason="
                                "\"max_counters\"}"),
              1)
        << text;
    EXPECT_EQ(test::MetricValue(text,
                                "dist_counter_increments_refused_total{reason="
                                "\"max_counters\"}"),
              4)
        << text;
    ASSERT_TRUE(store->Close().ok());
  }
}

TEST_F(CounterStoreTest, PeersCreateCountersOnlyUpToMaxPeerCounters) {
  for (bool durable : {false, true}) {
    SCOPED_TRACE(durable ? "durable" : "default mode");
    std::filesystem::remove_all(dir_);
    Metrics metrics;
    StoreOptions options = Options();
    options.durable = durable;
    options.max_counters = 10;
    options.max_peer_counters = 6;
    options.metrics = &metrics;
    auto store = MustOpen(options);
    ASSERT_TRUE(store);
    PnCounter peer;
    peer.SetActor("2.1.peer0001", ActorCounts{5, 0});
    for (int i = 0; i < 6; ++i) {
      const std::string name = "p" + std::to_string(i);
      ASSERT_TRUE(store->Merge(name, peer, nullptr).ok()) << name;
    }
    // A peer's seventh new counter is refused and counted; nothing is
    // created.
    bool changed = true;
    EXPECT_TRUE(store->Merge("p6", peer, &changed).IsResourceExhausted());
    EXPECT_FALSE(changed);
    EXPECT_TRUE(store->Merge("p7", peer, nullptr).IsResourceExhausted());
    EXPECT_EQ(ValueOf(*store, "p6"), "absent");
    EXPECT_EQ(store->size(), 6u);
    // Counters the node holds keep merging.
    PnCounter more;
    more.SetActor("2.1.peer0001", ActorCounts{9, 0});
    ASSERT_TRUE(store->Merge("p0", more, &changed).ok());
    EXPECT_TRUE(changed);
    EXPECT_EQ(ValueOf(*store, "p0"), "9");
    // Clients still create counters, up to max_counters.
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(store->Increment("c" + std::to_string(i), 1).ok()) << i;
    }
    ASSERT_TRUE(store->IncrementBatch({{"c3", 1}, {"p1", 1}}).ok());
    EXPECT_EQ(store->size(), 10u);
    EXPECT_TRUE(store->Increment("c4", 1).IsResourceExhausted());
    // At max_counters a peer's new counter is refused for that reason.
    EXPECT_TRUE(store->Merge("p8", peer, nullptr).IsResourceExhausted());
    // Increments of a counter a peer created work as any other.
    ASSERT_TRUE(store->Increment("p2", 1).ok());
    EXPECT_EQ(ValueOf(*store, "p2"), "6");
    const std::string text = metrics.Render();
    EXPECT_EQ(test::MetricValue(text,
                                "dist_counter_merges_refused_total{reason="
                                "\"max_peer_counters\"}"),
              2)
        << text;
    EXPECT_EQ(test::MetricValue(text,
                                "dist_counter_merges_refused_total{reason="
                                "\"max_counters\"}"),
              1)
        << text;
    ASSERT_TRUE(store->Close().ok());
  }
}

TEST_F(CounterStoreTest, OpenRefusesMaxPeerCountersAboveMaxCounters) {
  std::unique_ptr<CounterStore> store;
  StoreOptions options = Options();
  options.max_counters = 10;
  options.max_peer_counters = 11;
  EXPECT_TRUE(CounterStore::Open(options, &store).IsInvalidArgument());
  EXPECT_EQ(store, nullptr);
  options.max_peer_counters = 10;  // all of it may go to peers
  store = MustOpen(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Close().ok());
}

TEST_F(CounterStoreTest, MaxPeerCountersDefaultsToNinetyPercent) {
  StoreOptions options = Options();
  options.max_counters = 20;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  PnCounter peer;
  peer.SetActor("2.1.peer0001", ActorCounts{1, 0});
  for (int i = 0; i < 18; ++i) {
    ASSERT_TRUE(store->Merge("p" + std::to_string(i), peer, nullptr).ok()) << i;
  }
  EXPECT_TRUE(store->Merge("p18", peer, nullptr).IsResourceExhausted());
  ASSERT_TRUE(store->Increment("c0", 1).ok());
  ASSERT_TRUE(store->Increment("c1", 1).ok());
  EXPECT_TRUE(store->Increment("c2", 1).IsResourceExhausted());
  ASSERT_TRUE(store->Close().ok());
}

}  // namespace
}  // namespace dist_counter

namespace dist_counter {
namespace {

// ---- Reset

TEST_F(CounterStoreTest, ResetIsAChangeWrittenWithTheNextFlush) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("r", 5).ok());
  ASSERT_TRUE(store->Increment("r", -2).ok());
  ASSERT_TRUE(store->Flush().ok());
  const uint64_t cursor = store->LatestCursor();
  ASSERT_TRUE(store->Reset("r").ok());
  EXPECT_EQ(ValueOf(*store, "r"), "0");
  // Peers see it as a change of the counter.
  std::vector<CounterChange> changes;
  uint64_t next = 0;
  store->ChangesSince(cursor, 10, &changes, &next);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].name, "r");
  EXPECT_EQ(changes[0].state.ValueString(), "0");
  // On disk only after the flush.
  EXPECT_EQ(DiskValueOf("r"), "3");
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(DiskValueOf("r"), "0");
  std::string json;
  ASSERT_TRUE(ReadFromDisk(CounterKey("r"), &json).ok());
  EXPECT_EQ(json, "{\"" + store->actor_id() +
                      "\":{\"p\":5,\"n\":2,\"bp\":5,\"bn\":2}}");
  // A reset that changes nothing is no change.
  ASSERT_TRUE(store->Reset("r").ok());
  EXPECT_EQ(store->LatestCursor(), next);
}

TEST_F(CounterStoreTest, ResetPersistsAcrossCloseAndReopen) {
  {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Increment("r", 7).ok());
    ASSERT_TRUE(store->Reset("r").ok());
    ASSERT_TRUE(store->Increment("r", 2).ok());
    ASSERT_TRUE(store->Close().ok());
  }
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  EXPECT_EQ(ValueOf(*store, "r"), "2");
  PnCounter state;
  ASSERT_TRUE(store->Get("r", &state).ok());
  EXPECT_EQ(state.actors().at(store->actor_id()), (ActorCounts{9, 0, 7, 0}));
  std::vector<std::string> names;
  store->List("", "", 10, &names);
  EXPECT_EQ(names, std::vector<std::string>{"r"});
}

TEST_F(CounterStoreTest, ResetOfAnUnknownCounterIsNotFoundAndCreatesNothing) {
  for (bool durable : {false, true}) {
    SCOPED_TRACE(durable);
    StoreOptions options = Options();
    options.durable = durable;
    options.data_dir = dir_ + (durable ? "_durable" : "");
    auto store = MustOpen(options);
    ASSERT_TRUE(store);
    EXPECT_TRUE(store->Reset("never").IsNotFound());
    EXPECT_EQ(ValueOf(*store, "never"), "absent");
    EXPECT_EQ(store->size(), 0u);
    EXPECT_EQ(store->LatestCursor(), 0u);
    ASSERT_TRUE(store->Increment("x", 1).ok());
    ASSERT_TRUE(store->Close().ok());
    EXPECT_TRUE(store->Reset("x").IsIOError());
  }
}

TEST_F(CounterStoreTest, DurableResetIsOnDiskWhenItReturns) {
  StoreOptions options = Options();  // flush interval of an hour
  options.durable = true;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("d", 3).ok());
  ASSERT_TRUE(store->Reset("d").ok());
  EXPECT_EQ(DiskValueOf("d"), "0");
  EXPECT_EQ(ValueOf(*store, "d"), "0");
  // Increments after it stage on top of the baselines.
  ASSERT_TRUE(store->Increment("d", -4).ok());
  EXPECT_EQ(DiskValueOf("d"), "-4");
  EXPECT_EQ(ValueOf(*store, "d"), "-4");
  PnCounter state;
  ASSERT_TRUE(store->Get("d", &state).ok());
  EXPECT_EQ(state.actors().at(store->actor_id()), (ActorCounts{3, 4, 3, 0}));
}

// A durable increment staged from totals read before a reset was published
// keeps the reset's baselines when it is published.
TEST_F(CounterStoreTest, DurableIncrementsKeepBaselinesPublishedMeanwhile) {
  StoreOptions options = Options();
  options.durable = true;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("c", 5).ok());
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  // Stops and joins the writers however the test ends.
  struct JoinAll {
    std::atomic<bool>* stop;
    std::vector<std::thread>* threads;
    ~JoinAll() {
      *stop = true;
      for (std::thread& t : *threads) t.join();
    }
  } join_all{&stop, &writers};
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&] {
      while (!stop) {
        Status s = store->Increment("c", 1);
        if (!s.ok()) ADD_FAILURE() << s.ToString();
      }
    });
  }
  // A staged increment published after a reset must not bring back the
  // baseline it was staged with: once a writer's increment made after the
  // reset shows, the reset's baseline still does.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(store->Reset("c").ok());
    PnCounter after_reset;
    ASSERT_TRUE(store->Get("c", &after_reset).ok());
    const ActorCounts reset = after_reset.actors().at(store->actor_id());
    ActorCounts later;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(20);
    do {
      PnCounter state;
      ASSERT_TRUE(store->Get("c", &state).ok());
      later = state.actors().at(store->actor_id());
      if (later.p > reset.p) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    } while (std::chrono::steady_clock::now() < deadline);
    ASSERT_GT(later.p, reset.p) << "no increment published after the reset";
    ASSERT_GE(later.bp, reset.bp) << "round " << i;
  }
  stop = true;
  for (std::thread& writer : writers) writer.join();
  writers.clear();
  ASSERT_TRUE(store->Reset("c").ok());
  EXPECT_EQ(ValueOf(*store, "c"), "0");
  ASSERT_TRUE(store->Increment("c", 2).ok());
  EXPECT_EQ(ValueOf(*store, "c"), "2");
  EXPECT_EQ(DiskValueOf("c"), "2");
}

TEST_F(CounterStoreTest, MergedResetRaisesBaselinesAndIsWritten) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("m", 4).ok());
  PnCounter peer;
  ASSERT_TRUE(store->Get("m", &peer).ok());
  ASSERT_TRUE(peer.Add("9.1.99999999", 6).ok());
  ASSERT_TRUE(peer.Reset());  // the peer reset after seeing all of it
  ASSERT_TRUE(store->Increment("m", 1).ok());  // concurrent with the reset
  bool changed = false;
  ASSERT_TRUE(store->Merge("m", peer, &changed).ok());
  EXPECT_TRUE(changed);
  EXPECT_EQ(ValueOf(*store, "m"), "1");
  ASSERT_TRUE(store->Merge("m", peer, &changed).ok());
  EXPECT_FALSE(changed);
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(DiskValueOf("m"), "1");
}

TEST_F(CounterStoreTest, KillNineAroundAResetKeepsWhatWasFlushed) {
  const int wstatus = RunChild("reset_crash", root_);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited with " << wstatus;
  auto store = MustOpen(ChildOptions(root_));
  ASSERT_TRUE(store);
  // The flushed reset survived, the +2 after it was not flushed.
  EXPECT_EQ(ValueOf(*store, "c"), "0");
  // An unflushed reset is lost like an unflushed increment (default mode).
  EXPECT_EQ(ValueOf(*store, "d"), "4");
  ASSERT_TRUE(store->Increment("c", 1).ok());
  EXPECT_EQ(ValueOf(*store, "c"), "1");
}

TEST_F(CounterStoreTest, KillNineAroundADurableResetKeepsEveryAcknowledged) {
  const int wstatus = RunChild("durable_reset_crash", root_);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited with " << wstatus;
  auto store = MustOpen(ChildOptions(root_));
  ASSERT_TRUE(store);
  EXPECT_EQ(ValueOf(*store, "c"), "3");
  EXPECT_EQ(ValueOf(*store, "d"), "0");
  PnCounter state;
  ASSERT_TRUE(store->Get("d", &state).ok());
  EXPECT_TRUE(state.HasBaselines());
}

}  // namespace
}  // namespace dist_counter
