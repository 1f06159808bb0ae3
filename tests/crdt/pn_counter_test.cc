#include "crdt/pn_counter.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

namespace dist_counter {

// Shows a PnCounter in test failures as "{actor:+p-n,...}".
void PrintTo(const PnCounter& counter, std::ostream* os) {
  *os << counter.DebugString();
}

namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
constexpr int kRounds = 2000;  // random cases per law

PnCounter CounterWith(const std::string& actor, uint64_t p, uint64_t n) {
  PnCounter c;
  c.SetActor(actor, ActorCounts{p, n});
  return c;
}

// Deterministic generator of arbitrary states: a few actors shared between
// states (so merges collide), totals from tiny to UINT64_MAX.
class StateGenerator {
 public:
  explicit StateGenerator(uint64_t seed) : engine_(seed) {}

  uint64_t Total() {
    switch (Pick(4)) {
      case 0:
        return Pick(4);  // 0..3: many ties
      case 1:
        return Pick(1000);
      case 2:
        return kMax - Pick(3);  // at the top of the range
      default:
        return engine_();
    }
  }

  // A baseline within `total`: often none, sometimes all of it.
  uint64_t Baseline(uint64_t total) {
    switch (Pick(4)) {
      case 0:
        return 0;
      case 1:
        return total;
      case 2:
        return total - std::min<uint64_t>(total, Pick(4));
      default:
        return total == 0 ? 0 : engine_() % total;
    }
  }

  // A state whose actors may carry baselines (of resets) when `baselines`.
  PnCounter State(bool baselines = true) {
    static const char* const kActors[] = {"1.1.aaaaaaaa", "1.2.aaaaaaaa",
                                          "2.1.bbbbbbbb", "3.1.cccccccc", "x"};
    PnCounter c;
    for (const char* actor : kActors) {
      if (Pick(2) != 0) continue;
      ActorCounts counts{Total(), Total()};
      if (baselines && Pick(2) == 0) {
        counts.bp = Baseline(counts.p);
        counts.bn = Baseline(counts.n);
      }
      c.SetActor(actor, counts);
    }
    return c;
  }

  uint64_t Pick(uint64_t n) { return engine_() % n; }

