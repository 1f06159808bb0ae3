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

  PnCounter State() {
    static const char* const kActors[] = {"1.1.aaaaaaaa", "1.2.aaaaaaaa",
                                          "2.1.bbbbbbbb", "3.1.cccccccc", "x"};
    PnCounter c;
    for (const char* actor : kActors) {
      if (Pick(2) == 0) c.SetActor(actor, ActorCounts{Total(), Total()});
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
      if (gen.Pick(3) == 0) {
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
