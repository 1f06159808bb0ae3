// The peer wire protocol without sockets: what the server encodes the
// client decodes exactly; counter states are refused exactly as on disk;
// counters beyond the receiver's bounds are named, not merged, and do not
// spoil the rest of their page.

#include "proto/wire.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store/codec.h"
#include "util/json.h"

namespace dist_counter {
namespace {

using namespace std::string_literals;

PeerIdentity Node() {
  PeerIdentity node;
  node.challenge_id = "7";
  node.node_id = "0000abcd";
  node.actor = "7.1.0000abcd";
  node.instance = 42;
  return node;
}

CounterChange Change(const std::string& name, int actors) {
  CounterChange change;
  change.name = name;
  for (int i = 0; i < actors; ++i) {
    change.state.SetActor("a" + std::to_string(i), ActorCounts{5, 2});
  }
  return change;
}

// A page of `states` (JSON texts of counter states) named c0, c1, ...
std::string PageOf(const std::vector<std::string>& states) {
  std::string counters;
  for (size_t i = 0; i < states.size(); ++i) {
    if (i > 0) counters += ",";
    counters +=
        R"({"name":"c)" + std::to_string(i) + R"(","state":)" + states[i] + "}";
  }
  return R"({"node":{"challenge_id":"7","node_id":"0000abcd","actor":"x"},)"
         R"("instance":42,"reset":true,"next":9,"more":false,"counters":[)" +
         counters + "]}";
}

TEST(WireTest, ChangesPageRoundTrips) {
  const std::vector<CounterChange> changes = {Change("a", 1), Change("b c", 3)};
  const std::string body = EncodeChangesPage(Node(), true, 17, true, changes);
  ChangesPage page;
  ASSERT_TRUE(
      DecodeChangesPage(body, ChangesCursor(), 10, WireLimits(), &page).ok())
      << body;
  EXPECT_EQ(page.node.actor, "7.1.0000abcd");
  EXPECT_EQ(page.node.instance, 42u);
  EXPECT_EQ(page.next.instance, 42u);
  EXPECT_EQ(page.next.since, 17u);
  EXPECT_TRUE(page.more);
  EXPECT_TRUE(page.reset);
  ASSERT_EQ(page.counters.size(), 2u);
  EXPECT_EQ(page.counters[1].name, "b c");
  EXPECT_EQ(page.counters[1].state, changes[1].state);
  EXPECT_TRUE(page.rejected.empty());
}

TEST(WireTest, ResetStatesTravelWithTheirBaselines) {
  CounterChange reset = Change("r", 2);
  reset.state.Reset();
  ASSERT_TRUE(reset.state.Add("a9", 3).ok());
  const std::vector<CounterChange> changes = {reset, Change("plain", 1)};
  const std::string body = EncodeChangesPage(Node(), true, 3, false, changes);
  ChangesPage page;
  ASSERT_TRUE(
      DecodeChangesPage(body, ChangesCursor(), 10, WireLimits(), &page).ok())
      << body;
  ASSERT_EQ(page.counters.size(), 2u);
  EXPECT_EQ(page.counters[0].state, reset.state);
  EXPECT_EQ(page.counters[0].state.ValueString(), "3");
  EXPECT_EQ(page.counters[0].bytes, EncodedCounterBytes(reset.state));
  // A state never reset goes out exactly as before baselines existed.
  EXPECT_NE(body.find(R"({"name":"plain","state":{"a0":{"p":5,"n":2}}})"),
            std::string::npos)
      << body;
  PeerIdentity node;
  PnCounter state;
  ASSERT_TRUE(DecodeCounterReply(EncodeCounterReply(Node(), "r", reset.state),
                                 "r", WireLimits(), &node, &state)
                  .ok());
  EXPECT_EQ(state, reset.state);
}

TEST(WireTest, CounterReplyRoundTrips) {
  const CounterChange change = Change("n", 2);
  const std::string body = EncodeCounterReply(Node(), "n", change.state);
  PeerIdentity node;
  PnCounter state;
  ASSERT_TRUE(DecodeCounterReply(body, "n", WireLimits(), &node, &state).ok());
  EXPECT_EQ(state, change.state);
  EXPECT_EQ(node.node_id, "0000abcd");
  EXPECT_EQ(node.instance, 0u);
  EXPECT_TRUE(DecodeCounterReply(body, "other", WireLimits(), &node, &state)
                  .IsCorruption());
}

TEST(WireTest, ACounterReplySaysWhetherThePeerHasTheCounter) {
  PeerIdentity node;
  PnCounter state;
  bool found = true;
  const std::string missing =
      EncodeCounterReply(Node(), "n", PnCounter(), /*found=*/false);
  EXPECT_NE(missing.find(R"("found":false)"), std::string::npos) << missing;
  ASSERT_TRUE(
      DecodeCounterReply(missing, "n", WireLimits(), &node, &state, &found)
          .ok());
  EXPECT_FALSE(found);
  // Older peers do not say: the counter counts as found.
  const std::string plain = EncodeCounterReply(Node(), "n", PnCounter());
  EXPECT_EQ(plain.find("found"), std::string::npos);
  ASSERT_TRUE(
      DecodeCounterReply(plain, "n", WireLimits(), &node, &state, &found).ok());
  EXPECT_TRUE(found);
  // found=false with a state, or not a bool, is malformed.
  const std::string head =
      R"({"node":{"challenge_id":"7","node_id":"0000abcd","actor":"x"},)"
      R"("name":"n",)";
  for (const std::string& bad :
       {head + R"("state":{"a":{"p":1,"n":0}},"found":false})",
        head + R"("state":{},"found":0})"}) {
    EXPECT_TRUE(
        DecodeCounterReply(bad, "n", WireLimits(), &node, &state, &found)
            .IsCorruption())
        << bad;
  }
}

TEST(WireTest, StatesAreRefusedExactlyAsOnDisk) {
  const std::vector<std::string> states = {
      R"({})",
      R"({"a":{"p":1,"n":0}})",
      R"({"a":{"n":0,"p":1},"b":{"p":18446744073709551615,"n":0}})",
      R"({"a":{"p":1,"n":0},"a":{"p":9,"n":0}})",
      R"({"":{"p":1,"n":0}})",
      R"({"a":{"p":-1,"n":0}})",
      R"({"a":{"p":1.0,"n":0}})",
      R"({"a":{"p":1}})",
      R"({"a":{"p":1,"n":0,"x":0}})",
      R"({"a":{"p":3,"n":1,"bp":2,"bn":1}})",
      R"({"a":{"p":3,"n":1,"bp":4,"bn":1}})",
      R"({"a":{"p":3,"n":1,"bp":2}})",
      R"({"a":null})",
      R"([])",
      R"(5)",
  };
  for (const std::string& state : states) {
    PnCounter from_disk;
    const bool disk_ok = DecodeCounter(state, &from_disk).ok();
    ChangesPage page;
    const bool wire_ok = DecodeChangesPage(PageOf({state}), ChangesCursor(), 10,
                                           WireLimits(), &page)
                             .ok();
    // A bad state refuses its counter, not the page.
    ASSERT_TRUE(wire_ok) << state;
    EXPECT_EQ(page.counters.size(), disk_ok ? 1u : 0u) << state;
    if (disk_ok) {
      EXPECT_EQ(page.counters[0].state, from_disk) << state;
    } else {
      ASSERT_EQ(page.rejected.size(), 1u) << state;
      EXPECT_EQ(page.rejected[0].reason, "bad_state") << state;
      EXPECT_EQ(page.rejected[0].name, "c0") << state;
    }
  }
}

TEST(WireTest, CountersBeyondTheBoundsAreNamedAndTheRestKept) {
  WireLimits limits;
  limits.max_actors_per_counter = 10;
  limits.max_counter_bytes = 400;
  std::string many = "{", big = "{";
  for (int i = 0; i < 11; ++i) {
    many += std::string(i > 0 ? "," : "") + R"("a)" + std::to_string(i) +
            R"(":{"p":1,"n":0})";
  }
  for (int i = 0; i < 5; ++i) {
    big += std::string(i > 0 ? "," : "") + "\"" + std::string(90, 'a' + i) +
           R"(":{"p":1,"n":0})";
  }
  many += "}";
  big += "}";
  const std::string fine = R"({"a":{"p":3,"n":1}})";
  ChangesPage page;
  ASSERT_TRUE(DecodeChangesPage(PageOf({fine, many, fine, big, fine}),
                                ChangesCursor(), 10, limits, &page)
                  .ok());
  ASSERT_EQ(page.counters.size(), 3u);
  EXPECT_EQ(page.counters[0].name, "c0");
  EXPECT_EQ(page.counters[1].name, "c2");
  EXPECT_EQ(page.counters[2].name, "c4");
  ASSERT_EQ(page.rejected.size(), 2u);
  EXPECT_EQ(page.rejected[0].name, "c1");
  EXPECT_EQ(page.rejected[0].reason, "too_many_actors");
  EXPECT_EQ(page.rejected[0].actors, 11u);
  EXPECT_EQ(page.rejected[1].name, "c3");
  EXPECT_EQ(page.rejected[1].reason, "too_large");
  EXPECT_GT(page.rejected[1].bytes, 400u);

  // A single counter reply beyond the bounds is refused outright.
  PeerIdentity node;
  PnCounter state;
  const std::string reply =
      R"({"node":{"challenge_id":"7","node_id":"0000abcd","actor":"x"},)"
      R"("name":"n","state":)" +
      many + "}";
  EXPECT_TRUE(
      DecodeCounterReply(reply, "n", limits, &node, &state).IsCorruption());
}

