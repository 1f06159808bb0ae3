// Token authentication between peers: the peer client sends the token
// (checked against an in-process server that requires one), two real nodes
// sharing a token file converge, and a node whose peer holds another token
// merges nothing, reports it and keeps running. Also how a node starts (or
// refuses to) with --auth_token_file and DIST_COUNTER_AUTH_TOKEN_FILE.
//
// Timings are never asserted; deadlines only bound a failing test.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "api/http_server.h"
#include "api/routes.h"
#include "cluster/peer_client.h"
#include "cluster/peer_clients_environment.h"
#include "store/counter_store.h"
#include "testing/http_client.h"
#include "testing/metric_value.h"
#include "testing/node_process.h"
#include "testing/wait_until.h"
#include "util/metrics.h"

namespace dist_counter {
namespace {

using test::HttpRequest;
using test::HttpResponse;
using test::NodeProcess;
using test::NodeProcessOptions;
using test::TempDir;

const auto* const kCurl =
    ::testing::AddGlobalTestEnvironment(new test::PeerClientsEnvironment);

constexpr char kToken[] = "cluster-token-0123456789abcdef";
constexpr char kOtherToken[] = "another-token-0123456789abcdef";

// Writes `content` to `path` with mode 0600.
void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
  chmod(path.c_str(), 0600);
}

std::map<std::string, std::string> Bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

// ---- The peer client against a server that requires a token

class PeerClientTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions store_options;
    store_options.data_dir = dir_.Sub("db");
    store_options.challenge_id = "1";
    store_options.flush_interval_ms = 600000;
    Status s = CounterStore::Open(store_options, &store_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_TRUE(store_->Increment("c", 7).ok());
    ApiOptions api_options;
    api_options.auth.token = kToken;
    api_ = std::make_unique<Api>(api_options, store_.get(), nullptr, &metrics_);
    HttpServerOptions options;
    options.bind = "127.0.0.1";
    options.port = 0;
    s = HttpServer::Start(options, api_.get(), &server_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  std::string Address() const {
    return "127.0.0.1:" + std::to_string(server_->port());
  }

  PeerClientOptions WithToken(const std::string& token) const {
    PeerClientOptions options;
    options.timeout_ms = 5000;
    options.connect_timeout_ms = 5000;
    options.auth_token = token;
    return options;
  }

  TempDir dir_;
  Metrics metrics_;
  std::unique_ptr<CounterStore> store_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<HttpServer> server_;  // stopped first
};

TEST_F(PeerClientTokenTest, TheRightTokenFetchesChangesAndCounters) {
  PeerClient client(Address(), WithToken(kToken));
  ChangesPage page;
  Status s = client.FetchChanges(ChangesCursor(), 100, &page);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(page.counters.size(), 1u);
  PeerIdentity node;
  PnCounter state;
  s = client.FetchCounter("c", &node, &state);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(state.ValueString(), "7");
  // The fan-out of consistent reads sends it too.
  CounterFanout fanout(WithToken(kToken));
  std::vector<CounterFanout::Result> results;
  fanout.FetchCounter({Address()}, "c", &results);
  ASSERT_EQ(results.size(), 1u);
  ASSERT_TRUE(results[0].status.ok()) << results[0].status.ToString();
  EXPECT_EQ(results[0].state.ValueString(), "7");
}

TEST_F(PeerClientTokenTest, AnotherTokenOrNoneIsUnavailableAndSaysWhy) {
  struct Case {
    std::string token;
    std::string says;
  };
  for (const Case& c : {Case{kOtherToken, "refused our token"},
                        Case{"", "this node has none"}}) {
    PeerClient client(Address(), WithToken(c.token));
    ChangesPage page;
    Status s = client.FetchChanges(ChangesCursor(), 100, &page);
    EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
    EXPECT_NE(s.message().find("HTTP 401"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(c.says), std::string::npos) << s.message();
    EXPECT_EQ(s.message().find(kOtherToken), std::string::npos);
    EXPECT_EQ(s.message().find(kToken), std::string::npos);
    EXPECT_TRUE(page.counters.empty());

    CounterFanout fanout(WithToken(c.token));
    std::vector<CounterFanout::Result> results;
    fanout.FetchCounter({Address()}, "c", &results);
    ASSERT_EQ(results.size(), 1u);
    EXPECT_TRUE(results[0].status.IsUnavailable())
        << results[0].status.ToString();
  }
}

// ---- Real nodes

// Two nodes on loopback, each with the other as its peer and the extra
// flags (and environment) of its own.
class TwoNodes {
 public:
  TwoNodes(const TempDir& dir, const std::vector<std::string>& flags0,
           const std::vector<std::string>& flags1,
           const std::map<std::string, std::string>& env1 = {}) {
    const uint16_t ports[2] = {test::FreePort(), test::FreePort()};
    const std::vector<std::string>* flags[2] = {&flags0, &flags1};
    for (int i = 0; i < 2; ++i) {
      NodeProcessOptions options;
      options.data_dir = dir.Sub("node" + std::to_string(i));
      options.port = ports[i];
      options.flags = {"--challenge_id=" + std::to_string(i + 1),
                       "--merge_interval_ms=100", "--flush_interval_ms=200",
                       "--peer_timeout_ms=2000",
                       "--actors=127.0.0.1:" + std::to_string(ports[1 - i])};
      options.flags.insert(options.flags.end(), flags[i]->begin(),
                           flags[i]->end());
      if (i == 1) options.env = env1;
      nodes_[i] = std::make_unique<NodeProcess>(options);
    }
  }

  // Stops both cleanly, expecting exit 0, and the token in no log.
  ~TwoNodes() {
    for (auto& node : nodes_) {
      if (node->running()) {
        EXPECT_EQ(node->Stop(), 0) << node->log_path();
      }
      const std::string log = node->ReadLog();
      EXPECT_EQ(log.find(kToken), std::string::npos) << node->log_path();
      EXPECT_EQ(log.find(kOtherToken), std::string::npos) << node->log_path();
      for (const char* report :
           {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
            "runtime error:", "Check failed"}) {
        EXPECT_EQ(log.find(report), std::string::npos)
            << report << " in " << node->log_path();
      }
      if (::testing::Test::HasFailure()) {
        std::cerr << "---- " << node->log_path() << "\n"
                  << log.substr(log.size() > 6000 ? log.size() - 6000 : 0);
      }
    }
  }

  bool Start() {
    return nodes_[0]->StartAndWait() && nodes_[1]->StartAndWait();
  }

  NodeProcess& node(int i) { return *nodes_[i]; }

  // GET `path` on node `i` with `token` ("": no header).
  HttpResponse Get(int i, const std::string& path, const std::string& token) {
    return HttpRequest(
        "GET", nodes_[i]->Url(path), "",
        token.empty() ? std::map<std::string, std::string>() : Bearer(token),
        5000);
  }

  // The value of metric line `series` (e.g. `name{label="x"}`) on node `i`,
  // -1 if absent.
  double Metric(int i, const std::string& series, const std::string& token) {
    return test::MetricValue(Get(i, "/metrics", token).body, series)
        .value_or(-1);
  }

 private:
  std::unique_ptr<NodeProcess> nodes_[2];
};

TEST(TokenClusterTest, NodesSharingATokenFileConverge) {
  TempDir dir;
  const std::string token_file = dir.Sub("token");
  WriteFile(token_file, std::string(kToken) + "\n");
  // Node 0 has the flag, node 1 the environment variable.
  TwoNodes nodes(dir, {"--auth_token_file=" + token_file}, {},
                 {{"DIST_COUNTER_AUTH_TOKEN_FILE", token_file}});
  ASSERT_TRUE(nodes.Start());

  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(nodes.Get(i, "/counters", "").status, 401) << i;
    HttpResponse r = HttpRequest("POST", nodes.node(i).Url("/counter/c"),
                                 std::to_string(i + 5), Bearer(kToken), 5000);
    ASSERT_EQ(r.status, 204) << r.body;
  }
  EXPECT_TRUE(test::WaitUntil(
      [&] {
        return nodes.Get(0, "/counter/c/value", kToken).body == "11" &&
               nodes.Get(1, "/counter/c/value", kToken).body == "11";
      },
      20000, 50));
  HttpResponse consistent = nodes.Get(0, "/counter/c/consistent_value", kToken);
  EXPECT_EQ(consistent.status, 200) << consistent.body;
  EXPECT_EQ(consistent.body, "11");
  EXPECT_EQ(nodes.Metric(0,
                         "dist_counter_http_unauthorized_total{reason="
                         "\"wrong_token\"}",
                         kToken),
            0);
}

TEST(TokenClusterTest, APeerWithAnotherTokenIsRefusedAndNothingMerges) {
  TempDir dir;
  const std::string file0 = dir.Sub("token0"), file1 = dir.Sub("token1");
  WriteFile(file0, kToken);
  WriteFile(file1, kOtherToken);
  TwoNodes nodes(dir, {"--auth_token_file=" + file0},
                 {"--auth_token_file=" + file1});
  ASSERT_TRUE(nodes.Start());
  ASSERT_EQ(HttpRequest("POST", nodes.node(0).Url("/counter/c"), "5",
                        Bearer(kToken), 5000)
                .status,
            204);
  ASSERT_EQ(HttpRequest("POST", nodes.node(1).Url("/counter/c"), "6",
                        Bearer(kOtherToken), 5000)
                .status,
            204);

  // Each refuses the other's pulls, and each sees its own pulls fail.
  const std::string peer0 = nodes.node(0).Address();
  const std::string peer1 = nodes.node(1).Address();
  EXPECT_TRUE(test::WaitUntil(
      [&] {
        return nodes.Metric(0,
                            "dist_counter_http_unauthorized_total{reason="
                            "\"wrong_token\"}",
                            kToken) >= 3 &&
               nodes.Metric(1,
                            "dist_counter_merge_rounds_total{peer=\"" + peer0 +
                                "\",result=\"error\"}",
                            kOtherToken) >= 3;
      },
      20000, 50));
  EXPECT_EQ(nodes.Metric(1,
                         "dist_counter_merge_rounds_total{peer=\"" + peer0 +
                             "\",result=\"ok\"}",
                         kOtherToken),
            0);
  EXPECT_EQ(nodes.Metric(1, "dist_counter_peer_up{peer=\"" + peer0 + "\"}",
                         kOtherToken),
            0);
  EXPECT_EQ(
      nodes.Metric(0, "dist_counter_peer_up{peer=\"" + peer1 + "\"}", kToken),
      0);

  // Nothing merged: each node holds only its own increment.
  EXPECT_EQ(nodes.Get(0, "/counter/c/value", kToken).body, "5");
  EXPECT_EQ(nodes.Get(1, "/counter/c/value", kOtherToken).body, "6");
  // A consistent read names the peer that refused.
  HttpResponse r = nodes.Get(1, "/counter/c/consistent_value", kOtherToken);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find(peer0), std::string::npos) << r.body;

  // Both logs say why; both nodes still serve.
  EXPECT_TRUE(test::WaitUntil(
      [&] {
        const std::string log0 = nodes.node(0).ReadLog();
        const std::string log1 = nodes.node(1).ReadLog();
        return log0.find("401: refused GET /internal/") != std::string::npos &&
               log1.find("refused our token") != std::string::npos;
      },
      20000, 50));
  EXPECT_EQ(nodes.Get(0, "/ping", "").status, 200);
  EXPECT_EQ(nodes.Get(1, "/ping", "").status, 200);
}

TEST(TokenClusterTest, WithoutTheFlagNothingNeedsAToken) {
  TempDir dir;
  TwoNodes nodes(dir, {}, {});
  ASSERT_TRUE(nodes.Start());
  HttpResponse r = nodes.Get(0, "/counters", "");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("www-authenticate"), "");
  EXPECT_EQ(nodes.Get(0, "/metrics", "").body.find("unauthorized"),
            std::string::npos);
}

