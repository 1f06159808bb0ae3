// Cluster tests: real dist_counter processes on loopback, each with the full
// peer list, short merge/flush intervals and peer timeouts. They check the
// product contract from the outside: convergence to the exact sum, no
// acknowledged increment lost to kill -9 in durable mode, no increment made
// after a restart ever hidden, partitions (SIGSTOP) answered by /value and
// refused by /consistent_value, a Jepsen-style bounds check on every read,
// a garbage peer in the actor list that changes nothing, a hostile peer
// that can neither pre-load a node's next identity nor stall the sync, and
// one that claims more than a node holds for whatever actor it has now,
// which moves the node at most once.
//
// Timings are never asserted; deadlines are generous and only bound a
// failing test.

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdlib>
#include <chrono>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cluster/fake_peer.h"
#include "cluster/peer_client.h"
#include "cluster/peer_clients_environment.h"
#include "crdt/pn_counter.h"
#include "proto/wire.h"
#include "testing/http_client.h"
#include "testing/metric_value.h"
#include "testing/node_process.h"
#include "testing/wait_until.h"
#include "util/decimal.h"

namespace dist_counter {
namespace {

using test::FakePeer;
using test::FakeReply;
using test::HttpClient;
using test::HttpClientOptions;
using test::HttpRequest;
using test::HttpResponse;
using test::NodeProcess;
using test::NodeProcessOptions;
using test::TempDir;

using Clock = std::chrono::steady_clock;

const auto* const kCurl =
    ::testing::AddGlobalTestEnvironment(new test::PeerClientsEnvironment);

constexpr int kConvergeMs = 20000;

// test::WaitUntil polling every 50 ms: a poll here asks nodes over HTTP.
bool WaitUntil(const std::function<bool()>& done,
               int timeout_ms = kConvergeMs) {
  return test::WaitUntil(done, timeout_ms, /*poll_ms=*/50);
}

bool ParseValue(const std::string& text, int64_t* value) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *value);
  return ec == std::errc() && ptr == end;
}

// N nodes on free loopback ports, challenge ids 1..N, every node told about
// every node (itself included) and about `extra_peers`.
class Cluster {
 public:
  Cluster(int n, const std::vector<std::string>& extra_flags = {},
          const std::vector<std::string>& extra_peers = {})
      : n_(n), extra_flags_(extra_flags), extra_peers_(extra_peers) {}

  // Stops every node cleanly (SIGTERM), expecting exit status 0 and no
  // sanitizer report in its log. On failure, shows the end of every log.
  ~Cluster() {
    for (auto& node : nodes_) {
      if (node->running()) {
        EXPECT_EQ(node->Stop(), 0) << node->log_path();
      }
      const std::string log = node->ReadLog();
      for (const char* report :
           {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
            "runtime error:", "Check failed"}) {
        EXPECT_EQ(log.find(report), std::string::npos)
            << report << " in " << node->log_path();
      }
    }
    if (!::testing::Test::HasFailure()) return;
    for (auto& node : nodes_) {
      const std::string log = node->ReadLog();
      std::cerr << "---- last lines of " << node->log_path() << "\n"
                << log.substr(log.size() > 6000 ? log.size() - 6000 : 0);
    }
  }

  // Starts every node and checks that each answering node is ours. Tries
  // again on other ports if a port turned out to be taken.
  bool Start() {
    for (int attempt = 0; attempt < 3; ++attempt) {
      Create(attempt);
      bool ok = true;
      for (auto& node : nodes_) ok = ok && node->Start();
      for (int i = 0; ok && i < n_; ++i) ok = IsOurs(i);
      if (ok) return true;
      for (auto& node : nodes_) node->Kill9();
    }
    return false;
  }

  // kill -9 node `i`, then start it again on the same port and data dir.
  bool Kill9AndRestart(int i) {
    nodes_[i]->Kill9();
    return nodes_[i]->Start() && IsOurs(i);
  }

  int size() const { return static_cast<int>(nodes_.size()); }
  NodeProcess& node(int i) { return *nodes_[i]; }

  // Node `i`'s /value of `name`, "?" if it did not answer.
  std::string Value(int i, const std::string& name) {
    HttpResponse r = HttpRequest(
        "GET", nodes_[i]->Url("/counter/" + name + "/value"), "", {}, 5000);
    return r.ok() && r.status == 200 ? r.body : "?";
  }

  // Every node's /value of `name`, "?" where it did not answer.
  std::vector<std::string> Values(const std::string& name) {
    std::vector<std::string> values;
    for (int i = 0; i < n_; ++i) values.push_back(Value(i, name));
    return values;
  }

  // Waits until every node reads `expected` for `name`.
  bool WaitAllEqual(const std::string& name, const std::string& expected) {
    return WaitUntil([&] {
      for (const std::string& v : Values(name)) {
        if (v != expected) return false;
      }
      return true;
    });
  }

  // Waits until every node reads the same value for `name`; stores it.
  bool WaitAgree(const std::string& name, int64_t* value) {
    return WaitUntil([&] {
      const std::vector<std::string> values = Values(name);
      for (const std::string& v : values) {
        if (v != values[0]) return false;
      }
      return ParseValue(values[0], value);
    });
  }

  std::string Logs() {
    std::string logs;
    for (auto& node : nodes_) logs += node->ReadLog();
    return logs;
  }

