#include "store/codec.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

namespace dist_counter {

// Shows a PnCounter in test failures as "{actor:+p-n,...}".
void PrintTo(const PnCounter& counter, std::ostream* os) {
  *os << counter.DebugString();
}

namespace {

using namespace std::string_literals;

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

PnCounter Sentinel() {
  PnCounter c;
  c.SetActor("sentinel", ActorCounts{1, 2});
  return c;
}

// Decodes `json`, expecting Corruption and *counter unchanged.
void ExpectCorrupt(std::string_view json) {
  PnCounter counter = Sentinel();
  Status s = DecodeCounter(json, &counter);
  EXPECT_TRUE(s.IsCorruption()) << "'" << json << "': " << s.ToString();
  EXPECT_EQ(counter, Sentinel()) << "'" << json << "'";
}

PnCounter RoundTrip(const PnCounter& in) {
  PnCounter out = Sentinel();
  Status s = DecodeCounter(EncodeCounter(in), &out);
  EXPECT_TRUE(s.ok()) << EncodeCounter(in) << ": " << s.ToString();
  return out;
}

TEST(CodecTest, EncodeCounterIsCompactJson) {
  PnCounter c;
  c.SetActor("1.2.3f2a9c01", ActorCounts{5, 2});
  EXPECT_EQ(EncodeCounter(c), R"({"1.2.3f2a9c01":{"p":5,"n":2}})");
  c.SetActor("0.1.x", ActorCounts{0, 0});
  EXPECT_EQ(EncodeCounter(c),
            R"({"0.1.x":{"p":0,"n":0},"1.2.3f2a9c01":{"p":5,"n":2}})");
  EXPECT_EQ(EncodeCounter(PnCounter()), "{}");
}

TEST(CodecTest, RoundTripKeepsEveryTotal) {
  PnCounter c;
  c.SetActor("a", ActorCounts{kMax, kMax});
  c.SetActor("b", ActorCounts{0, kMax});
  c.SetActor("c", ActorCounts{kMax, 0});
  c.SetActor("d", ActorCounts{uint64_t{1} << 53 | 1, (uint64_t{1} << 63)});
  EXPECT_EQ(EncodeCounter(c).find("18446744073709551615") != std::string::npos,
            true);
  const PnCounter out = RoundTrip(c);
  EXPECT_EQ(out, c);
  EXPECT_EQ(out.ValueString(), c.ValueString());
}

TEST(CodecTest, RoundTripOfEmptyCounter) {
  const PnCounter out = RoundTrip(PnCounter());
  EXPECT_TRUE(out.empty());
}

TEST(CodecTest, RoundTripOfUnusualActorNames) {
  const std::string names[] = {
      "with space",
      "quote\"inside",
      "back\\slash",
      "new\nline\ttab",
      "nul\0byte"s,
      "\x01\x1f control",
      "ünïcødé ✓ 😀",
      "{\"p\":1,\"n\":2}",
      "p",
      "n",
      std::string(1000, 'z'),
      "/slash/is/fine/for/actors",
  };
  for (const std::string& name : names) {
    PnCounter c;
    c.SetActor(name, ActorCounts{7, 3});
    const PnCounter out = RoundTrip(c);
    EXPECT_EQ(out, c) << name;
    ASSERT_EQ(out.actors().size(), 1u);
    EXPECT_EQ(out.actors().begin()->first, name);
  }
  // All of them in one counter.
  PnCounter all;
  uint64_t i = 0;
  for (const std::string& name : names) {
    ++i;
    all.SetActor(name, ActorCounts{i, i * 2});
  }
  EXPECT_EQ(RoundTrip(all), all);
}

TEST(CodecTest, DecodeAcceptsAnyMemberOrderAndWhitespace) {
  PnCounter c;
  ASSERT_TRUE(
      DecodeCounter(R"( { "a" : { "n" : 2 , "p" : 5 } , "b":{"p":0,"n":0} } )",
                    &c)
          .ok());
  EXPECT_EQ(c.DebugString(), "{a:+5-2,b:+0-0}");
}

TEST(CodecTest, DecodeReplacesTheTarget) {
  PnCounter c = Sentinel();
  ASSERT_TRUE(DecodeCounter(R"({"a":{"p":1,"n":0}})", &c).ok());
  EXPECT_EQ(c.DebugString(), "{a:+1-0}");
  ASSERT_TRUE(DecodeCounter("{}", &c).ok());
  EXPECT_TRUE(c.empty());
}

TEST(CodecTest, DecodeRejectsBadJson) {
  ExpectCorrupt("");
  ExpectCorrupt(std::string_view());
  ExpectCorrupt(" ");
  ExpectCorrupt("{");
  ExpectCorrupt("}");
  ExpectCorrupt("not json");
  ExpectCorrupt("{'a':{'p':1,'n':2}}");
  ExpectCorrupt(R"({"a":{"p":1,"n":2},})");
  ExpectCorrupt(R"({"a":{"p":1,"n":2}}x)");
  ExpectCorrupt(R"({"a":{"p":1,"n":2}}{})");
  // A raw NUL is never valid JSON text; it must not end the record early.
  ExpectCorrupt("{\"a\":{\"p\":1,\"n\":2}}\0"s);
  ExpectCorrupt("{\"a\":{\"p\":1,\"n\":2}}\0garbage"s);
  ExpectCorrupt("{\"a\":{\"p\":1,\"n\":2}}\0{\"b\":1}"s);
  ExpectCorrupt("{\"a\0\":{\"p\":1,\"n\":2}}"s);
  ExpectCorrupt("\0"s);
  ExpectCorrupt(R"({"a":{"p":01,"n":2}})");
}

TEST(CodecTest, DecodeRejectsTruncatedJson) {
  const std::string good = R"({"a":{"p":15,"n":2},"b":{"p":3,"n":4}})";
  for (size_t len = 0; len < good.size(); ++len) {
    SCOPED_TRACE(len);
    ExpectCorrupt(std::string_view(good).substr(0, len));
  }
}

TEST(CodecTest, DecodeRejectsNonObjects) {
  ExpectCorrupt("[]");
  ExpectCorrupt(R"([{"a":{"p":1,"n":2}}])");
  ExpectCorrupt("5");
  ExpectCorrupt("\"a\"");
  ExpectCorrupt("null");
  ExpectCorrupt("true");
  ExpectCorrupt(R"({"a":[1,2]})");
  ExpectCorrupt(R"({"a":5})");
  ExpectCorrupt(R"({"a":null})");
  ExpectCorrupt(R"({"a":"p1n2"})");
}

TEST(CodecTest, DecodeRejectsNumbersThatAreNotUint64) {
  ExpectCorrupt(R"({"a":{"p":-1,"n":2}})");
  ExpectCorrupt(R"({"a":{"p":1,"n":-2}})");
  ExpectCorrupt(R"({"a":{"p":1.5,"n":2}})");
  ExpectCorrupt(R"({"a":{"p":1.0,"n":2}})");
  ExpectCorrupt(R"({"a":{"p":1e3,"n":2}})");
  ExpectCorrupt(R"({"a":{"p":18446744073709551616,"n":2}})");
  ExpectCorrupt(R"({"a":{"p":99999999999999999999999,"n":2}})");
  ExpectCorrupt(R"({"a":{"p":"1","n":2}})");
  ExpectCorrupt(R"({"a":{"p":1,"n":"2"}})");
  ExpectCorrupt(R"({"a":{"p":true,"n":2}})");
  ExpectCorrupt(R"({"a":{"p":null,"n":2}})");
  ExpectCorrupt(R"({"a":{"p":{},"n":2}})");
}

TEST(CodecTest, DecodeRejectsMissingOrExtraFields) {
  ExpectCorrupt(R"({"a":{}})");
  ExpectCorrupt(R"({"a":{"p":1}})");
  ExpectCorrupt(R"({"a":{"n":1}})");
  ExpectCorrupt(R"({"a":{"p":1,"n":2,"x":3}})");
  ExpectCorrupt(R"({"a":{"p":1,"q":2}})");
  ExpectCorrupt(R"({"a":{"p":1,"p":2}})");
  ExpectCorrupt(R"({"a":{"P":1,"N":2}})");
}

TEST(CodecTest, DecodeRejectsEmptyActor) {
  ExpectCorrupt(R"({"":{"p":1,"n":2}})");
}

TEST(CodecTest, DecodeRejectsAnActorGivenTwice) {
  // Which of the two totals would be right is unknowable: refuse both.
  ExpectCorrupt(R"({"a":{"p":1,"n":0},"a":{"p":9,"n":0}})");
  ExpectCorrupt(R"({"a":{"p":1,"n":0},"b":{"p":1,"n":0},"a":{"p":1,"n":0}})");
}

TEST(CodecTest, DecodeRejectsDeepNestingWithoutCrashing) {
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "{\"a\":";
  ExpectCorrupt(deep);
}

TEST(CodecTest, EncodedCounterBytesIsTheEncodedSize) {
  const std::vector<PnCounter> cases = [] {
    std::vector<PnCounter> counters(4);
    counters[1].SetActor("a", ActorCounts{0, 0});
    counters[2].SetActor("1.2.3f2a9c01", ActorCounts{kMax, 7});
    counters[2].SetActor("b", ActorCounts{10, 99});
    counters[3].SetActor("q\"\\\n\x01\x7f\xc3\xa9", ActorCounts{1, 0});
    return counters;
  }();
  for (const PnCounter& counter : cases) {
    EXPECT_EQ(EncodedCounterBytes(counter), EncodeCounter(counter).size())
        << EncodeCounter(counter);
  }
}

TEST(CodecTest, OneBadActorSpoilsTheWholeRecord) {
  ExpectCorrupt(R"({"a":{"p":1,"n":2},"b":{"p":-1,"n":0}})");
  ExpectCorrupt(R"({"a":{"p":1,"n":2},"b":{"p":1}})");
}

PnCounter ResetState() {
  PnCounter c;
  c.SetActor("1.2.3f2a9c01", ActorCounts{5, 2, 5, 2});
  c.SetActor("2.1.00000002", ActorCounts{9, 0, 4, 0});
  c.SetActor("3.1.00000003", ActorCounts{1, 1});  // after the reset
  return c;
}

// The rule of releases before baselines, kept here as they shipped it:
// every actor's entry is an object of exactly "p" and "n", unsigned 64-bit.
bool OldReleaseAccepts(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return false;
  for (const auto& member : doc.GetObject()) {
    const rapidjson::Value& v = member.value;
    if (!v.IsObject() || v.MemberCount() != 2) return false;
    auto p = v.FindMember("p");
    auto n = v.FindMember("n");
    if (p == v.MemberEnd() || n == v.MemberEnd()) return false;
    if (!p->value.IsUint64() || !n->value.IsUint64()) return false;
  }
  return true;
}

TEST(CodecTest, BaselinesAreWrittenOnlyForActorsThatHaveThem) {
  EXPECT_EQ(EncodeCounter(ResetState()),
            R"({"1.2.3f2a9c01":{"p":5,"n":2,"bp":5,"bn":2},)"
            R"("2.1.00000002":{"p":9,"n":0,"bp":4,"bn":0},)"
            R"("3.1.00000003":{"p":1,"n":1}})");
  // One baseline of zero still writes both.
  PnCounter c;
  c.SetActor("a", ActorCounts{3, 7, 0, 7});
  EXPECT_EQ(EncodeCounter(c), R"({"a":{"p":3,"n":7,"bp":0,"bn":7}})");
}

TEST(CodecTest, BaselinesRoundTrip) {
  EXPECT_EQ(RoundTrip(ResetState()), ResetState());
  EXPECT_EQ(RoundTrip(ResetState()).ValueString(), "5");
  PnCounter top;
  top.SetActor("a", ActorCounts{kMax, kMax, kMax, kMax - 1});
  EXPECT_EQ(RoundTrip(top), top);
  EXPECT_EQ(EncodedCounterBytes(ResetState()),
            EncodeCounter(ResetState()).size());
  EXPECT_EQ(EncodedCounterBytes(top), EncodeCounter(top).size());
}

// A data dir of a release before baselines opens unchanged: its records
// decode (no baselines means zeros) and re-encode byte for byte.
TEST(CodecTest, RecordsOfOlderReleasesDecodeAndReencodeIdentically) {
  const std::string old_records[] = {
      R"({})",
      R"({"1.2.3f2a9c01":{"p":5,"n":2}})",
      R"({"0.1.x":{"p":0,"n":0},"1.2.3f2a9c01":{"p":18446744073709551615,"n":2}})",
  };
  for (const std::string& record : old_records) {
    PnCounter c;
    ASSERT_TRUE(DecodeCounter(record, &c).ok()) << record;
    EXPECT_FALSE(c.HasBaselines()) << record;
    EXPECT_EQ(EncodeCounter(c), record);
    EXPECT_TRUE(OldReleaseAccepts(EncodeCounter(c))) << record;
  }
}

// A state with baselines is refused by the rules of older releases (an
// unknown field in an actor's entry), so an old node reports it instead of
// reading the counter without its reset.
TEST(CodecTest, StatesWithBaselinesAreRefusedByOlderReleases) {
  EXPECT_FALSE(OldReleaseAccepts(EncodeCounter(ResetState())));
  PnCounter one;
  one.SetActor("a", ActorCounts{1, 0, 1, 0});
  EXPECT_FALSE(OldReleaseAccepts(EncodeCounter(one)));
  // The same states without a reset pass.
  PnCounter plain;
  plain.SetActor("a", ActorCounts{1, 0});
  EXPECT_TRUE(OldReleaseAccepts(EncodeCounter(plain)));
}

TEST(CodecTest, DecodeRejectsMalformedBaselines) {
  // Only one of the two, or other fields beside them.
  ExpectCorrupt(R"({"a":{"p":1,"n":2,"bp":1}})");
  ExpectCorrupt(R"({"a":{"p":1,"n":2,"bn":1}})");
  ExpectCorrupt(R"({"a":{"p":1,"n":2,"bp":1,"x":1}})");
  ExpectCorrupt(R"({"a":{"p":1,"n":2,"bp":1,"bn":0,"x":1}})");
  ExpectCorrupt(R"({"a":{"bp":1,"bn":0,"p":1}})");
  ExpectCorrupt(R"({"a":{"p":1,"n":2,"bp":-1,"bn":0}})");
  ExpectCorrupt(R"({"a":{"p":1,"n":2,"bp":1,"bn":"0"}})");
  // A baseline above its total breaks bp <= p, bn <= n.
  ExpectCorrupt(R"({"a":{"p":1,"n":2,"bp":2,"bn":0}})");
  ExpectCorrupt(R"({"a":{"p":1,"n":2,"bp":0,"bn":3}})");
  ExpectCorrupt(R"({"b":{"p":1,"n":0},"a":{"p":0,"n":0,"bp":1,"bn":0}})");
  // At the limits, and in any order, they are fine.
  PnCounter c;
  ASSERT_TRUE(DecodeCounter(R"({"a":{"bn":2,"bp":1,"n":2,"p":1}})", &c).ok());
  EXPECT_EQ(c.actors().at("a"), (ActorCounts{1, 2, 1, 2}));
  EXPECT_EQ(c.ValueString(), "0");
}

TEST(CodecTest, ValidateCounterName) {
  EXPECT_TRUE(ValidateCounterName("a").ok());
  EXPECT_TRUE(ValidateCounterName("my counter").ok());
  EXPECT_TRUE(ValidateCounterName("ünïcødé ✓").ok());
  EXPECT_TRUE(ValidateCounterName("a.b-c_d:e?f=g&h%20").ok());
  EXPECT_TRUE(ValidateCounterName("\xff\xfe not utf-8").ok());
  EXPECT_TRUE(ValidateCounterName(std::string(200, 'x')).ok());

  EXPECT_TRUE(ValidateCounterName("").IsInvalidArgument());
  EXPECT_TRUE(ValidateCounterName(std::string(201, 'x')).IsInvalidArgument());
  EXPECT_TRUE(ValidateCounterName("/").IsInvalidArgument());
  EXPECT_TRUE(ValidateCounterName("a/b").IsInvalidArgument());
  EXPECT_TRUE(ValidateCounterName("ab/").IsInvalidArgument());
  EXPECT_TRUE(ValidateCounterName("a\0b"s).IsInvalidArgument());
  EXPECT_TRUE(ValidateCounterName(std::string(1, '\0')).IsInvalidArgument());
}

TEST(CodecTest, NewNamesMustAlsoBeUtf8) {
  EXPECT_TRUE(ValidateNewCounterName("a").ok());
  EXPECT_TRUE(ValidateNewCounterName("ünïcødé ✓").ok());
  // Loadable from disk, but never taken from a client or a peer again.
  EXPECT_TRUE(ValidateCounterName("\xff").ok());
  EXPECT_TRUE(ValidateNewCounterName("\xff").IsInvalidArgument());
  EXPECT_TRUE(ValidateNewCounterName("\xed\xb0\x80").IsInvalidArgument());
  EXPECT_TRUE(ValidateNewCounterName("a\xc3").IsInvalidArgument());
  // ...and everything ValidateCounterName refuses.
  EXPECT_TRUE(ValidateNewCounterName("").IsInvalidArgument());
  EXPECT_TRUE(ValidateNewCounterName("a/b").IsInvalidArgument());
  EXPECT_TRUE(ValidateNewCounterName("a\0b"s).IsInvalidArgument());
  EXPECT_TRUE(
      ValidateNewCounterName(std::string(201, 'x')).IsInvalidArgument());
}

TEST(CodecTest, StatesOfOlderVersionsWithActorIdsThatAreNotUtf8StillLoad) {
  // Older versions took any actor id from a peer; such records must load.
  PnCounter counter;
  ASSERT_TRUE(DecodeCounter("{\"\xff\xfe\":{\"p\":3,\"n\":1}}", &counter).ok());
  EXPECT_EQ(counter.actors().count("\xff\xfe"), 1u);
  ASSERT_TRUE(DecodeCounter(R"({"\udc00":{"p":3,"n":1}})", &counter).ok());
  EXPECT_EQ(counter.actors().size(), 1u);
}

TEST(CodecTest, NameLimitCountsBytesNotCharacters) {
  // 100 two-byte characters: 200 bytes, accepted; one more byte is not.
  std::string name;
  for (int i = 0; i < 100; ++i) name += "é";
  ASSERT_EQ(name.size(), 200u);
  EXPECT_TRUE(ValidateCounterName(name).ok());
  EXPECT_TRUE(ValidateCounterName(name + "x").IsInvalidArgument());
}

TEST(CodecTest, CounterKeyRoundTrip) {
  EXPECT_EQ(CounterKey("hits"), "counter/hits");
  EXPECT_EQ(CounterKey(""), "counter/");
  const std::string names[] = {"hits", "with space", "ünï",
                               std::string(200, 'q')};
  for (const std::string& name : names) {
    std::string parsed = "unchanged";
    ASSERT_TRUE(ParseCounterKey(CounterKey(name), &parsed)) << name;
    EXPECT_EQ(parsed, name);
  }
}

TEST(CodecTest, ParseCounterKeyRejectsOtherKeys) {
  const char* keys[] = {"meta/actors", "meta/incarnation", "counter",   "",
                        "Counter/x",   "counters/x",       "xcounter/y"};
  for (const char* key : keys) {
    std::string name = "unchanged";
    EXPECT_FALSE(ParseCounterKey(key, &name)) << key;
    EXPECT_EQ(name, "unchanged") << key;
  }
}

TEST(CodecTest, MetaKeysAreNotCounterKeys) {
  std::string name;
  for (std::string_view key :
       {kMetaFormatKey, kMetaChallengeIdKey, kMetaNodeIdKey,
        kMetaIncarnationKey, kMetaActorsKey}) {
    EXPECT_FALSE(ParseCounterKey(key, &name)) << key;
  }
}

TEST(CodecTest, StringListRoundTrip) {
  const std::vector<std::vector<std::string>> lists = {
      {},
      {"a:1"},
      {"node1:7777", "node2", "node3:9999"},
      {"quote\"", "back\\slash", "ünï", "n\0l"s, ""},
  };
  for (const auto& list : lists) {
    std::vector<std::string> out = {"sentinel"};
    ASSERT_TRUE(DecodeStringList(EncodeStringList(list), &out).ok());
    EXPECT_EQ(out, list);
  }
  EXPECT_EQ(EncodeStringList({"a:1", "b"}), R"(["a:1","b"])");
  EXPECT_EQ(EncodeStringList({}), "[]");
}

TEST(CodecTest, DecodeStringListRejectsNonLists) {
  const char* bad[] = {"",           "[",         "{}",         R"({"a":1})",
                       "\"a\"",      "[1]",       R"(["a",1])", R"(["a",null])",
                       R"([["a"]])", R"(["a"]x)", "null"};
  for (const char* json : bad) {
    std::vector<std::string> list = {"sentinel"};
    EXPECT_TRUE(DecodeStringList(json, &list).IsInvalidArgument()) << json;
    EXPECT_EQ(list, std::vector<std::string>{"sentinel"}) << json;
  }
  const std::string with_nul[] = {"[\"a\"]\0"s, "[\"a\"]\0[1]"s, "[\"a\0\"]"s};
  for (const std::string& json : with_nul) {
    std::vector<std::string> list = {"sentinel"};
    EXPECT_TRUE(DecodeStringList(json, &list).IsInvalidArgument()) << json;
    EXPECT_EQ(list, std::vector<std::string>{"sentinel"}) << json;
  }
}

TEST(CodecTest, DecodeStringListRejectsDeepNestingWithoutCrashing) {
  // A recursive parser overflows the stack on this.
  std::vector<std::string> list = {"sentinel"};
  EXPECT_TRUE(
      DecodeStringList(std::string(200000, '['), &list).IsInvalidArgument());
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_TRUE(DecodeStringList(deep, &list).IsInvalidArgument());
  EXPECT_EQ(list, std::vector<std::string>{"sentinel"});
}

}  // namespace
}  // namespace dist_counter