// ---- Start-up

// Starts a node with `flags` and `env`, expecting it to exit 2 with
// `message` in its log.
void ExpectRefusedStart(const TempDir& dir,
                        const std::vector<std::string>& flags,
                        const std::map<std::string, std::string>& env,
                        const std::string& message) {
  NodeProcessOptions options;
  options.data_dir = dir.Sub("node");
  options.flags = flags;
  options.env = env;
  NodeProcess node(options);
  ASSERT_TRUE(node.Start());
  EXPECT_EQ(node.Wait(), 2) << node.ReadLog();
  EXPECT_NE(node.ReadLog().find(message), std::string::npos) << node.ReadLog();
}

TEST(TokenStartTest, AMissingOrEmptyTokenFileRefusesToStart) {
  TempDir dir;
  const std::string missing = dir.Sub("missing");
  const std::string empty = dir.Sub("empty");
  WriteFile(empty, "\n");
  ExpectRefusedStart(dir, {"--auth_token_file=" + missing}, {},
                     "--auth_token_file: token file " + missing +
                         ": No such file or directory");
  ExpectRefusedStart(dir, {"--auth_token_file=" + empty}, {},
                     "token file " + empty + " is empty");
  ExpectRefusedStart(dir, {}, {{"DIST_COUNTER_AUTH_TOKEN_FILE", missing}},
                     "token file " + missing + ": No such file or directory");
}

TEST(TokenStartTest, AnOpenTokenFileIsWarnedAboutAndServes) {
  TempDir dir;
  const std::string file = dir.Sub("token");
  WriteFile(file, kToken);
  chmod(file.c_str(), 0644);
  NodeProcessOptions options;
  options.data_dir = dir.Sub("node");
  options.flags = {"--auth_token_file=" + file};
  NodeProcess node(options);
  ASSERT_TRUE(node.StartAndWait());
  EXPECT_EQ(HttpRequest("GET", node.Url("/config")).status, 401);
  EXPECT_EQ(HttpRequest("GET", node.Url("/config"), "", Bearer(kToken)).status,
            200);
  const std::string log = node.ReadLog();
  EXPECT_NE(log.find("open to other users (mode 0644)"), std::string::npos)
      << log;
  EXPECT_EQ(node.Stop(), 0);
  EXPECT_EQ(node.ReadLog().find(kToken), std::string::npos);
}

}  // namespace
}  // namespace dist_counter
