// CounterStore::CheckPeerOwnCount(): a peer holding more for this node's
// current actor than the node does makes it move to a new incarnation at
// once, durably, without losing or doubling an increment in flight; at most
// once per min_incarnation_move_interval_s, the claims in between refused
// without hiding an increment.

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

#include "crdt/actor_id.h"
#include "store/counter_store.h"
#include "store/fault_file_system.h"
#include "store/store_test_util.h"
#include "util/metrics.h"

namespace dist_counter {
namespace {

using test::MustOpen;
using test::ValueOf;

constexpr int kNeverMs = 3600 * 1000;  // a flush interval no test outlives

class CounterStoreIncarnationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string base = ::testing::TempDir();
    if (base.empty() || base.back() != '/') base += '/';
    std::string pattern = base + "counter_store_incarnation_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << pattern;
    root_ = pattern;
  }

  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  StoreOptions Options(bool durable = false) {
    StoreOptions options;
    options.data_dir = root_ + "/db";
    options.challenge_id = "1";
    options.flush_interval_ms = durable ? kNeverMs : 50;
    options.durable = durable;
    options.close_retry_ms = 0;
    options.now_ms = [this] { return now_ms_.load(); };
    return options;
  }

  // The store's clock (StoreOptions::now_ms), moved by the tests.
  std::atomic<int64_t> now_ms_{1000000};
  std::string root_;
};

// This store's own published counts of `name` under `actor`.
ActorCounts CountsOf(const CounterStore& store, const std::string& name,
                     const std::string& actor) {
  PnCounter state;
  if (!store.Get(name, &state).ok()) return ActorCounts{};
  auto it = state.actors().find(actor);
  return it == state.actors().end() ? ActorCounts{} : it->second;
}

TEST_F(CounterStoreIncarnationTest, APeerHoldingMoreForTheCurrentActorMovesIt) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("c", 3).ok());
  const std::string old_actor = store->actor_id();
  const uint64_t old_incarnation = store->incarnation();

  bool moved = false;
  Status s =
      store->CheckPeerOwnCount("c", old_actor, ActorCounts{5, 0}, &moved);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(moved);
  const uint64_t incarnation = store->incarnation();
  EXPECT_GT(incarnation, old_incarnation);
  EXPECT_EQ(store->actor_id(), MakeActorId("1", incarnation, store->node_id()));
  // The old actor is an earlier one now: the peer's count merges, and new
  // increments count under the new actor, visible on top of it.
  PnCounter peer;
  peer.SetActor(old_actor, ActorCounts{5, 0});
  ASSERT_TRUE(store->Merge("c", peer, nullptr).ok());
  ASSERT_TRUE(store->Increment("c", 1).ok());
  EXPECT_EQ(ValueOf(*store, "c"), "6");
  EXPECT_EQ(CountsOf(*store, "c", store->actor_id()), (ActorCounts{1, 0}));
  // Seen again, the old actor moves nothing.
  s = store->CheckPeerOwnCount("c", old_actor, ActorCounts{9, 0}, &moved);
  EXPECT_TRUE(s.ok());
  EXPECT_FALSE(moved);
  EXPECT_EQ(store->incarnation(), incarnation);
  ASSERT_TRUE(store->Close().ok());

  // The new incarnation was written: a clean restart keeps it.
  store = MustOpen(Options());
  ASSERT_TRUE(store);
  EXPECT_EQ(store->incarnation(), incarnation);
  EXPECT_EQ(ValueOf(*store, "c"), "6");
}

TEST_F(CounterStoreIncarnationTest, TheNewIncarnationIsSyncedBeforeItIsUsed) {
  auto store = MustOpen(Options(/*durable=*/true));
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("c", 1).ok());
  bool moved = false;
  ASSERT_TRUE(
      store
          ->CheckPeerOwnCount("c", store->actor_id(), ActorCounts{0, 4}, &moved)
          .ok());
  ASSERT_TRUE(moved);
  const uint64_t incarnation = store->incarnation();
  // On disk already, before any increment used it.
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(
      rocksdb::DB::OpenForReadOnly(rocksdb::Options(), Options().data_dir, &raw)
          .ok());
  std::unique_ptr<rocksdb::DB> reader(raw);
  std::string stored;
  ASSERT_TRUE(
      reader->Get(rocksdb::ReadOptions(), "meta/incarnation", &stored).ok());
  EXPECT_EQ(stored, std::to_string(incarnation));
  reader.reset();
  ASSERT_TRUE(store->Increment("c", 1).ok());  // synced, under the new actor
  ASSERT_TRUE(store->Close().ok());
  auto again = MustOpen(Options());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->incarnation(), incarnation);  // a clean stop keeps it
  EXPECT_EQ(ValueOf(*again, "c"), "2");
}