 private:
  void Create(int attempt) {
    nodes_.clear();
    std::vector<uint16_t> ports;
    while (static_cast<int>(ports.size()) < n_) {
      const uint16_t port = test::StablePort();
      if (std::find(ports.begin(), ports.end(), port) == ports.end()) {
        ports.push_back(port);
      }
    }
    actors_.clear();
    for (uint16_t port : ports)
      actors_.push_back("127.0.0.1:" + std::to_string(port));
    actors_.insert(actors_.end(), extra_peers_.begin(), extra_peers_.end());
    std::string actors = "[";
    for (const std::string& peer : actors_) actors += "\"" + peer + "\",";
    actors.back() = ']';
    for (int i = 0; i < n_; ++i) {
      NodeProcessOptions options;
      options.data_dir = dir_.Sub("try" + std::to_string(attempt) + "-node" +
                                  std::to_string(i + 1));
      options.port = ports[i];
      options.flags = {"--challenge_id=" + std::to_string(i + 1),
                       "--actors=" + actors, "--merge_interval_ms=100",
                       "--flush_interval_ms=200", "--peer_timeout_ms=300"};
      options.flags.insert(options.flags.end(), extra_flags_.begin(),
                           extra_flags_.end());
      nodes_.push_back(std::make_unique<NodeProcess>(options));
    }
  }

  // Waits until node `i` answers, then checks it is our process (another
  // one may hold the port): still running, our challenge id and peers.
  bool IsOurs(int i) {
    NodeProcess& node = *nodes_[i];
    if (!node.WaitReady()) return false;
    HttpResponse r = HttpRequest("GET", node.Url("/config"), "", {}, 5000);
    rapidjson::Document doc;
    doc.Parse(r.body.data(), r.body.size());
    if (!node.running() || doc.HasParseError() || !doc.IsObject() ||
        !doc.HasMember("actors") || !doc["actors"].IsArray() ||
        !doc.HasMember("challenge_id") || !doc["challenge_id"].IsString() ||
        doc["challenge_id"].GetString() != std::to_string(i + 1)) {
      return false;
    }
    std::vector<std::string> actors;
    for (const auto& a : doc["actors"].GetArray()) {
      actors.push_back(a.IsString() ? a.GetString() : "?");
    }
    return actors == actors_ && node.running();
  }

  const int n_;
  const std::vector<std::string> extra_flags_;
  const std::vector<std::string> extra_peers_;
  TempDir dir_;
  std::vector<std::string> actors_;  // as given to every node
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
};

// The connected_nodes of `node`'s GET /config; {"?"} if it did not answer.
std::vector<std::string> ConnectedNodes(NodeProcess& node) {
  HttpResponse r = HttpRequest("GET", node.Url("/config"), "", {}, 5000);
  rapidjson::Document doc;
  doc.Parse(r.body.data(), r.body.size());
  if (!r.ok() || r.status != 200 || doc.HasParseError() || !doc.IsObject() ||
      !doc.HasMember("connected_nodes") || !doc["connected_nodes"].IsArray()) {
    return {"?"};
  }
  std::vector<std::string> nodes;
  for (const auto& item : doc["connected_nodes"].GetArray()) {
    nodes.push_back(item.IsString() ? item.GetString() : "?");
  }
  std::sort(nodes.begin(), nodes.end());
  return nodes;
}

std::string Join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += item + " ";
  return text;
}

// POST /counter/<name> with `delta` through `client`.
HttpResponse Increment(HttpClient* client, NodeProcess& node,
                       const std::string& name, int64_t delta,
                       int timeout_ms = 5000) {
  return client->Request("POST", node.Url("/counter/" + name),
                         std::to_string(delta), {}, timeout_ms);
}

TEST(ClusterTest, ConvergesToTheExactSumOfRandomIncrements) {
  Cluster cluster(3);
  ASSERT_TRUE(cluster.Start());
  constexpr int kCounters = 4;
  std::vector<std::atomic<int64_t>> sums(kCounters);
  std::vector<std::thread> clients;
  for (int t = 0; t < 3; ++t) {
    clients.emplace_back([&, t] {
      HttpClientOptions options;
      options.reuse_connection = true;
      std::vector<HttpClient*> per_node;
      std::vector<std::unique_ptr<HttpClient>> owned;
      for (int i = 0; i < cluster.size(); ++i) {
        owned.push_back(std::make_unique<HttpClient>(options));
      }
      std::mt19937 rng(1234 + t);
      for (int op = 0; op < 150; ++op) {
        const int node = static_cast<int>(rng() % cluster.size());
        const int counter = static_cast<int>(rng() % kCounters);
        const int64_t delta = static_cast<int64_t>(rng() % 21) - 7;
        HttpResponse r = Increment(owned[node].get(), cluster.node(node),
                                   "sum" + std::to_string(counter), delta);
        ASSERT_EQ(r.status, 204) << r.error << r.body;
        sums[counter] += delta;
      }
    });
  }
  for (auto& t : clients) t.join();

  for (int c = 0; c < kCounters; ++c) {
    const std::string name = "sum" + std::to_string(c);
    const std::string want = std::to_string(sums[c].load());
    EXPECT_TRUE(cluster.WaitAllEqual(name, want))
        << name << " want " << want << " got " << Join(cluster.Values(name));
    for (int i = 0; i < cluster.size(); ++i) {
      HttpResponse r = HttpRequest(
          "GET", cluster.node(i).Url("/counter/" + name + "/consistent_value"));
      EXPECT_EQ(r.status, 200) << r.body;
      EXPECT_EQ(r.body, want);
    }
  }
  // Everyone lists the two others as connected, never itself.
  for (int i = 0; i < cluster.size(); ++i) {
    std::vector<std::string> others;
    for (int j = 0; j < cluster.size(); ++j) {
      if (j != i) others.push_back(cluster.node(j).Address());
    }
    std::sort(others.begin(), others.end());
    EXPECT_TRUE(WaitUntil([&] {
      return ConnectedNodes(cluster.node(i)) == others;
    })) << i
        << ": " << Join(ConnectedNodes(cluster.node(i)));
  }
}

