// Tests of the Api's input parsers (src/api/request_parser.h), without a
// store: names from path segments, batch bodies and config bodies.

#include "api/request_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dist_counter {
namespace {

TEST(RequestParserTest, CounterNamesArePercentDecodedAndChecked) {
  std::string name;
  ASSERT_TRUE(ParseCounterName("a%20b", &name).ok());
  EXPECT_EQ(name, "a b");
  ASSERT_TRUE(ParseCounterName("caf%C3%A9", &name).ok());
  EXPECT_EQ(name, "caf\xC3\xA9");
  ASSERT_TRUE(ParseCounterName("a+b", &name).ok());
  EXPECT_EQ(name, "a+b");  // '+' is only a space in query strings
  ASSERT_TRUE(ParseCounterName(std::string(200, 'n'), &name).ok());

  name = "kept";
  for (const std::string bad :
       {"", "%", "%4", "%ZZ", "a%2Fb", "a%00b", "%FF%FE", "%C0%AF", "%ED%A0%80",
        "%E2%82", "%80"}) {
    EXPECT_TRUE(ParseCounterName(bad, &name).IsInvalidArgument()) << bad;
  }
  EXPECT_TRUE(
      ParseCounterName(std::string(201, 'n'), &name).IsInvalidArgument());
  EXPECT_EQ(name, "kept");
}

TEST(RequestParserTest, BatchBodiesGiveDeltasInBodyOrder) {
  CounterDeltas deltas;
  ASSERT_TRUE(
      ParseBatchBody("{\"b\":-3,\"a\":2,\"c\":0,\"\\u00e9\":1}", &deltas).ok());
  EXPECT_EQ(deltas,
            CounterDeltas({{"b", -3}, {"a", 2}, {"c", 0}, {"\xC3\xA9", 1}}));
  ASSERT_TRUE(ParseBatchBody(" {} ", &deltas).ok());
  EXPECT_TRUE(deltas.empty());
  ASSERT_TRUE(ParseBatchBody("{\"m\":-9223372036854775808}", &deltas).ok());
  EXPECT_EQ(deltas, CounterDeltas({{"m", INT64_MIN}}));
}

TEST(RequestParserTest, BatchBodiesRefuseDuplicatesBadNamesAndBadDeltas) {
  CounterDeltas deltas = {{"kept", 1}};
  for (const std::string& bad : std::vector<std::string>{
           "", "[]", "{\"d\":1,\"d\":2}", "{\"d\":1,\"\\u0064\":1}",
           "{\"a/b\":1}", "{\"\":1}", "{\"a\\u0000\":1}", "{\"\\udc00\":1}",
           "{\"\\ud800\":1}", "{\"\xFF\":1}", "{\"a\":1.0}",
           "{\"a\":9223372036854775808}", "{\"a\":\"1\"}",
           std::string(100, '{'), std::string(300000, '[')}) {
    EXPECT_TRUE(ParseBatchBody(bad, &deltas).IsInvalidArgument())
        << bad.substr(0, 40);
  }
  EXPECT_EQ(deltas, CounterDeltas({{"kept", 1}}));
}

TEST(RequestParserTest, ConfigBodiesGiveThePeerList) {
  std::vector<std::string> peers;
  ASSERT_TRUE(
      ParseConfigBody("{\"actors\":[\"a:1\",\"b\"],\"other\":{}}", 64, &peers)
          .ok());
  EXPECT_EQ(peers, std::vector<std::string>({"a:1", "b"}));
  ASSERT_TRUE(ParseConfigBody("{\"actors\":[]}", 64, &peers).ok());
  EXPECT_TRUE(peers.empty());
}

TEST(RequestParserTest, ConfigBodiesRefuseTooManyAndDuplicatePeers) {
  std::vector<std::string> peers = {"kept:1"};
  Status s =
      ParseConfigBody("{\"actors\":[\"a:1\",\"b:1\",\"c:1\"]}", 2, &peers);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("at most 2"), std::string::npos) << s.message();
  for (const std::string& bad : std::vector<std::string>{
           "{\"actors\":[\"a:1\",\"a:1\"]}", "{\"actors\":[\"a\",\"a:7777\"]}",
           "{\"actors\":[1]}", "{\"actors\":\"a:1\"}", "{}", "[]",
           "{\"actors\":[\"a:1\"],\"actors\":[\"b:1\"]}",
           "{\"actors\":[\"a:1\"],\"x\":[[[[[[[[1]]]]]]]]}",
           std::string(200000, '[')}) {
    EXPECT_TRUE(ParseConfigBody(bad, 64, &peers).IsInvalidArgument())
        << bad.substr(0, 40);
  }
  EXPECT_EQ(peers, std::vector<std::string>({"kept:1"}));
}

}  // namespace
}  // namespace dist_counter