TEST_F(CounterStoreIncarnationTest,
       NothingMovesWithoutALargerCountForTheCurrentActor) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("c", 3).ok());
  ASSERT_TRUE(store->Increment("c", -2).ok());
  const std::string actor = store->actor_id();
  const uint64_t incarnation = store->incarnation();
  bool moved = true;
  // Equal, lower, another node, an earlier incarnation, another counter's
  // count that this one does not exceed.
  for (const auto& [name, who, counts] :
       std::vector<std::tuple<std::string, std::string, ActorCounts>>{
           {"c", actor, ActorCounts{3, 2}},
           {"c", actor, ActorCounts{1, 0}},
           {"c", "2.1.abcdef01", ActorCounts{100, 100}},
           {"c", MakeActorId("1", incarnation - 1, store->node_id()),
            ActorCounts{100, 0}},
           {"never", "2.1.abcdef01", ActorCounts{1, 0}}}) {
    Status s = store->CheckPeerOwnCount(name, who, counts, &moved);
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_FALSE(moved) << who;
  }
  EXPECT_EQ(store->incarnation(), incarnation);
  // Any count for a counter this node does not hold is more than it has.
  ASSERT_TRUE(
      store->CheckPeerOwnCount("gone", actor, ActorCounts{0, 1}, &moved).ok());
  EXPECT_TRUE(moved);
}

// Increments from several threads while the store moves to new
// incarnations again and again: each lands whole under one actor, so the
// own actors' totals add up to exactly what was acknowledged.
void HammerWhileMoving(CounterStore* store, int* moves) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 300;
  std::atomic<int> acknowledged{0};
  std::atomic<bool> done{false};
  std::atomic<int> moved_so_far{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Halfway, wait for a move, so that at least one happens while
        // increments run (bounded: a broken move fails the checks below).
        for (int spin = 0;
             i == kPerThread / 2 && moved_so_far == 0 && spin < 100000;
             ++spin) {
          std::this_thread::yield();
        }
        const int64_t delta = (i % 3 == 0) ? -1 : 2;
        Status s = (i % 5 == 0)
                       ? store->IncrementBatch({{"c", delta}, {"d", 1}})
                       : store->Increment("c", delta);
        ASSERT_TRUE(s.ok()) << s.ToString();
        acknowledged += static_cast<int>(delta);
        (void)t;
      }
    });
  }
  std::thread mover([&] {
    while (!done) {
      const std::string actor = store->actor_id();
      const ActorCounts held = CountsOf(*store, "c", actor);
      if (held.p == 0) {  // only actors that counted something retire
        std::this_thread::yield();
        continue;
      }
      bool moved = false;
      Status s = store->CheckPeerOwnCount(
          "c", actor, ActorCounts{held.p + 1, held.n}, &moved);
      ASSERT_TRUE(s.ok()) << s.ToString();
      if (moved) ++moved_so_far;
      std::this_thread::yield();
    }
  });
  for (auto& t : threads) t.join();
  done = true;
  mover.join();
  *moves = moved_so_far;
  ASSERT_TRUE(store->Flush(/*sync=*/true).ok());
  EXPECT_EQ(ValueOf(*store, "c"), std::to_string(acknowledged.load()));
  EXPECT_EQ(ValueOf(*store, "d"), std::to_string(kThreads * kPerThread / 5));
}

TEST_F(CounterStoreIncarnationTest, IncrementsDuringMovesLandWholeDefaultMode) {
  StoreOptions options = Options(/*durable=*/false);
  options.min_incarnation_move_interval_s = 0;  // moves as often as asked
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  int moves = 0;
  HammerWhileMoving(store.get(), &moves);
  EXPECT_GT(moves, 0);
  PnCounter state;
  ASSERT_TRUE(store->Get("c", &state).ok());
  EXPECT_GT(state.actors().size(), 1u);
}