TEST(WireTest, AnOmittedCounterIsRejectedAndMovesTheCursor) {
  CounterChange huge = Change("huge", 0);
  huge.omitted = true;
  huge.bytes = 70 << 20;
  const std::string body =
      EncodeChangesPage(Node(), false, 8, true, {Change("a", 1), huge});
  EXPECT_NE(body.find(R"({"name":"huge","omitted":73400320})"),
            std::string::npos)
      << body;
  ChangesPage page;
  ASSERT_TRUE(
      DecodeChangesPage(body, ChangesCursor{42, 3}, 10, WireLimits(), &page)
          .ok());
  EXPECT_EQ(page.next.since, 8u);
  ASSERT_EQ(page.counters.size(), 1u);
  ASSERT_EQ(page.rejected.size(), 1u);
  EXPECT_EQ(page.rejected[0].name, "huge");
  EXPECT_EQ(page.rejected[0].reason, "too_large");
  EXPECT_EQ(page.rejected[0].bytes, size_t{70} << 20);
  // A marker must be exactly {"name","omitted":<bytes>}; another refuses its
  // counter only.
  for (const std::string& bad :
       {std::string(R"("omitted":-1)"), std::string(R"("omitted":"x")"),
        std::string(R"("omitted":5,"state":{})")}) {
    const std::string text =
        R"({"node":{"challenge_id":"7","node_id":"0000abcd","actor":"x"},)"
        R"("instance":42,"reset":true,"next":9,"more":false,"counters":[)"
        R"({"name":"c",)" +
        bad + "}]}";
    ASSERT_TRUE(
        DecodeChangesPage(text, ChangesCursor(), 10, WireLimits(), &page).ok())
        << bad;
    EXPECT_TRUE(page.counters.empty()) << bad;
    ASSERT_EQ(page.rejected.size(), 1u) << bad;
    EXPECT_EQ(page.rejected[0].reason, "bad_state") << bad;
  }
}