// True if curl's `error` says no connection was made (nothing was sent).
bool Refused(const std::string& error) {
  return error.find("Couldn't connect") != std::string::npos ||
         error.find("Failed to connect") != std::string::npos ||
         error.find("Connection refused") != std::string::npos;
}

// Writes positive deltas to every node until stopped, and records what was
// acknowledged and what is indeterminate (no answer).
class Writers {
 public:
  Writers(Cluster* cluster, const std::string& name)
      : cluster_(cluster), name_(name) {}
  ~Writers() { Stop(); }

  void Start() {
    for (int i = 0; i < cluster_->size(); ++i) {
      threads_.emplace_back([this, i] { Run(i); });
    }
  }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  int64_t acked() const { return acked_; }
  int64_t indeterminate() const { return indeterminate_; }

 private:
  void Run(int node) {
    std::mt19937 rng(99 + node);
    while (!stop_) {
      const int64_t delta = 1 + static_cast<int64_t>(rng() % 5);
      HttpResponse r =
          HttpRequest("POST", cluster_->node(node).Url("/counter/" + name_),
                      std::to_string(delta), {}, 2000);
      if (r.ok() && r.status == 204) {
        acked_ += delta;
      } else if (r.ok() || Refused(r.error)) {
        // An HTTP error or a refused connection: not applied.
      } else {
        indeterminate_ += delta;
      }
      if (!r.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  Cluster* const cluster_;
  const std::string name_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> acked_{0};
  std::atomic<int64_t> indeterminate_{0};
  std::vector<std::thread> threads_;
};

// ---- resets

// Sum of (bp - bn) over the actors of node `i`'s GET /counter/<name>: the
// part of the value its resets cancelled. Stores the actor count in
// *actors; false if the reply is not as expected.
bool BaselineSum(Cluster& cluster, int i, const std::string& name, int64_t* sum,
                 size_t* actors) {
  HttpResponse r =
      HttpRequest("GET", cluster.node(i).Url("/counter/" + name), "", {}, 5000);
  rapidjson::Document doc;
  doc.Parse(r.body.data(), r.body.size());
  if (!r.ok() || r.status != 200 || doc.HasParseError() || !doc.IsObject() ||
      !doc.HasMember("actors") || !doc["actors"].IsObject()) {
    return false;
  }
  *sum = 0;
  *actors = 0;
  for (const auto& actor : doc["actors"].GetObject()) {
    const auto& v = actor.value;
    ++*actors;
    if (!v.HasMember("bp")) continue;  // no reset saw this actor
    *sum += static_cast<int64_t>(v["bp"].GetUint64()) -
            static_cast<int64_t>(v["bn"].GetUint64());
  }
  return true;
}

// One node resets while the two others keep incrementing. The reset cancels
// exactly what that node had seen (its baselines say what); increments it
// had not seen survive. After convergence every node reads the sum of all
// acknowledged increments minus the resetting node's baselines.
TEST(ClusterTest, AResetConcurrentWithIncrementsConvergesToAnExactValue) {
  Cluster cluster(3);
  ASSERT_TRUE(cluster.Start());
  HttpClient client;
  int64_t total = 0;
  for (int i = 0; i < cluster.size(); ++i) {
    ASSERT_EQ(Increment(&client, cluster.node(i), "r", 10 + i).status, 204);
    total += 10 + i;
  }
  ASSERT_TRUE(cluster.WaitAllEqual("r", std::to_string(total)))
      << Join(cluster.Values("r"));

  std::atomic<int64_t> concurrent{0};
  std::atomic<int> made{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int node : {1, 2}) {
    writers.emplace_back([&, node] {
      HttpClientOptions options;
      options.reuse_connection = true;
      HttpClient own(options);
      std::mt19937 rng(77 + node);
      while (!stop) {
        const int64_t delta = static_cast<int64_t>(rng() % 9) - 2;
        HttpResponse r = Increment(&own, cluster.node(node), "r", delta);
        ASSERT_EQ(r.status, 204) << r.error << r.body;
        concurrent += delta;
        ++made;
      }
    });
  }
  // Reset in the middle of the increments, from node 0, once it has seen
  // some of them.
  EXPECT_TRUE(WaitUntil([&] {
    return made >= 50 && cluster.Value(0, "r") != std::to_string(total);
  }));
  HttpResponse reset =
      HttpRequest("DELETE", cluster.node(0).Url("/counter/r"), "", {}, 5000);
  EXPECT_EQ(reset.status, 204) << reset.error << reset.body;
  // And node 0 takes increments after its reset too, while the others go on.
  ASSERT_EQ(Increment(&client, cluster.node(0), "r", 7).status, 204);
  const int made_at_reset = made;
  EXPECT_TRUE(WaitUntil([&] { return made >= made_at_reset + 100; }));
  stop = true;
  for (auto& t : writers) t.join();
  total += concurrent + 7;

  // Node 0's baselines are fixed by its reset (no other reset happens).
  int64_t cancelled = 0;
  size_t actors = 0;
  ASSERT_TRUE(BaselineSum(cluster, 0, "r", &cancelled, &actors));
  EXPECT_EQ(actors, 3u);
  // It saw the first round and some of the concurrent increments.
  EXPECT_NE(cancelled, 33);
  const std::string want = std::to_string(total - cancelled);
  EXPECT_TRUE(cluster.WaitAllEqual("r", want))
      << "want " << want << " (" << total << " - " << cancelled << "), got "
      << Join(cluster.Values("r"));
  for (int i = 0; i < cluster.size(); ++i) {
    int64_t seen = 0;
    ASSERT_TRUE(BaselineSum(cluster, i, "r", &seen, &actors));
    EXPECT_EQ(seen, cancelled) << "node " << i;
    // The name stays listed.
    HttpResponse list = HttpRequest("GET", cluster.node(i).Url("/counters"));
    EXPECT_NE(list.body.find("\"r\""), std::string::npos) << list.body;
  }

  // Reset again on another node after convergence: every node reads 0, then
  // exactly the increments made after it.
  ASSERT_EQ(
      HttpRequest("DELETE", cluster.node(1).Url("/counter/r"), "", {}, 5000)
          .status,
      204);
  ASSERT_TRUE(cluster.WaitAllEqual("r", "0")) << Join(cluster.Values("r"));
  ASSERT_EQ(Increment(&client, cluster.node(0), "r", 4).status, 204);
  ASSERT_EQ(Increment(&client, cluster.node(2), "r", -1).status, 204);
  EXPECT_TRUE(cluster.WaitAllEqual("r", "3")) << Join(cluster.Values("r"));
  // A counter no node holds is 404 everywhere.
  EXPECT_EQ(
      HttpRequest("DELETE", cluster.node(2).Url("/counter/none"), "", {}, 5000)
          .status,
      404);
}

TEST(ClusterTest, DurableModeLosesNothingAcknowledgedToKill9) {
  Cluster cluster(3, {"--durable"});
  ASSERT_TRUE(cluster.Start());
  Writers writers(&cluster, "durable");
  writers.Start();
  // Phases of the load end on what was acknowledged, not on a clock: some
  // before the kill, some while node 2 is down, some after its restart.
  auto acked_more = [&writers](int64_t delta) {
    const int64_t from = writers.acked();
    return WaitUntil([&] { return writers.acked() >= from + delta; });
  };
  ASSERT_TRUE(acked_more(300));
  cluster.node(1).Kill9();
  ASSERT_TRUE(acked_more(100));
  ASSERT_TRUE(cluster.Kill9AndRestart(1));
  ASSERT_TRUE(acked_more(200));
  writers.Stop();

  int64_t value = 0;
  ASSERT_TRUE(cluster.WaitAgree("durable", &value))
      << Join(cluster.Values("durable"));
  EXPECT_GT(writers.acked(), 0);
  EXPECT_GE(value, writers.acked());
  EXPECT_LE(value, writers.acked() + writers.indeterminate());
}

TEST(ClusterTest, ARestartedNodeNeverHidesIncrementsMadeAfterItsRestart) {
  // Default mode: a kill -9 may lose the last flush window of the killed
  // node, but increments made after the restart must all count.
  Cluster cluster(3, {"--flush_interval_ms=60000"});  // nothing flushed
  ASSERT_TRUE(cluster.Start());
  HttpClientOptions options;
  options.reuse_connection = true;
  HttpClient client(options);
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(Increment(&client, cluster.node(1), "x", 1).status, 204);
  }
  // The peers hold node 2's 100, its own disk holds none of it.
  ASSERT_TRUE(cluster.WaitAllEqual("x", "100")) << Join(cluster.Values("x"));
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(Increment(&client, cluster.node(1), "x", 1).status, 204);
  }
  // kill -9: the last 10 may be lost, or not.
  ASSERT_TRUE(cluster.Kill9AndRestart(1));

  HttpClient after(options);
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(Increment(&after, cluster.node(1), "x", 1).status, 204);
    ASSERT_EQ(Increment(&after, cluster.node(i % 3), "y", 2).status, 204);
  }
  int64_t x = 0;
  ASSERT_TRUE(cluster.WaitAgree("x", &x)) << Join(cluster.Values("x"));
  EXPECT_GE(x, 100 + 30);
  EXPECT_LE(x, 100 + 10 + 30);
  EXPECT_TRUE(cluster.WaitAllEqual("y", "60")) << Join(cluster.Values("y"));
  // The restarted node got its old count back from its peers.
  HttpResponse r = HttpRequest("GET", cluster.node(1).Url("/counter/x/value"));
  EXPECT_EQ(r.body, std::to_string(x));
}

