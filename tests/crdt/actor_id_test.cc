#include "crdt/actor_id.h"

#include <gtest/gtest.h>

#include <string>

namespace dist_counter {
namespace {

TEST(ActorIdTest, MakeJoinsTheThreeParts) {
  EXPECT_EQ(MakeActorId("1", 3, "3f2a9c01"), "1.3.3f2a9c01");
  EXPECT_EQ(MakeActorId("a.b", 18446744073709551615u, "00000000"),
            "a.b.18446744073709551615.00000000");
}

TEST(ActorIdTest, OwnActorsGiveTheirIncarnation) {
  uint64_t incarnation = 0;
  EXPECT_EQ(ClassifyActor("1.7.3f2a9c01", "1", "3f2a9c01", &incarnation),
            ActorOwner::kOwn);
  EXPECT_EQ(incarnation, 7u);
  // A challenge id with dots is matched whole, from both ends.
  EXPECT_EQ(ClassifyActor("x.1.42.3f2a9c01", "x.1", "3f2a9c01", &incarnation),
            ActorOwner::kOwn);
  EXPECT_EQ(incarnation, 42u);
  EXPECT_EQ(ClassifyActor(MakeActorId("c", 18446744073709551615u, "abcdef01"),
                          "c", "abcdef01", &incarnation),
            ActorOwner::kOwn);
  EXPECT_EQ(incarnation, 18446744073709551615u);
}

TEST(ActorIdTest, OtherNodesActorsAreNotOurs) {
  const std::string node = "3f2a9c01";
  for (const char* actor : {"2.7.3f2a9c01",    // another challenge id
                            "11.7.3f2a9c01",   // one that starts like ours
                            "1.7.3f2a9c02",    // another node id
                            "1.7.13f2a9c01",   // a node id that ends like ours
                            "1.3f2a9c01",      // no incarnation
                            "1..3f2a9c01",     // an empty one
                            "x.1.7.3f2a9c01",  // ours is "1", not "x.1"
                            "1", ""}) {
    SCOPED_TRACE(actor);
    uint64_t incarnation = 99;
    EXPECT_EQ(ClassifyActor(actor, "1", node, &incarnation),
              ActorOwner::kOther);
    EXPECT_EQ(incarnation, 99u);
  }
}

TEST(ActorIdTest, SpellingsThisNodeNeverWritesAreLookalikes) {
  for (const char* actor :
       {"1.07.3f2a9c01", "1.+7.3f2a9c01", "1.x.3f2a9c01", "1.-1.3f2a9c01",
        "1.18446744073709551616.3f2a9c01", "1.7 .3f2a9c01", "1.0x7.3f2a9c01"}) {
    SCOPED_TRACE(actor);
    uint64_t incarnation = 99;
    EXPECT_EQ(ClassifyActor(actor, "1", "3f2a9c01", &incarnation),
              ActorOwner::kLookalike);
    EXPECT_EQ(incarnation, 99u);
  }
  uint64_t incarnation = 0;
  EXPECT_EQ(ClassifyActor("1.0.3f2a9c01", "1", "3f2a9c01", &incarnation),
            ActorOwner::kOwn);  // "0" itself is canonical
}

}  // namespace
}  // namespace dist_counter
