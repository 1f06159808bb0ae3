// PeerClientsEnvironment calls InitPeerClients() (libcurl's process-wide
// setup) once, before the first test of a binary that registers it:
//
//   const auto* const kCurl = ::testing::AddGlobalTestEnvironment(
//       new test::PeerClientsEnvironment);
//
// Every cluster test binary that makes a PeerClient registers one.

#ifndef DIST_COUNTER_TESTS_CLUSTER_PEER_CLIENTS_ENVIRONMENT_H_
#define DIST_COUNTER_TESTS_CLUSTER_PEER_CLIENTS_ENVIRONMENT_H_

#include <gtest/gtest.h>

#include "cluster/peer_client.h"

namespace dist_counter {
namespace test {

class PeerClientsEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { ASSERT_TRUE(InitPeerClients()); }
};

}  // namespace test
}  // namespace dist_counter

#endif  // DIST_COUNTER_TESTS_CLUSTER_PEER_CLIENTS_ENVIRONMENT_H_