TEST(ClusterTest, APausedNodeIsReportedByConsistentValueAndCatchesUp) {
  Cluster cluster(3);
  ASSERT_TRUE(cluster.Start());
  HttpClient client;
  ASSERT_EQ(Increment(&client, cluster.node(0), "p", 2).status, 204);
  ASSERT_EQ(Increment(&client, cluster.node(2), "p", 2).status, 204);
  ASSERT_TRUE(cluster.WaitAllEqual("p", "4")) << Join(cluster.Values("p"));

  cluster.node(2).Pause();
  for (int i = 0; i < 3; ++i) {
    // /value answers from local state whatever the paused peer does.
    HttpResponse r = HttpRequest("GET", cluster.node(1).Url("/counter/p/value"),
                                 "", {}, 5000);
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(r.body, "4");
    // /consistent_value gives up on it after the peer timeout, naming it.
    r = HttpRequest("GET", cluster.node(1).Url("/counter/p/consistent_value"),
                    "", {}, 5000);
    EXPECT_EQ(r.status, 503) << r.error;
    EXPECT_EQ(r.body, "{\"node_down\":true,\"unreachable\":[\"" +
                          cluster.node(2).Address() + "\"]}");
  }
  // The two others keep converging between themselves.
  ASSERT_EQ(Increment(&client, cluster.node(0), "p", 5).status, 204);
  ASSERT_EQ(Increment(&client, cluster.node(1), "p", -1).status, 204);
  EXPECT_TRUE(WaitUntil([&] {
    return cluster.Value(0, "p") == "8" && cluster.Value(1, "p") == "8";
  })) << cluster.Value(0, "p")
      << " " << cluster.Value(1, "p");
  EXPECT_TRUE(WaitUntil([&] {
    return ConnectedNodes(cluster.node(0)) ==
           std::vector<std::string>{cluster.node(1).Address()};
  })) << Join(ConnectedNodes(cluster.node(0)));

  cluster.node(2).Resume();
  EXPECT_TRUE(cluster.WaitAllEqual("p", "8")) << Join(cluster.Values("p"));
  for (int i = 0; i < cluster.size(); ++i) {
    EXPECT_TRUE(WaitUntil([&] {
      HttpResponse r = HttpRequest(
          "GET", cluster.node(i).Url("/counter/p/consistent_value"));
      return r.status == 200 && r.body == "8";
    })) << i;
  }
}

