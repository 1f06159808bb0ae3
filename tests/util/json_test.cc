// Tests of CheckJsonDepth and ParseJson (src/util/json.h).

#include "util/json.h"

#include <gtest/gtest.h>

#include <string>

namespace dist_counter {
namespace {

TEST(JsonTest, DepthCountsNestedArraysAndObjects) {
  EXPECT_TRUE(CheckJsonDepth("1", 0).ok());
  EXPECT_TRUE(CheckJsonDepth("[]", 1).ok());
  EXPECT_FALSE(CheckJsonDepth("[]", 0).ok());
  EXPECT_TRUE(CheckJsonDepth("{\"a\":[1,2],\"b\":[3]}", 2).ok());
  EXPECT_FALSE(CheckJsonDepth("{\"a\":[[1]]}", 2).ok());
  EXPECT_TRUE(CheckJsonDepth("[[],[],[]]", 2).ok());
}

TEST(JsonTest, BracketsInsideStringsDoNotCount) {
  EXPECT_TRUE(CheckJsonDepth("{\"[[[[{{{{\":\"]]]]}}}}[[[[\"}", 1).ok());
  // An escaped quote does not end the string.
  EXPECT_TRUE(CheckJsonDepth("[\"\\\"[[[[\"]", 1).ok());
  EXPECT_TRUE(CheckJsonDepth("[\"\\\\\"]", 1).ok());
  EXPECT_FALSE(CheckJsonDepth("[\"\\\\\",[[1]]]", 2).ok());
}

TEST(JsonTest, ParseJsonRefusesDeepNestingWithoutRecursion) {
  rapidjson::Document doc;
  const std::string deep(200000, '[');
  Status s = ParseJson(deep, kMaxJsonDepth, &doc);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  // With the depth bound out of the way, the iterative parser still copes.
  s = ParseJson(deep + std::string(200000, ']'), 1 << 30, &doc);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(doc.IsArray());
}

TEST(JsonTest, ParseJsonRefusesBadJsonAndBadUtf8) {
  rapidjson::Document doc;
  for (const std::string& bad :
       {std::string(""), std::string("{"), std::string("[1] x"),
        std::string("nope"), std::string("[\"\xFF\"]"),
        std::string("[\"\xC0\xAF\"]"), std::string("[\"\xED\xA0\x80\"]")}) {
    EXPECT_TRUE(ParseJson(bad, kMaxJsonDepth, &doc).IsInvalidArgument())
        << testing::PrintToString(bad);
  }
  ASSERT_TRUE(ParseJson(" {\"caf\xC3\xA9\":[1]} ", kMaxJsonDepth, &doc).ok());
  EXPECT_TRUE(doc.IsObject());
}

// Found by fuzz/json_fuzzer: RapidJSON 1.1 decodes a lone low-surrogate
// escape into bytes that are not UTF-8.
TEST(JsonTest, ParseJsonRefusesEscapesThatAreNotUnicode) {
  rapidjson::Document doc;
  for (const std::string& bad :
       {std::string("[\"\\udc00\"]"), std::string("[\"a\\udfffb\"]"),
        std::string("{\"\\udc00\":1}"), std::string("[\"\\ud800\"]"),
        std::string("{\"a\":[{\"b\":\"\\ude00\"}]}")}) {
    EXPECT_TRUE(ParseJson(bad, kMaxJsonDepth, &doc).IsInvalidArgument()) << bad;
  }
  ASSERT_TRUE(
      ParseJson("[\"\\ud83d\\ude00\",\"\\u00e9\"]", kMaxJsonDepth, &doc).ok());
  EXPECT_EQ(std::string(doc[0].GetString()), "\xF0\x9F\x98\x80");
}

// Found by fuzz/json_fuzzer: RapidJSON stops at a NUL byte as if the text
// ended there, so "[1]\0garbage" would parse as [1].
TEST(JsonTest, ParseJsonRefusesANulByte) {
  rapidjson::Document doc;
  using std::string_literals::operator""s;
  for (const std::string& bad :
       {"[1]\0[[["s, "1844\0\0V"s, "{\"a\":1}\0{\"b\":2}"s, "\0"s,
        "[\"a\0b\"]"s, "[1] \0"s}) {
    EXPECT_TRUE(ParseJson(bad, kMaxJsonDepth, &doc).IsInvalidArgument())
        << testing::PrintToString(bad);
  }
  EXPECT_TRUE(ParseJson("[\"a\\u0000b\"]", kMaxJsonDepth, &doc).ok());
  EXPECT_EQ(doc[0].GetStringLength(), 3u);
}

TEST(JsonTest, ParseJsonAnyStringsLeavesOnlyTheStringsToTheCaller) {
  rapidjson::Document doc;
  using std::string_literals::operator""s;
  // Strings that are not UTF-8 (raw, or an escaped lone low surrogate).
  ASSERT_TRUE(ParseJsonAnyStrings("[\"\xff\"]", kMaxJsonDepth, &doc).ok());
  EXPECT_EQ(std::string(doc[0].GetString()), "\xff");
  EXPECT_TRUE(ParseJsonAnyStrings("{\"\\udc00\":1}", kMaxJsonDepth, &doc).ok());
  // Everything else as ParseJson.
  for (const std::string& bad :
       {"[1]\0"s, "[\"a\0b\"]"s, "[\"\\ud800\"]"s, "[1"s, "[1] 2"s,
        std::string(kMaxJsonDepth + 1, '[') +
            std::string(kMaxJsonDepth + 1, ']')}) {
    EXPECT_TRUE(
        ParseJsonAnyStrings(bad, kMaxJsonDepth, &doc).IsInvalidArgument())
        << testing::PrintToString(bad);
  }
}

}  // namespace
}  // namespace dist_counter