TEST_F(CounterStoreIncarnationTest, IncrementsDuringMovesLandWholeDurableMode) {
  StoreOptions options = Options(/*durable=*/true);
  options.min_incarnation_move_interval_s = 0;  // moves as often as asked
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  int moves = 0;
  HammerWhileMoving(store.get(), &moves);
  EXPECT_GT(moves, 0);
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(options);  // and so it is on disk
  ASSERT_TRUE(store);
  PnCounter state;
  ASSERT_TRUE(store->Get("c", &state).ok());
  EXPECT_GT(state.actors().size(), 1u);
}

TEST_F(CounterStoreIncarnationTest,
       AMoveThatCannotBeWrittenRefusesIncrementsUntilMade) {
  FaultEnv faults;
  StoreOptions options = Options();
  options.flush_interval_ms = kNeverMs;
  options.TEST_env = faults.env();
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("c", 1).ok());
  const std::string old_actor = store->actor_id();
  faults.fs()->SetFault(Fault::kNoSpace);
  bool moved = true;
  Status s =
      store->CheckPeerOwnCount("c", old_actor, ActorCounts{7, 0}, &moved);
  EXPECT_TRUE(s.IsStorageUnavailable()) << s.ToString();
  EXPECT_FALSE(moved);
  EXPECT_EQ(store->actor_id(), old_actor);
  // Nothing more is taken under the old actor.
  EXPECT_TRUE(store->Increment("c", 1).IsStorageUnavailable());
  faults.fs()->SetFault(Fault::kNone);
  s = store->Flush(/*sync=*/true);  // recovery makes the move first
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_NE(store->actor_id(), old_actor);
  ASSERT_TRUE(store->Increment("c", 1).ok());
  EXPECT_EQ(CountsOf(*store, "c", store->actor_id()), (ActorCounts{1, 0}));
  EXPECT_EQ(CountsOf(*store, "c", old_actor), (ActorCounts{1, 0}));
  EXPECT_TRUE(store->Close().ok());
}

// What a peer that takes only what this node publishes holds of `name`:
// its value there.
std::string PublishedValue(const CounterStore& store, const std::string& name) {
  std::vector<CounterChange> changes;
  uint64_t next = 0;
  store.ChangesSince(0, 1000, &changes, &next);
  PnCounter peer;
  for (const CounterChange& change : changes) {
    if (change.name == name) peer.Merge(change.state);
  }
  return peer.ValueString();
}

TEST_F(CounterStoreIncarnationTest, ClaimsWithinTheIntervalMoveOnceAndHideNothing) {
  Metrics metrics;  // declared first: must outlive the store
  StoreOptions options = Options();
  options.metrics = &metrics;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("c", 3).ok());
  int64_t acknowledged = 3;
  const std::string first = store->actor_id();
  bool moved = false;
  ASSERT_TRUE(
      store->CheckPeerOwnCount("c", first, ActorCounts{9, 0}, &moved).ok());
  ASSERT_TRUE(moved);  // the first move is never delayed
  const std::string second = store->actor_id();
  ASSERT_NE(second, first);

  // A peer claims more than this node holds for the actor it has just
  // moved to, again and again, while clients increment: no further move.
  for (int i = 0; i < 200; ++i) {
    now_ms_ += 250;  // 50 s in all: still within the minute
    const int64_t delta = i % 4 == 0 ? -1 : 2;
    ASSERT_TRUE(store->Increment("c", delta).ok());
    acknowledged += delta;
    const ActorCounts held = CountsOf(*store, "c", store->actor_id());
    Status s = store->CheckPeerOwnCount(
        "c", store->actor_id(), ActorCounts{held.p + 1000, held.n}, &moved);
    ASSERT_TRUE(s.IsBusy()) << s.ToString();
    EXPECT_FALSE(moved);
    ASSERT_EQ(store->actor_id(), second);
    // Every acknowledged increment counts, here and on a peer that holds
    // what this node published.
    ASSERT_EQ(ValueOf(*store, "c"), std::to_string(acknowledged));
    ASSERT_EQ(PublishedValue(*store, "c"), std::to_string(acknowledged));
  }
  EXPECT_EQ(metrics.Counter("dist_counter_incarnation_moves_total")->load(),
            1u);
  EXPECT_EQ(
      metrics.Counter("dist_counter_incarnation_moves_refused_total")->load(),
      200u);
  // The refused claims left the new actor's own count as it was issued.
  PnCounter state;
  ASSERT_TRUE(store->Get("c", &state).ok());
  EXPECT_EQ(state.actors().size(), 2u);
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(Options());
  ASSERT_TRUE(store);
  EXPECT_EQ(ValueOf(*store, "c"), std::to_string(acknowledged));
}