TEST(ClusterTest, APeersLastSuccessAgeGrowsWhileItIsPausedAndThenResets) {
  Cluster cluster(2);
  ASSERT_TRUE(cluster.Start());
  std::string metrics;
  auto age = [&](const std::string& peer) {
    HttpResponse r =
        HttpRequest("GET", cluster.node(0).Url("/metrics"), "", {}, 5000);
    metrics = r.body;
    return test::MetricValue(
        metrics,
        "dist_counter_peer_last_success_age_seconds{peer=\"" + peer + "\"}");
  };
  const std::string peer = cluster.node(1).Address();
  // Pulled every 100 ms: a fresh success.
  ASSERT_TRUE(WaitUntil([&] { return age(peer).value_or(99) < 1; })) << metrics;
  EXPECT_EQ(age(cluster.node(0).Address()), std::nullopt)  // not a peer
      << metrics;
  cluster.node(1).Pause();
  EXPECT_TRUE(WaitUntil([&] { return age(peer).value_or(0) >= 2; })) << metrics;
  cluster.node(1).Resume();
  EXPECT_TRUE(WaitUntil([&] { return age(peer).value_or(99) < 1; })) << metrics;
}

// ---- Jepsen-style counter check

struct Op {
  int node;
  int64_t delta;
  Clock::time_point invoked;
  Clock::time_point completed;
  enum Outcome { kOk, kFailed, kUnknown } outcome;
};

struct Read {
  int node;
  bool consistent;
  int64_t value;
  Clock::time_point invoked;
  Clock::time_point completed;
};

// Sums of positive and of negative deltas of ops ordered by a time, so the
// sums over "every op before time t" come from one binary search.
class TimedSums {
 public:
  void Add(Clock::time_point t, int64_t delta) {
    entries_.push_back({t, delta});
  }
  void Finish() {
    std::sort(entries_.begin(), entries_.end(),
              [](const Entry& a, const Entry& b) { return a.t < b.t; });
    int64_t pos = 0, neg = 0;
    for (Entry& e : entries_) {
      (e.delta > 0 ? pos : neg) += e.delta;
      e.pos = pos;
      e.neg = neg;
    }
  }
  // Sums over the entries strictly before `t`.
  void Before(Clock::time_point t, int64_t* pos, int64_t* neg) const {
    auto it = std::lower_bound(
        entries_.begin(), entries_.end(), t,
        [](const Entry& e, Clock::time_point x) { return e.t < x; });
    *pos = it == entries_.begin() ? 0 : std::prev(it)->pos;
    *neg = it == entries_.begin() ? 0 : std::prev(it)->neg;
  }

 private:
  struct Entry {
    Clock::time_point t;
    int64_t delta;
    int64_t pos = 0, neg = 0;
  };
  std::vector<Entry> entries_;
};

// Bounds on reads. A read must include every op acknowledged before it
// started (for /value: acknowledged by the node read; /consistent_value
// asks every node) and may include any op invoked before it ended that did
// not definitely fail. So it lies in
//   [must + negative maybes, must + positive maybes].
class ReadBounds {
 public:
  ReadBounds(const std::vector<Op>& ops, int nodes) : acked_by_node_(nodes) {
    for (const Op& op : ops) {
      if (op.outcome == Op::kFailed) continue;
      invoked_.Add(op.invoked, op.delta);
      if (op.outcome != Op::kOk) continue;
      acked_.Add(op.completed, op.delta);
      acked_by_node_[op.node].Add(op.completed, op.delta);
    }
    invoked_.Finish();
    acked_.Finish();
    for (TimedSums& sums : acked_by_node_) sums.Finish();
  }

  void Of(const Read& read, int64_t* low, int64_t* high) const {
    int64_t may_pos, may_neg, must_pos, must_neg;
    invoked_.Before(read.completed, &may_pos, &may_neg);
    (read.consistent ? acked_ : acked_by_node_[read.node])
        .Before(read.invoked, &must_pos, &must_neg);
    // Must-ops were invoked before the read ended, so they are among the
    // maybes: count each once.
    *low = may_neg + must_pos;
    *high = may_pos + must_neg;
  }

 private:
  TimedSums invoked_;
  TimedSums acked_;
  std::vector<TimedSums> acked_by_node_;
};

