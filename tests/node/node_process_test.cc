// Tests of the dist_counter process itself: flags, environment, signals,
// crash recovery and startup failures. Each test runs the real binary.

#include "testing/node_process.h"

#include <gtest/gtest.h>

#include "testing/http_client.h"

namespace dist_counter {
namespace test {
namespace {

TEST(NodeProcessTest, ReadmeCurlSessionGivesTheOriginalReplies) {
  TempDir tmp;
  NodeProcessOptions options;
  options.data_dir = tmp.Sub("node1");
  options.flags = {"--challenge_id=1"};
  NodeProcess node(options);
  ASSERT_TRUE(node.StartAndWait()) << node.ReadLog();

  HttpResponse r = HttpRequest("POST", node.Url("/counter/test"), "2");
  EXPECT_EQ(r.status, 204) << r.error << r.body;
  r = HttpRequest("POST", node.Url("/counter/test"), "-5");
  EXPECT_EQ(r.status, 204) << r.error << r.body;
  r = HttpRequest("GET", node.Url("/counter/test/value"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "-3");
  r = HttpRequest("GET", node.Url("/counter/nothing/value"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "0");
  r = HttpRequest("POST", node.Url("/counter/test"), "abc");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body,
            "{\"message\":\"Validation Failure\",\"type\":\"ValidationError\"}");
  r = HttpRequest("GET", node.Url("/ping"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"status\":\"OK\"}");
  r = HttpRequest("GET", node.Url("/config"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body,
            "{\"actors\":[],\"challenge_id\":\"1\",\"connected_nodes\":[]}");

  EXPECT_EQ(node.Stop(), 0) << node.ReadLog();
}

}  // namespace
}  // namespace test
}  // namespace dist_counter