// A page of fake node 7 holding `counters` (a JSON array's elements).
std::string PageWith(const std::string& counters, bool more = false) {
  return R"({"node":{"challenge_id":"7","node_id":"0000abcd","actor":"x"},)"
         R"("instance":42,"reset":true,"next":9,"more":)"s +
         (more ? "true" : "false") + R"(,"counters":[)" + counters + "]}";
}

constexpr char kFine[] = R"({"a":{"p":3,"n":1}})";

std::string Entry(const std::string& name_json, const std::string& state) {
  return R"({"name":)" + name_json + R"(,"state":)" + state + "}";
}

TEST(WireTest, ABadNameRefusesOnlyItsCounter) {
  const std::string bad_names[] = {
      "\"\xff\"",       // raw bytes that are not UTF-8
      R"("\udc00")",    // an escaped lone low surrogate
      R"("a/b")",       // what no counter name may hold
      R"("a\u0000b")",  // NUL, escaped
      R"("")",          //
      "5",              // not a string
  };
  for (const std::string& bad : bad_names) {
    const std::string body =
        PageWith(Entry(R"("first")", kFine) + "," + Entry(bad, kFine) + "," +
                     Entry(R"("last")", kFine),
                 /*more=*/true);
    ChangesPage page;
    ASSERT_TRUE(
        DecodeChangesPage(body, ChangesCursor(), 10, WireLimits(), &page).ok())
        << bad;
    ASSERT_EQ(page.counters.size(), 2u) << bad;
    EXPECT_EQ(page.counters[0].name, "first");
    EXPECT_EQ(page.counters[1].name, "last");
    ASSERT_EQ(page.rejected.size(), 1u) << bad;
    EXPECT_EQ(page.rejected[0].reason, "bad_name") << bad;
    EXPECT_EQ(page.next.since, 9u);  // the cursor moves past it
    EXPECT_TRUE(page.more);
  }
}