TEST(ClusterTest, JepsenCounterReadsStayWithinBoundsAndConverge) {
  Cluster cluster(3);
  ASSERT_TRUE(cluster.Start());
  std::mutex mu;  // guards ops, reads
  std::vector<Op> ops;
  std::vector<Read> reads;
  std::map<std::string, int> failures;  // what failed ops got, for messages
  std::atomic<bool> stop{false};

  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(7 + t);
      HttpClientOptions options;
      options.reuse_connection = true;
      HttpClient client(options);
      const int node = t % cluster.size();
      while (!stop) {
        if (rng() % 3 == 0) {
          Read read{node, rng() % 2 == 0, 0, Clock::now(), {}};
          HttpResponse r = client.Request(
              "GET",
              cluster.node(node).Url(read.consistent
                                         ? "/counter/j/consistent_value"
                                         : "/counter/j/value"),
              "", {}, 1000);
          read.completed = Clock::now();
          if (r.ok() && r.status == 200 && ParseValue(r.body, &read.value)) {
            std::lock_guard<std::mutex> lock(mu);
            reads.push_back(read);
          }
          continue;
        }
        Op op{node,
              static_cast<int64_t>(rng() % 16) - 5,
              Clock::now(),
              {},
              Op::kUnknown};
        HttpResponse r = Increment(&client, cluster.node(node), "j", op.delta,
                                   /*timeout_ms=*/500);
        op.completed = Clock::now();
        if (r.ok() && r.status == 204) {
          op.outcome = Op::kOk;
        } else if (r.ok()) {
          op.outcome = Op::kFailed;
          std::lock_guard<std::mutex> lock(mu);
          failures[std::to_string(r.status) + " " + r.body]++;
        } else {
          std::lock_guard<std::mutex> lock(mu);
          failures[r.error]++;
        }
        std::lock_guard<std::mutex> lock(mu);
        ops.push_back(op);
      }
    });
  }
  // Nemesis: pause a node for a while, then let it go. Each phase lasts
  // until the clients finished 100 more operations, not for a set time.
  auto ops_more = [&](size_t n) {
    size_t from = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      from = ops.size();
    }
    return WaitUntil([&] {
      std::lock_guard<std::mutex> lock(mu);
      return ops.size() >= from + n;
    });
  };
  // Waits until node 1 lists node 3 as connected (or, false, as not).
  auto sees_node3 = [&](bool connected) {
    return WaitUntil([&] {
      const std::vector<std::string> nodes = ConnectedNodes(cluster.node(0));
      return connected == (std::find(nodes.begin(), nodes.end(),
                                     cluster.node(2).Address()) != nodes.end());
    });
  };
  EXPECT_TRUE(ops_more(100));
  cluster.node(2).Pause();
  EXPECT_TRUE(sees_node3(false));  // the pause is felt
  EXPECT_TRUE(ops_more(100));
  cluster.node(2).Resume();
  EXPECT_TRUE(sees_node3(true));
  EXPECT_TRUE(ops_more(100));
  stop = true;
  for (auto& t : threads) t.join();

  int64_t acked = 0, unknown_low = 0, unknown_high = 0;
  int unknown = 0;
  for (const Op& op : ops) {
    if (op.outcome == Op::kOk) acked += op.delta;
    if (op.outcome != Op::kUnknown) continue;
    ++unknown;
    (op.delta < 0 ? unknown_low : unknown_high) += op.delta;
  }
  int bad_reads = 0, consistent_reads = 0;
  const ReadBounds bounds(ops, cluster.size());
  for (const Read& read : reads) {
    int64_t low = 0, high = 0;
    bounds.Of(read, &low, &high);
    consistent_reads += read.consistent ? 1 : 0;
    if (read.value < low || read.value > high) {
      if (++bad_reads <= 5) {
        ADD_FAILURE() << (read.consistent ? "consistent_value" : "value")
                      << " on node " << read.node + 1 << " read " << read.value
                      << ", outside [" << low << ", " << high << "]";
      }
    }
  }
  EXPECT_EQ(bad_reads, 0) << "of " << reads.size() << " reads";
  EXPECT_GT(consistent_reads, 0);
  EXPECT_GT(ops.size(), 50u);

  int64_t final_value = 0;
  ASSERT_TRUE(cluster.WaitAgree("j", &final_value))
      << Join(cluster.Values("j"));
  EXPECT_GE(final_value, acked + unknown_low);
  std::string failed;
  for (const auto& [what, count] : failures) {
    failed += std::to_string(count) + " x " + what + "; ";
  }
  EXPECT_LE(final_value, acked + unknown_high) << failed;
  if (unknown == 0) {
    EXPECT_EQ(final_value, acked) << failed;
  }
  RecordProperty("ops", static_cast<int>(ops.size()));
  RecordProperty("indeterminate", unknown);
}

// ---- a peer that sends garbage

TEST(ClusterTest, SigtermEndsAConsistentReadWaitingOnAHungPeerAtOnce) {
  std::atomic<int> asked{0};
  FakeReply silent;
  silent.hang = true;
  FakePeer hung([&](const std::string& target) {
    if (target.rfind("/internal/counter/", 0) == 0) ++asked;
    return silent;
  });
  ASSERT_TRUE(hung.Start());
  TempDir tmp;
  NodeProcessOptions options;
  options.data_dir = tmp.Sub("node");
  options.flags = {"--challenge_id=1", "--peer_timeout_ms=60000",
                   "--actors=[\"" + hung.Address() + "\"]"};
  NodeProcess node(options);
  ASSERT_TRUE(node.StartAndWait()) << node.ReadLog();
  HttpResponse read;
  std::thread reader([&] {
    read = HttpRequest("GET", node.Url("/counter/c/consistent_value"), "", {},
                       120000);
  });
  EXPECT_TRUE(WaitUntil([&] { return asked.load() > 0; }));
  // The read would wait for the peer timeout (60 s); the stop cancels it.
  EXPECT_EQ(node.Stop(/*timeout_ms=*/20000), 0) << node.ReadLog();
  reader.join();
  EXPECT_EQ(read.status, 503);
  EXPECT_NE(read.body.find("shutting down"), std::string::npos) << read.body;
}

