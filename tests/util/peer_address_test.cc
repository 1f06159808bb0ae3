// Tests of peer address and peer list checks (src/util/peer_address.h).

#include "util/peer_address.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dist_counter {
namespace {

TEST(PeerAddressTest, ParsesHostAndPort) {
  PeerAddress address;
  ASSERT_TRUE(ParsePeerAddress("node-2:8888", &address).ok());
  EXPECT_EQ(address.ToString(), "node-2:8888");
  ASSERT_TRUE(ParsePeerAddress("node-3", &address).ok());
  EXPECT_EQ(address.ToString(), "node-3:7777");
  EXPECT_FALSE(ValidatePeerAddress("a b").ok());
  EXPECT_FALSE(ValidatePeerAddress("h:0").ok());
}

TEST(PeerAddressTest, CheckPeerListBoundsTheCount) {
  std::vector<std::string> peers;
  for (int i = 0; i < 5; ++i) peers.push_back("p" + std::to_string(i));
  EXPECT_TRUE(CheckPeerList(peers, 5).ok());
  Status s = CheckPeerList(peers, 4);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("at most 4"), std::string::npos) << s.message();
  EXPECT_TRUE(CheckPeerList({}, 0).ok());
}

TEST(PeerAddressTest, CheckPeerListRefusesAPeerListedTwice) {
  const std::vector<std::vector<std::string>> twice = {
      {"a:1", "a:1"}, {"a", "a:7777"}, {"Node:1", "b:2", "node:1"}};
  for (const auto& peers : twice) {
    Status s = CheckPeerList(peers, 64);
    EXPECT_TRUE(s.IsInvalidArgument()) << peers[0];
    EXPECT_NE(s.message().find("twice"), std::string::npos) << s.message();
  }
  EXPECT_TRUE(CheckPeerList({"a:1", "a:2", "b:1"}, 64).ok());
  EXPECT_TRUE(CheckPeerList({"a:1", "bad host"}, 64).IsInvalidArgument());
}

TEST(PeerAddressTest, ParsePeerListTakesJsonOrCommas) {
  std::vector<std::string> peers;
  ASSERT_TRUE(ParsePeerList("[\"a:1\",\"b\"]", &peers).ok());
  EXPECT_EQ(peers, std::vector<std::string>({"a:1", "b"}));
  ASSERT_TRUE(ParsePeerList(" a:1, b:2 ", &peers).ok());
  EXPECT_EQ(peers, std::vector<std::string>({"a:1", "b:2"}));
  ASSERT_TRUE(ParsePeerList("", &peers).ok());
  EXPECT_TRUE(peers.empty());
}

TEST(PeerAddressTest, ParsePeerListRefusesDeepNestingWithoutCrashing) {
  std::vector<std::string> peers = {"kept:1"};
  EXPECT_TRUE(
      ParsePeerList(std::string(200000, '['), &peers).IsInvalidArgument());
  EXPECT_TRUE(ParsePeerList("[[\"a:1\"]]", &peers).IsInvalidArgument());
  EXPECT_EQ(peers, std::vector<std::string>({"kept:1"}));
}

}  // namespace
}  // namespace dist_counter