TEST(WireTest, ABadActorIdRefusesOnlyItsCounter) {
  const std::string bad_states[] = {
      // Over the actor id limit.
      R"({")" + std::string(kMaxIdBytes + 1, 'a') + R"(":{"p":1,"n":0}})",
      // An escaped lone low surrogate, and raw bytes that are not UTF-8.
      R"({"a":{"p":1,"n":0},"\udc00":{"p":1,"n":0}})",
      "{\"\xc3\":{\"p\":1,\"n\":0}}",
      // NUL, escaped.
      R"({"a\u0000":{"p":1,"n":0}})",
  };
  for (const std::string& bad : bad_states) {
    const std::string body =
        PageWith(Entry(R"("first")", kFine) + "," + Entry(R"("bad")", bad) +
                 "," + Entry(R"("last")", kFine));
    ChangesPage page;
    ASSERT_TRUE(
        DecodeChangesPage(body, ChangesCursor(), 10, WireLimits(), &page).ok())
        << bad;
    ASSERT_EQ(page.counters.size(), 2u) << bad;
    ASSERT_EQ(page.rejected.size(), 1u) << bad;
    EXPECT_EQ(page.rejected[0].name, "bad");
    EXPECT_EQ(page.rejected[0].reason, "bad_actor") << bad;
    // In a counter reply the one counter is the reply: Corruption.
    PeerIdentity node;
    PnCounter state;
    const std::string reply =
        R"({"node":{"challenge_id":"7","node_id":"0000abcd","actor":"x"},)"
        R"("name":"bad","state":)" +
        bad + "}";
    EXPECT_TRUE(DecodeCounterReply(reply, "bad", WireLimits(), &node, &state)
                    .IsCorruption())
        << bad;
  }
  // An actor id of exactly the limit is fine.
  const std::string longest =
      R"({")" + std::string(kMaxIdBytes, 'a') + R"(":{"p":1,"n":0}})";
  ChangesPage page;
  ASSERT_TRUE(DecodeChangesPage(PageWith(Entry(R"("c")", longest)),
                                ChangesCursor(), 10, WireLimits(), &page)
                  .ok());
  EXPECT_EQ(page.counters.size(), 1u);
}