TEST(ClusterTest, AGarbagePeerInTheActorListDisturbsNothing) {
  std::atomic<int> n{0};
  FakePeer garbage([&n](const std::string& target) {
    const std::string node =
        R"({"challenge_id":"9","node_id":"bad","actor":"9.1.bad"})";
    FakeReply reply;
    switch (n++ % 7) {
      case 0:
        return test::JsonReply("not json at all");
      case 1:
        return test::JsonReply(R"({"node":)" + node +
                               R"(,"instance":1,"reset":true,"next":1,)"
                               R"("more":false,"counters":[{"name":"g",)"
                               R"("state":{"x":{"p":"1","n":0}}}]})");
      case 2:
        return test::JsonReply(std::string(100000, '['));
      case 3:
        reply.raw = "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"no";
        reply.close = true;
        return reply;
      case 4:
        reply.hang = target.find("changes") == std::string::npos;
        reply.raw = "\x01\x02 garbage \r\n\r\n";
        reply.close = true;
        return reply;
      case 5:
        reply.raw = "HTTP/1.1 200 OK\r\n\r\n";
        reply.filler_bytes = 80 << 20;  // far over the reply cap
        reply.close = true;
        return reply;
      default:
        return test::JsonReply(R"({"node":)" + node +
                               R"(,"instance":1,"reset":true,"next":1,)"
                               R"("more":false,"counters":[{"name":"a/b",)"
                               R"("state":{}}]})");
    }
  });
  ASSERT_TRUE(garbage.Start());
  Cluster cluster(2, {}, {garbage.Address()});
  ASSERT_TRUE(cluster.Start());
  HttpClient client;
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(Increment(&client, cluster.node(i % 2), "ok", 3).status, 204);
  }
  EXPECT_TRUE(cluster.WaitAllEqual("ok", "60")) << Join(cluster.Values("ok"));
  EXPECT_TRUE(WaitUntil([&] { return n >= 7; }));  // every variant once

  for (int i = 0; i < cluster.size(); ++i) {
    HttpResponse r = HttpRequest("GET", cluster.node(i).Url("/counters"));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body.find("\"g\""), std::string::npos) << r.body;
    r = HttpRequest("GET", cluster.node(i).Url("/counter/ok/consistent_value"),
                    "", {}, 5000);
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, "{\"node_down\":true,\"unreachable\":[\"" +
                          garbage.Address() + "\"]}");
    // The garbage peer may count as connected now and then: a page with
    // only its bad counter entries refused is a valid page.
    const std::vector<std::string> connected = ConnectedNodes(cluster.node(i));
    EXPECT_NE(std::find(connected.begin(), connected.end(),
                        cluster.node(1 - i).Address()),
              connected.end());
    EXPECT_TRUE(cluster.node(i).running());
  }
  // Failures are logged, but not at every round.
  const std::string logs = cluster.Logs();
  size_t warnings = 0;
  for (size_t at = logs.find("pulling from peer " + garbage.Address());
       at != std::string::npos;
       at = logs.find("pulling from peer " + garbage.Address(), at + 1)) {
    ++warnings;
  }
  EXPECT_GE(warnings, 1u);
  EXPECT_LE(warnings, 6u) << "after " << n << " garbage replies";
}

// The actor id node `node` (challenge id `challenge_id`) increments with,
// read from its full state of a counter it incremented; "" if not found.
std::string ActorOf(NodeProcess& node, const std::string& counter,
                    const std::string& challenge_id) {
  HttpResponse r = HttpRequest("GET", node.Url("/counter/" + counter));
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  if (r.status != 200 || !doc.IsObject() || !doc.HasMember("actors")) {
    return "";
  }
  for (const auto& member : doc["actors"].GetObject()) {
    const std::string actor = member.name.GetString();
    if (actor.rfind(challenge_id + ".", 0) == 0) return actor;
  }
  return "";
}

TEST(ClusterTest, AHostilePeerCanNeitherPreloadANodesNextIdentityNorStall) {
  std::mutex mu;
  std::string future_actor;  // node 1's next incarnation, once known
  FakePeer hostile([&](const std::string&) {
    std::string counters = "[";
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!future_actor.empty()) {
        counters += R"({"name":"x","state":{")" + future_actor +
                    R"(":{"p":18446744073709551615,"n":0}}},)";
      }
    }
    std::string many = "{";
    for (int i = 0; i < 5000; ++i) {
      many +=
          (i > 0 ? ",\"a" : "\"a") + std::to_string(i) + R"(":{"p":1,"n":0})";
    }
    many += "}";
    counters += R"({"name":"huge","state":)" + many + "},";
    counters += R"({"name":"fine","state":{"9.1.99999999":{"p":4,"n":0}}}])";
    return test::JsonReply(
        R"({"node":{"challenge_id":"9","node_id":"99999999",)"
        R"("actor":"9.1.99999999"},"instance":7,"reset":true,"next":3,)"
        R"("more":false,"counters":)" +
        counters + "}");
  });
  ASSERT_TRUE(hostile.Start());
  Cluster cluster(2, {}, {hostile.Address()});
  ASSERT_TRUE(cluster.Start());
  HttpClient client;
  ASSERT_EQ(Increment(&client, cluster.node(0), "x", 1).status, 204);
  const std::string actor = ActorOf(cluster.node(0), "x", "1");
  ASSERT_FALSE(actor.empty());
  // "1.<incarnation>.<node id>": the next start uses incarnation + 1.
  const size_t first = actor.find('.'), last = actor.rfind('.');
  uint64_t incarnation = 0;
  ASSERT_TRUE(
      ParseUint64(actor.substr(first + 1, last - first - 1), &incarnation)
          .ok());
  {
    std::lock_guard<std::mutex> lock(mu);
    future_actor = "1." + std::to_string(incarnation + 1) + actor.substr(last);
  }
  // The rest of the hostile page merges everywhere; the huge counter
  // nowhere. Node 2 takes the forged actor (it is not its own) and offers
  // it to node 1 too, which refuses it as well.
  EXPECT_TRUE(cluster.WaitAllEqual("fine", "4"))
      << Join(cluster.Values("fine"));
  ASSERT_TRUE(WaitUntil([&] {
    return HttpRequest("GET", cluster.node(1).Url("/counter/x/value")).body ==
           "18446744073709551616";
  }));
  EXPECT_EQ(cluster.Value(0, "x"), "1");
  for (int i = 0; i < cluster.size(); ++i) {
    EXPECT_EQ(HttpRequest("GET", cluster.node(i).Url("/counter/huge")).status,
              404);
  }
  EXPECT_NE(cluster.node(0).ReadLog().find("refused counter"),
            std::string::npos);

  // After a crash node 1 runs as exactly that actor: its increments work,
  // and the forged total never reaches it.
  ASSERT_TRUE(cluster.Kill9AndRestart(0));
  HttpClient after;
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Increment(&after, cluster.node(0), "x", 1).status, 204);
  }
  EXPECT_TRUE(WaitUntil([&] { return cluster.Value(0, "x") == "6"; }))
      << cluster.Value(0, "x");
}