TEST_F(CounterStoreIncarnationTest, AfterTheIntervalAClaimMovesAgain) {
  auto store = MustOpen(Options());
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Increment("c", 1).ok());
  bool moved = false;
  ASSERT_TRUE(store
                  ->CheckPeerOwnCount("c", store->actor_id(), ActorCounts{5, 0},
                                      &moved)
                  .ok());
  ASSERT_TRUE(moved);
  ASSERT_TRUE(store->Increment("c", 1).ok());
  const std::string second = store->actor_id();
  now_ms_ += 59999;
  EXPECT_TRUE(
      store->CheckPeerOwnCount("c", second, ActorCounts{5, 0}, &moved).IsBusy());
  EXPECT_FALSE(moved);
  now_ms_ += 1;  // a minute since the move
  ASSERT_TRUE(
      store->CheckPeerOwnCount("c", second, ActorCounts{5, 0}, &moved).ok());
  EXPECT_TRUE(moved);
  const std::string third = store->actor_id();
  EXPECT_NE(third, second);
  // The interval runs from the last move.
  ASSERT_TRUE(store->Increment("c", 1).ok());
  now_ms_ += 30000;
  EXPECT_TRUE(
      store->CheckPeerOwnCount("c", third, ActorCounts{5, 0}, &moved).IsBusy());
  EXPECT_EQ(store->actor_id(), third);
  // A claim that is not above ours is no claim, within the interval too.
  EXPECT_TRUE(
      store->CheckPeerOwnCount("c", third, ActorCounts{1, 0}, &moved).ok());
  EXPECT_EQ(ValueOf(*store, "c"), "3");
  EXPECT_EQ(CountsOf(*store, "c", third), (ActorCounts{1, 0}));
}

TEST_F(CounterStoreIncarnationTest, AZeroIntervalMovesAtEveryClaim) {
  StoreOptions options = Options();
  options.min_incarnation_move_interval_s = 0;
  auto store = MustOpen(options);
  ASSERT_TRUE(store);
  for (int i = 0; i < 3; ++i) {
    bool moved = false;
    ASSERT_TRUE(store
                    ->CheckPeerOwnCount("c", store->actor_id(),
                                        ActorCounts{1, 0}, &moved)
                    .ok());
    EXPECT_TRUE(moved);
  }
}

TEST_F(CounterStoreIncarnationTest,
       PeersGiveBackOnlyIncarnationsOfEarlierRuns) {
  uint64_t first = 0;
  {
    auto store = MustOpen(Options());
    ASSERT_TRUE(store);
    first = store->incarnation();
    // Started by this process: refused from peers, also after a move.
    EXPECT_EQ(store->FirstRefusedIncarnation(), first);
    ASSERT_TRUE(store
                    ->CheckPeerOwnCount("c", store->actor_id(),
                                        ActorCounts{1, 0}, nullptr)
                    .ok());
    ASSERT_GT(store->incarnation(), first);
    EXPECT_EQ(store->FirstRefusedIncarnation(), first);
    ASSERT_TRUE(store->Close().ok());
  }
  auto store = MustOpen(Options());  // a clean stop: the run continues
  ASSERT_TRUE(store);
  const uint64_t kept = store->incarnation();
  EXPECT_EQ(store->FirstRefusedIncarnation(), kept);
  ASSERT_TRUE(store
                  ->CheckPeerOwnCount("c", store->actor_id(), ActorCounts{1, 0},
                                      nullptr)
                  .ok());
  ASSERT_GT(store->incarnation(), kept);
  // Earlier runs used `kept`: a peer may give back more for it now.
  EXPECT_EQ(store->FirstRefusedIncarnation(), kept + 1);
}

}  // namespace
}  // namespace dist_counter