TEST(WireTest, BrokenFramingFailsThePageWhole) {
  const std::string fine = PageWith(Entry(R"("c")", kFine));
  std::string deep_state;
  for (int i = 0; i < 100000; ++i) deep_state += R"({"a":)";
  std::string ten_deep = "1";
  for (int i = 0; i < 5; ++i) ten_deep = "[" + ten_deep + "]";
  const std::string bodies[] = {
      fine + "\0"s,                                  // a NUL after the page
      fine.substr(0, 20) + "\0"s + fine.substr(20),  // ...or inside it
      PageWith(Entry(R"("c")", deep_state)),         // deep nesting in a state
      PageWith(Entry(R"("c")", R"({"a":{"p":)" + ten_deep + R"(,"n":0}})")),
      PageWith(Entry(R"("c")", kFine)).substr(1),  // not JSON
      R"({"node":{"challenge_id":"7","node_id":"0000abcd","actor":"x"},)"
      R"("instance":42,"reset":true,"more":false,"counters":[]})",  // no next
      R"({"instance":42,"reset":true,"next":9,"more":false,"counters":[]})",
      // A lone high surrogate escape is a JSON syntax error to RapidJSON.
      PageWith(Entry(R"("\ud800")", kFine)),
  };
  for (const std::string& body : bodies) {
    ChangesPage page;
    page.next.since = 12345;
    EXPECT_TRUE(
        DecodeChangesPage(body, ChangesCursor(), 10, WireLimits(), &page)
            .IsCorruption())
        << body.substr(0, 200);
    EXPECT_EQ(page.next.since, 12345u);  // unchanged
  }
  // Pages nest 5 deep; that is within the wire's own bound.
  ChangesPage page;
  EXPECT_TRUE(
      DecodeChangesPage(fine, ChangesCursor(), 10, WireLimits(), &page).ok());
  EXPECT_GE(kMaxWireJsonDepth, 5);
}

TEST(WireTest, EncodedRepliesAreValidJsonWhateverTheStoreHolds) {
  // Older versions stored names and actor ids that are not UTF-8.
  CounterChange bad_name = Change("\xff", 1);
  CounterChange bad_actor = Change("b", 2);
  bad_actor.state.SetActor("\xfe\xff", ActorCounts{7, 0});
  const std::string body = EncodeChangesPage(
      Node(), false, 8, true, {Change("a", 1), bad_name, bad_actor});
  rapidjson::Document doc;
  ASSERT_TRUE(ParseJson(body, kMaxWireJsonDepth, &doc).ok()) << body;
  ChangesPage page;
  ASSERT_TRUE(
      DecodeChangesPage(body, ChangesCursor{42, 3}, 10, WireLimits(), &page)
          .ok());
  ASSERT_EQ(page.counters.size(), 2u);  // the bad name is left out
  EXPECT_EQ(page.counters[0].name, "a");
  EXPECT_EQ(page.counters[1].name, "b");
  EXPECT_EQ(page.counters[1].state, Change("b", 2).state);  // without \xfe\xff
  EXPECT_TRUE(page.rejected.empty());
  EXPECT_TRUE(page.more);

  // A page left empty cannot say "more": the puller would refuse it.
  const std::string empty =
      EncodeChangesPage(Node(), false, 8, true, {bad_name});
  ASSERT_TRUE(
      DecodeChangesPage(empty, ChangesCursor{42, 3}, 10, WireLimits(), &page)
          .ok())
      << empty;
  EXPECT_TRUE(page.counters.empty());
  EXPECT_FALSE(page.more);
  EXPECT_EQ(page.next.since, 8u);

  const std::string reply = EncodeCounterReply(Node(), "b", bad_actor.state);
  ASSERT_TRUE(ParseJson(reply, kMaxWireJsonDepth, &doc).ok()) << reply;
}

TEST(WireTest, ServedPageBytesHasADefaultAndACap) {
  EXPECT_EQ(ServedPageBytes(0), kDefaultPageBytes);
  EXPECT_EQ(ServedPageBytes(1000), 1000u);
  EXPECT_EQ(ServedPageBytes(UINT64_MAX), kMaxPageBytes);
}

TEST(WireTest, TargetsCarryTheCursorAndBudgets) {
  EXPECT_EQ(ChangesTarget(ChangesCursor{5, 9}, 100, 4096),
            "/internal/changes?instance=5&since=9&limit=100&max_bytes=4096");
  EXPECT_EQ(CounterTarget("a b/c"), "/internal/counter/a%20b%2Fc");
}

}  // namespace
}  // namespace dist_counter