// The value of the un-labelled metric `name` in `node`'s /metrics; -1 if
// it is not there.
double MetricOf(NodeProcess& node, const std::string& name) {
  HttpResponse r = HttpRequest("GET", node.Url("/metrics"), "", {}, 5000);
  const std::string key = "\n" + name + " ";
  const std::string text = "\n" + r.body;
  const size_t at = text.find(key);
  if (r.status != 200 || at == std::string::npos) return -1;
  return std::strtod(text.c_str() + at + key.size(), nullptr);
}

TEST(ClusterTest, AFakePeerClaimingMoreForTheCurrentActorMovesANodeOnce) {
  // The outsider's server: for counter "x" it claims 1000 more increments
  // than node 1 holds under the actor node 1 uses now (the test reads it
  // before every read, as the outsider would), in its changes and in its
  // answer to a refresh.
  std::mutex mu;
  PnCounter claim;  // guarded by mu
  FakePeer forger([&](const std::string& target) {
    PeerIdentity identity;
    identity.challenge_id = "9";
    identity.node_id = "99999999";
    identity.actor = "9.1.99999999";
    identity.instance = 5;
    CounterChange change;
    change.name = "x";
    {
      std::lock_guard<std::mutex> lock(mu);
      change.state = claim;
    }
    if (target.rfind("/internal/changes", 0) == 0) {
      return test::JsonReply(EncodeChangesPage(identity, /*reset=*/true, 1,
                                               /*more=*/false, {change}));
    }
    return test::JsonReply(EncodeCounterReply(identity, "x", change.state));
  });
  ASSERT_TRUE(forger.Start());
  Cluster cluster(2);
  ASSERT_TRUE(cluster.Start());
  // A node without a token takes POST /config from loopback only: here, as
  // the outsider once did from anywhere, it adds the forger to node 1.
  const std::string actors = "{\"actors\":[\"" + cluster.node(0).Address() +
                             "\",\"" + cluster.node(1).Address() + "\",\"" +
                             forger.Address() + "\"]}";
  ASSERT_EQ(
      HttpRequest("POST", cluster.node(0).Url("/config"), actors).status, 204);

  HttpClient client;
  int64_t acknowledged = 0;
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(Increment(&client, cluster.node(i % 3 == 0 ? 1 : 0), "x", 1)
                  .status,
              204);
    ++acknowledged;
    // Node 1's current actor and what it holds under it.
    HttpResponse own =
        client.Request("GET", cluster.node(0).Url("/internal/counter/x"), "",
                       {}, 5000);
    ASSERT_EQ(own.status, 200) << own.body;
    PeerIdentity node;
    PnCounter state;
    ASSERT_TRUE(
        DecodeCounterReply(own.body, "x", WireLimits(), &node, &state).ok())
        << own.body;
    const auto it = state.actors().find(node.actor);
    const uint64_t held = it == state.actors().end() ? 0 : it->second.p;
    {
      std::lock_guard<std::mutex> lock(mu);
      claim = PnCounter();
      claim.SetActor(node.actor, ActorCounts{held + 1000, 0});
    }
    HttpResponse read = client.Request(
        "GET", cluster.node(0).Url("/counter/x/consistent_value"), "", {},
        5000);
    ASSERT_TRUE(read.status == 200 || read.status == 503)
        << read.status << " " << read.body;
  }
  // The pulls go on seeing a claim for the actor node 1 moved to: refused.
  EXPECT_TRUE(WaitUntil([&] {
    return MetricOf(cluster.node(0),
                    "dist_counter_incarnation_moves_refused_total") >= 1;
  }));
  EXPECT_LE(MetricOf(cluster.node(0), "dist_counter_incarnation_moves_total"),
            1);
  // No acknowledged increment is hidden, and the honest node converges.
  const std::string want = std::to_string(acknowledged);
  EXPECT_TRUE(cluster.WaitAllEqual("x", want)) << Join(cluster.Values("x"));
  HttpResponse r = HttpRequest("GET", cluster.node(1).Url("/counter/x"));
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  ASSERT_TRUE(doc.IsObject() && doc.HasMember("actors") &&
              doc["actors"].IsObject())
      << r.body;
  EXPECT_LE(doc["actors"].MemberCount(), 3u) << r.body;
  EXPECT_NE(cluster.node(0).ReadLog().find("forges this node's counts"),
            std::string::npos);
}

}  // namespace
}  // namespace dist_counter