 private:
  std::mt19937_64 engine_;
};

PnCounter Merged(PnCounter a, const PnCounter& b) {
  a.Merge(b);
  return a;
}

TEST(PnCounterTest, EmptyCounter) {
  PnCounter c;
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(c.Value(), 0);
  EXPECT_EQ(c.ValueString(), "0");
  EXPECT_EQ(c.DebugString(), "{}");
}

TEST(PnCounterTest, AddRaisesOwnActorsPOrN) {
  PnCounter c;
  ASSERT_TRUE(c.Add("a", 5).ok());
  ASSERT_TRUE(c.Add("a", -2).ok());
  ASSERT_TRUE(c.Add("b", 1).ok());
  ASSERT_TRUE(c.Add("a", 3).ok());
  EXPECT_EQ(c.actors().at("a"), (ActorCounts{8, 2}));
  EXPECT_EQ(c.actors().at("b"), (ActorCounts{1, 0}));
  EXPECT_EQ(c.Value(), 7);
  EXPECT_EQ(c.ValueString(), "7");
}

TEST(PnCounterTest, DeltaZeroIsValidAndChangesNothing) {
  PnCounter c;
  EXPECT_TRUE(c.Add("a", 0).ok());
  EXPECT_TRUE(c.empty());
  ASSERT_TRUE(c.Add("a", 4).ok());
  PnCounter before = c;
  EXPECT_TRUE(c.Add("a", 0).ok());
  EXPECT_EQ(c, before);
  // Even at the top of the range, zero is not an overflow.
  PnCounter full = CounterWith("a", kMax, kMax);
  EXPECT_TRUE(full.Add("a", 0).ok());
  EXPECT_TRUE(full.CheckAdd("a", 0).ok());
}

TEST(PnCounterTest, OverflowOfPIsRefusedWithStateIntact) {
  PnCounter c;
  const int64_t big = std::numeric_limits<int64_t>::max();
  ASSERT_TRUE(c.Add("a", big).ok());
  ASSERT_TRUE(c.Add("a", big).ok());
  ASSERT_EQ(c.actors().at("a").p, kMax - 1);
  ASSERT_TRUE(c.Add("b", -1).ok());
  const PnCounter before = c;

  EXPECT_TRUE(c.CheckAdd("a", 2).IsInvalidArgument());
  EXPECT_TRUE(c.Add("a", 2).IsInvalidArgument());
  EXPECT_EQ(c, before);
  EXPECT_EQ(c.DebugString(), before.DebugString());

  // Exactly up to UINT64_MAX is fine; one more is not.
  EXPECT_TRUE(c.CheckAdd("a", 1).ok());
  EXPECT_TRUE(c.Add("a", 1).ok());
  EXPECT_EQ(c.actors().at("a").p, kMax);
  EXPECT_TRUE(c.Add("a", 1).IsInvalidArgument());
  EXPECT_EQ(c.actors().at("a").p, kMax);
  // The other direction and other actors are unaffected.
  EXPECT_TRUE(c.Add("a", -1).ok());
  EXPECT_TRUE(c.Add("c", 1).ok());
}

TEST(PnCounterTest, OverflowOfNIsRefusedWithStateIntact) {
  PnCounter c = CounterWith("a", 3, kMax - 1);
  const PnCounter before = c;
  EXPECT_TRUE(c.Add("a", -2).IsInvalidArgument());
  EXPECT_EQ(c, before);
  EXPECT_TRUE(c.Add("a", -1).ok());
  EXPECT_EQ(c.actors().at("a"), (ActorCounts{3, kMax}));
}

TEST(PnCounterTest, Int64MinDeltaIsExact) {
  const int64_t min = std::numeric_limits<int64_t>::min();
  PnCounter c;
  ASSERT_TRUE(c.Add("a", min).ok());
  EXPECT_EQ(c.actors().at("a"), (ActorCounts{0, uint64_t{1} << 63}));
  EXPECT_EQ(c.ValueString(), "-9223372036854775808");
  // A second one would need N = 2^64: refused, nothing changed.
  const PnCounter before = c;
  EXPECT_TRUE(c.CheckAdd("a", min).IsInvalidArgument());
  EXPECT_TRUE(c.Add("a", min).IsInvalidArgument());
  EXPECT_EQ(c, before);
  // A fresh actor has room for it.
  EXPECT_TRUE(c.Add("b", min).ok());
  EXPECT_EQ(c.ValueString(), "-18446744073709551616");
}

TEST(PnCounterTest, FailedAddOnUnknownActorDoesNotCreateIt) {
  PnCounter c = CounterWith("a", kMax, 0);
  EXPECT_TRUE(c.Add("a", 1).IsInvalidArgument());
  EXPECT_EQ(c.actors().size(), 1u);
}

TEST(PnCounterTest, ValueIsExactBeyondInt64) {
  PnCounter c;
  c.SetActor("a", ActorCounts{kMax, 0});
  c.SetActor("b", ActorCounts{kMax, 0});
  c.SetActor("c", ActorCounts{kMax, 0});
  EXPECT_EQ(c.ValueString(), "55340232221128654845");  // 3 * (2^64 - 1)
  EXPECT_EQ(c.Value(), static_cast<__int128>(kMax) * 3);

  PnCounter d;
  d.SetActor("a", ActorCounts{0, kMax});
  d.SetActor("b", ActorCounts{0, kMax});
  d.SetActor("c", ActorCounts{0, kMax});
  EXPECT_EQ(d.ValueString(), "-55340232221128654845");

  PnCounter e;
  e.SetActor("a", ActorCounts{kMax, 1});
  e.SetActor("b", ActorCounts{0, kMax});
  EXPECT_EQ(e.ValueString(), "-1");
}

TEST(PnCounterTest, MergeTakesPerActorMaxOfPAndN) {
  PnCounter a = CounterWith("x", 5, 1);
  a.SetActor("y", ActorCounts{2, 9});
  PnCounter b = CounterWith("x", 3, 4);
  b.SetActor("z", ActorCounts{7, 0});
  EXPECT_TRUE(a.Merge(b));
  EXPECT_EQ(a.DebugString(), "{x:+5-4,y:+2-9,z:+7-0}");
  EXPECT_EQ(a.Value(), 5 - 4 + 2 - 9 + 7);
  // `other` is untouched.
  EXPECT_EQ(b.DebugString(), "{x:+3-4,z:+7-0}");
}

TEST(PnCounterTest, MergeReturnsWhetherAnythingChanged) {
  PnCounter a = CounterWith("x", 5, 5);
  EXPECT_FALSE(a.Merge(CounterWith("x", 5, 5)));
  EXPECT_FALSE(a.Merge(CounterWith("x", 4, 0)));
  EXPECT_FALSE(a.Merge(PnCounter()));
  EXPECT_EQ(a.DebugString(), "{x:+5-5}");
  EXPECT_TRUE(a.Merge(CounterWith("x", 6, 0)));
  EXPECT_TRUE(a.Merge(CounterWith("x", 0, 6)));
  EXPECT_TRUE(a.Merge(CounterWith("y", 1, 0)));
  EXPECT_EQ(a.DebugString(), "{x:+6-6,y:+1-0}");
}

TEST(PnCounterTest, MergeReportsANewActorEvenWithZeroTotals) {
  // The value does not move, but the state (and its encoding) does.
  PnCounter a = CounterWith("x", 1, 0);
  const PnCounter zero = CounterWith("z", 0, 0);
  EXPECT_FALSE(a.Covers(zero));
  EXPECT_TRUE(a.Merge(zero));
  EXPECT_EQ(a.DebugString(), "{x:+1-0,z:+0-0}");
  EXPECT_TRUE(a.Covers(zero));
  EXPECT_FALSE(a.Merge(zero));
}

TEST(PnCounterTest, MergeIntoEmptyCopiesTheState) {
  PnCounter a;
  const PnCounter b = CounterWith("q", 1, 2);
  EXPECT_TRUE(a.Merge(b));
  EXPECT_EQ(a, b);
}

TEST(PnCounterTest, MergeCanLowerTheValueButNoTotal) {
  // The value is not monotonic under merge (the peer may know of more
  // decrements); every actor's P and N is.
  PnCounter a = CounterWith("x", 10, 0);
  EXPECT_TRUE(a.Merge(CounterWith("y", 0, 4)));
  EXPECT_EQ(a.Value(), 6);
  EXPECT_EQ(a.actors().at("x"), (ActorCounts{10, 0}));
}

TEST(PnCounterTest, MergeIsCommutative) {
  StateGenerator gen(1);
  for (int i = 0; i < kRounds; ++i) {
    const PnCounter a = gen.State(), b = gen.State();
    ASSERT_EQ(Merged(a, b), Merged(b, a))
        << a.DebugString() << " " << b.DebugString();
  }
}

TEST(PnCounterTest, MergeIsAssociative) {
  StateGenerator gen(2);
  for (int i = 0; i < kRounds; ++i) {
    const PnCounter a = gen.State(), b = gen.State(), c = gen.State();
    ASSERT_EQ(Merged(Merged(a, b), c), Merged(a, Merged(b, c)))
        << a.DebugString() << " " << b.DebugString() << " " << c.DebugString();
  }
}

TEST(PnCounterTest, MergeIsIdempotent) {
  StateGenerator gen(3);
  for (int i = 0; i < kRounds; ++i) {
    const PnCounter a = gen.State();
    PnCounter b = a;
    EXPECT_FALSE(b.Merge(a));
    ASSERT_EQ(a, b);
    EXPECT_FALSE(b.Merge(b));  // with itself, aliased
    ASSERT_EQ(a, b);
    // Merging the same peer state twice: the second does nothing.
    const PnCounter peer = gen.State();
    PnCounter once = a;
    once.Merge(peer);
    PnCounter twice = once;
    EXPECT_FALSE(twice.Merge(peer));
    ASSERT_EQ(once, twice);
  }
}

TEST(PnCounterTest, MergeNeverLowersAnyActorsTotals) {
  StateGenerator gen(4);
  for (int i = 0; i < kRounds; ++i) {
    const PnCounter a = gen.State(), b = gen.State();
    const PnCounter m = Merged(a, b);
    for (const PnCounter* input : {&a, &b}) {
      for (const auto& [actor, counts] : input->actors()) {
        auto it = m.actors().find(actor);
        ASSERT_NE(it, m.actors().end()) << actor;
        ASSERT_GE(it->second.p, counts.p);
        ASSERT_GE(it->second.n, counts.n);
        ASSERT_GE(it->second.bp, counts.bp);
        ASSERT_GE(it->second.bn, counts.bn);
      }
    }
    // And it is the least such state: every total comes from an input.
    for (const auto& [actor, counts] : m.actors()) {
      const auto& aa = a.actors();
      const auto& ba = b.actors();
      const uint64_t ap = aa.count(actor) ? aa.at(actor).p : 0;
      const uint64_t an = aa.count(actor) ? aa.at(actor).n : 0;
      const uint64_t bp = ba.count(actor) ? ba.at(actor).p : 0;
      const uint64_t bn = ba.count(actor) ? ba.at(actor).n : 0;
      ASSERT_EQ(counts.p, std::max(ap, bp)) << actor;
      ASSERT_EQ(counts.n, std::max(an, bn)) << actor;
      const uint64_t abp = aa.count(actor) ? aa.at(actor).bp : 0;
      const uint64_t abn = aa.count(actor) ? aa.at(actor).bn : 0;
      const uint64_t bbp = ba.count(actor) ? ba.at(actor).bp : 0;
      const uint64_t bbn = ba.count(actor) ? ba.at(actor).bn : 0;
      ASSERT_EQ(counts.bp, std::max(abp, bbp)) << actor;
      ASSERT_EQ(counts.bn, std::max(abn, bbn)) << actor;
      ASSERT_TRUE(counts.Consistent()) << actor;
    }
    EXPECT_TRUE(m.Covers(a));
    EXPECT_TRUE(m.Covers(b));
  }
}

TEST(PnCounterTest, MergingAnOlderCopyOfItselfChangesNothing) {
  StateGenerator gen(5);
  const std::string actors[] = {"1.1.aaaaaaaa", "2.1.bbbbbbbb", "new"};
  for (int i = 0; i < kRounds; ++i) {
    const PnCounter old_copy = gen.State();
    PnCounter current = old_copy;
    // Time passes: increments (that fit) and merges from peers.
    for (int step = 0; step < 5; ++step) {
      if (gen.Pick(4) == 0) {
        current.Reset();
      } else if (gen.Pick(3) == 0) {
        current.Merge(gen.State());
      } else {
        const int64_t delta = static_cast<int64_t>(gen.Pick(2001)) - 1000;
        (void)current.Add(actors[gen.Pick(3)], delta);  // may refuse overflow
      }
    }
    const PnCounter before = current;
    ASSERT_TRUE(current.Covers(old_copy));
    EXPECT_FALSE(current.Merge(old_copy));
    ASSERT_EQ(current, before) << current.DebugString();
    ASSERT_EQ(current.Value(), before.Value());
  }
}

TEST(PnCounterTest, MergeResultMatchesChangedState) {
  StateGenerator gen(6);
  for (int i = 0; i < kRounds; ++i) {
    PnCounter a = gen.State();
    const PnCounter b = gen.State();
    const PnCounter before = a;
    const bool covers = a.Covers(b);
    const bool changed = a.Merge(b);
    ASSERT_EQ(changed, a != before);
    ASSERT_EQ(covers, !changed);
  }
}

TEST(PnCounterTest, Covers) {
  const PnCounter a = CounterWith("x", 5, 2);
  EXPECT_TRUE(a.Covers(PnCounter()));
  EXPECT_TRUE(PnCounter().Covers(PnCounter()));
  EXPECT_FALSE(PnCounter().Covers(a));
  EXPECT_TRUE(a.Covers(a));
  EXPECT_TRUE(a.Covers(CounterWith("x", 5, 1)));
  EXPECT_TRUE(a.Covers(CounterWith("x", 0, 0)));
  EXPECT_FALSE(a.Covers(CounterWith("x", 6, 0)));
  EXPECT_FALSE(a.Covers(CounterWith("x", 0, 3)));
  EXPECT_FALSE(a.Covers(CounterWith("y", 1, 0)));
  // Covers is about totals, not about values.
  EXPECT_FALSE(a.Covers(CounterWith("y", 0, 1)));
}

TEST(PnCounterTest, CoversAccountsForBaselines) {
  PnCounter a = CounterWith("x", 5, 2);
  PnCounter reset = a;
  ASSERT_TRUE(reset.Reset());
  // Same totals, higher baselines: merging them would change a.
  EXPECT_FALSE(a.Covers(reset));
  EXPECT_TRUE(reset.Covers(a));
  PnCounter half;
  half.SetActor("x", ActorCounts{5, 2, 0, 1});
  EXPECT_FALSE(a.Covers(half));
  EXPECT_TRUE(a.Merge(half));
  EXPECT_TRUE(a.Covers(half));
  EXPECT_FALSE(a.Merge(half));
}

TEST(PnCounterTest, ResetZeroesTheValueAndKeepsTheTotals) {
  PnCounter c;
  ASSERT_TRUE(c.Add("a", 5).ok());
  ASSERT_TRUE(c.Add("a", -2).ok());
  ASSERT_TRUE(c.Add("b", 7).ok());
  EXPECT_FALSE(c.HasBaselines());
  EXPECT_TRUE(c.Reset());
  EXPECT_EQ(c.Value(), 0);
  EXPECT_EQ(c.ValueString(), "0");
  EXPECT_TRUE(c.HasBaselines());
  EXPECT_EQ(c.actors().at("a"), (ActorCounts{5, 2, 5, 2}));
  EXPECT_EQ(c.actors().at("b"), (ActorCounts{7, 0, 7, 0}));
  EXPECT_EQ(c.DebugString(), "{a:+5-2@+5-2,b:+7-0@+7-0}");
  // A second reset changes nothing; increments after it count.
  EXPECT_FALSE(c.Reset());
  ASSERT_TRUE(c.Add("a", 3).ok());
  ASSERT_TRUE(c.Add("c", -1).ok());
  EXPECT_EQ(c.Value(), 2);
  EXPECT_TRUE(c.Reset());
  EXPECT_EQ(c.Value(), 0);
}

TEST(PnCounterTest, ResetOfAnEmptyCounterChangesNothing) {
  PnCounter c;
  EXPECT_FALSE(c.Reset());
  EXPECT_TRUE(c.empty());
  PnCounter zero = CounterWith("a", 0, 0);
  EXPECT_FALSE(zero.Reset());
}

TEST(PnCounterTest, ValueWithBaselinesIsExactAtTheTopOfTheRange) {
  PnCounter c;
  c.SetActor("a", ActorCounts{kMax, 0, 1, 0});
  c.SetActor("b", ActorCounts{kMax, 0, 0, 0});
  c.SetActor("c", ActorCounts{0, kMax, 0, 0});
  EXPECT_EQ(c.ValueString(), "18446744073709551614");  // 2^64 - 2
  c.SetActor("c", ActorCounts{0, kMax, 0, kMax});
  EXPECT_EQ(c.ValueString(), "36893488147419103229");  // 2 * 2^64 - 3
  // Totals keep their own overflow check after a reset.
  ASSERT_TRUE(c.Reset());
  EXPECT_TRUE(c.Add("b", 1).IsInvalidArgument());
  EXPECT_EQ(c.ValueString(), "0");
}

// An increment a reset did not see survives it, whichever way the states
// meet: the reset raises only what it saw.
TEST(PnCounterTest, IncrementConcurrentWithResetSurvives) {
  StateGenerator gen(7);
  const std::string actors[] = {"1.1.aaaaaaaa", "2.1.bbbbbbbb", "new"};
  for (int i = 0; i < kRounds; ++i) {
    const PnCounter base = gen.State();
    PnCounter resetter = base, writer = base;
    resetter.Reset();
    __int128 added = 0;
    for (int step = 0; step < 4; ++step) {
      const int64_t delta = static_cast<int64_t>(gen.Pick(2001)) - 1000;
      if (writer.Add(actors[gen.Pick(3)], delta).ok()) added += delta;
    }
    ASSERT_EQ(Merged(resetter, writer).Value(), added)
        << base.DebugString() << " " << writer.DebugString();
    ASSERT_EQ(Merged(writer, resetter).Value(), added);
  }
}

// Two replicas that reset concurrently: everything either reset saw is
// gone, what neither saw counts, in either order.
TEST(PnCounterTest, ResetsOnTwoReplicasCompose) {
  StateGenerator gen(8);
  for (int i = 0; i < kRounds; ++i) {
    PnCounter a = gen.State(), b = a;
    // Each replica takes increments of its own, then resets, then takes more.
    ASSERT_TRUE(a.Add("a", static_cast<int64_t>(gen.Pick(100))).ok());
    ASSERT_TRUE(b.Add("b", -static_cast<int64_t>(gen.Pick(100))).ok());
    b.Merge(gen.State());  // and b hears of other updates before its reset
    a.Reset();
    b.Reset();
    const int64_t after_a = static_cast<int64_t>(gen.Pick(50));
    const int64_t after_b = -static_cast<int64_t>(gen.Pick(50));
    ASSERT_TRUE(a.Add("a", after_a).ok());
    ASSERT_TRUE(b.Add("b", after_b).ok());
    const PnCounter ab = Merged(a, b), ba = Merged(b, a);
    ASSERT_EQ(ab, ba);
    ASSERT_EQ(ab.Value(), after_a + after_b) << ab.DebugString();
    // A reset of the merged state zeroes it, and merging the inputs again
    // brings nothing back.
    PnCounter all = ab;
    all.Reset();
    ASSERT_EQ(Merged(Merged(all, a), b).Value(), 0);
  }
}

// Value parts: what increments and decrements count for past the baselines.
struct Parts {
  __int128 up = 0;
  __int128 down = 0;
};
Parts PartsOf(const PnCounter& c) {
  Parts parts;
  for (const auto& entry : c.actors()) {
    parts.up += entry.second.p - entry.second.bp;
    parts.down += entry.second.n - entry.second.bn;
  }
  return parts;
}

TEST(PnCounterTest, MergeLowersNoPartOfTheValueUnlessItBringsAReset) {
  StateGenerator gen(9);
  int with_reset = 0;
  for (int i = 0; i < kRounds; ++i) {
    const PnCounter a = gen.State(), b = gen.State();
    const PnCounter m = Merged(a, b);
    // Baselines merged in from b that a did not have.
    bool reset_merged = false;
    for (const auto& [actor, counts] : m.actors()) {
      auto it = a.actors().find(actor);
      const ActorCounts mine =
          it == a.actors().end() ? ActorCounts{} : it->second;
      reset_merged |= counts.bp > mine.bp || counts.bn > mine.bn;
    }
    if (reset_merged) {
      ++with_reset;
      continue;
    }
    ASSERT_GE(PartsOf(m).up, PartsOf(a).up) << a.DebugString();
    ASSERT_GE(PartsOf(m).down, PartsOf(a).down) << a.DebugString();
  }
  EXPECT_GT(with_reset, 0);
  EXPECT_LT(with_reset, kRounds);
}

TEST(PnCounterTest, BaselinesStayWithinTotalsUnderAnyOperations) {
  StateGenerator gen(10);
  for (int i = 0; i < kRounds; ++i) {
    PnCounter c = gen.State();
    for (int step = 0; step < 8; ++step) {
      switch (gen.Pick(3)) {
        case 0:
          c.Reset();
          break;
        case 1:
          c.Merge(gen.State());
          break;
        default:
          (void)c.Add("x", static_cast<int64_t>(gen.Pick(2001)) - 1000);
      }
      for (const auto& [actor, counts] : c.actors()) {
        ASSERT_TRUE(counts.Consistent()) << c.DebugString();
      }
    }
  }
}

TEST(PnCounterTest, CheckAddChangesNothing) {
  PnCounter c = CounterWith("a", 1, 1);
  const PnCounter before = c;
  EXPECT_TRUE(c.CheckAdd("a", 5).ok());
  EXPECT_TRUE(c.CheckAdd("new", -5).ok());
  EXPECT_EQ(c, before);
}

TEST(PnCounterTest, SetActorReplacesTotalsOutright) {
  PnCounter c = CounterWith("a", 10, 10);
  c.SetActor("a", ActorCounts{1, 2});
  EXPECT_EQ(c.actors().at("a"), (ActorCounts{1, 2}));
}

TEST(PnCounterTest, DebugStringListsActorsInOrder) {
  PnCounter c;
  ASSERT_TRUE(c.Add("b", 1).ok());
  ASSERT_TRUE(c.Add("a", 5).ok());
  ASSERT_TRUE(c.Add("a", -2).ok());
  EXPECT_EQ(c.DebugString(), "{a:+5-2,b:+1-0}");
  EXPECT_EQ(CounterWith("m", kMax, 0).DebugString(),
            "{m:+18446744073709551615-0}");
}

TEST(PnCounterTest, CopiesAreIndependent) {
  PnCounter a = CounterWith("x", 1, 0);
  PnCounter b = a;
  ASSERT_TRUE(b.Add("x", 1).ok());
  EXPECT_EQ(a.actors().at("x").p, 1u);
  EXPECT_EQ(b.actors().at("x").p, 2u);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace dist_counter
