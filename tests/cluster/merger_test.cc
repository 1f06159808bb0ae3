// Merger against real stores served over loopback in this process (and fake
// peers for misbehaviour): pulls converge, paging and delta sync work, a
// restarted peer is re-read, this node and copies of it are recognised,
// garbage and hung peers are ignored without delaying the others, and
// RefreshCounter names exactly the peers that did not answer.

#include "cluster/merger.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/http_server.h"
#include "api/routes.h"
#include "cluster/fake_peer.h"
#include "cluster/peer_client.h"
#include "cluster/peer_clients_environment.h"
#include "cluster/peer_transport.h"
#include "crdt/pn_counter.h"
#include "store/codec.h"
#include "store/counter_store.h"
#include "testing/http_client.h"
#include "testing/node_process.h"
#include "testing/wait_until.h"
#include "util/json.h"
#include "util/metrics.h"

namespace dist_counter {
namespace {

using test::FakePeer;
using test::FakeReply;
using test::JsonReply;
// Its 20 s default is generous: convergence takes a few merge intervals.
using test::WaitUntil;

const auto* const kCurl =
    ::testing::AddGlobalTestEnvironment(new test::PeerClientsEnvironment);

// One node in this process: a store served by the real Api over HTTP on
// 127.0.0.1, and optionally a Merger pulling its peers.
class LocalNode {
 public:
  explicit LocalNode(const std::string& challenge_id, uint16_t port = 0)
      : challenge_id_(challenge_id), port_(port) {
    Open();
  }
  ~LocalNode() { Close(); }

  void Open() {
    StoreOptions store_options;
    store_options.data_dir = dir_.Sub("db");
    store_options.challenge_id = challenge_id_;
    store_options.flush_interval_ms = 200;
    store_options.metrics = &metrics_;
    ASSERT_TRUE(CounterStore::Open(store_options, &store_).ok());
    api_ =
        std::make_unique<Api>(ApiOptions(), store_.get(), nullptr, &metrics_);
    HttpServerOptions http;
    http.bind = "127.0.0.1";
    http.port = port_;
    ASSERT_TRUE(HttpServer::Start(http, api_.get(), &server_).ok());
    port_ = server_->port();
  }

  void Close() {
    merger_.reset();
    if (server_) server_->Shutdown();
    server_.reset();
    api_.reset();
    if (store_) {
      EXPECT_TRUE(store_->Close().ok());
    }
    store_.reset();
  }

  // Closes and reopens the store (a new instance) on the same port. Any
  // merger of this node is gone afterwards.
  void Restart() {
    Close();
    Open();
  }

  void StartMerger(const std::vector<std::string>& peers,
                   MergerOptions options = Fast()) {
    ASSERT_TRUE(store_->SetPeers(peers).ok());
    options.metrics = &metrics_;
    merger_ = std::make_unique<Merger>(options, store_.get());
    merger_->Start(options.port);
  }

  static MergerOptions Fast() {
    MergerOptions options;
    options.merge_interval_ms = 50;
    options.peer_timeout_ms = 300;
    options.max_backoff_ms = 400;
    options.bind = "127.0.0.1";
    return options;
  }

  std::string Address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string DataDir() const { return dir_.Sub("db"); }
  Api* api() { return api_.get(); }
  uint16_t port() const { return port_; }
  CounterStore* store() { return store_.get(); }
  Merger* merger() { return merger_.get(); }
  Metrics* metrics() { return &metrics_; }

  std::string Value(const std::string& name) const {
    PnCounter state;
    (void)store_->Get(name, &state);  // NotFound leaves it empty: 0
    return state.ValueString();
  }
  bool Has(const std::string& name) const {
    PnCounter state;
    return store_->Get(name, &state).ok();
  }
  // The value of metric line `name_and_labels` in /metrics, or -1.
  double Metric(const std::string& name_and_labels) const {
    const std::string text = metrics_.Render();
    const std::string key = "\n" + name_and_labels + " ";
    const size_t at = ("\n" + text).find(key);
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + key.size() - 1));
  }

 private:
  test::TempDir dir_;
  const std::string challenge_id_;
  uint16_t port_;
  Metrics metrics_;
  std::unique_ptr<CounterStore> store_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<Merger> merger_;
};

PeerStatus StatusOf(Merger* merger, const std::string& address) {
  for (const PeerStatus& s : merger->PeerStatuses()) {
    if (s.address == address) return s;
  }
  return PeerStatus();
}

std::string PeerLabel(const std::string& address) {
  return "peer=\"" + address + "\"";
}

TEST(MergerTest, PullsEveryCounterOfAPeerInPages) {
  LocalNode a("1"), b("2");
  std::vector<std::pair<std::string, int64_t>> batch;
  for (int i = 0; i < 2500; ++i)
    batch.emplace_back("c" + std::to_string(i), i - 100);
  ASSERT_TRUE(a.store()->IncrementBatch(batch).ok());
  MergerOptions options = LocalNode::Fast();
  options.page_limit = 1000;
  b.StartMerger({a.Address()}, options);
  ASSERT_TRUE(WaitUntil([&] { return b.store()->size() == 2500; }))
      << b.store()->size();
  for (int i = 0; i < 2500; i += 97) {
    const std::string name = "c" + std::to_string(i);
    PnCounter from_a, from_b;
    ASSERT_TRUE(a.store()->Get(name, &from_a).ok());
    ASSERT_TRUE(b.store()->Get(name, &from_b).ok());
    EXPECT_EQ(from_a, from_b) << name;
  }
  EXPECT_EQ(b.Value("c0"), "-100");
  EXPECT_EQ(b.Metric("dist_counter_peer_pulled_counters_total{" +
                     PeerLabel(a.Address()) + "}"),
            2500);
}

TEST(MergerTest, TwoNodesConvergeBothWays) {
  LocalNode a("1"), b("2");
  a.StartMerger({a.Address(), b.Address()});
  b.StartMerger({a.Address(), b.Address()});
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(a.store()->Increment("x", 3).ok());
    ASSERT_TRUE(b.store()->Increment("x", -1).ok());
  }
  ASSERT_TRUE(WaitUntil([&] {
    return a.Value("x") == "100" && b.Value("x") == "100";
  })) << a.Value("x")
      << " " << b.Value("x");
  ASSERT_TRUE(WaitUntil([&] {
    return a.merger()->ConnectedNodes() ==
               std::vector<std::string>{b.Address()} &&
           b.merger()->ConnectedNodes() ==
               std::vector<std::string>{a.Address()};
  }));
}

TEST(MergerTest, RoundsWithoutChangesMoveFewBytes) {
  LocalNode a("1"), b("2");
  std::vector<std::pair<std::string, int64_t>> batch;
  for (int i = 0; i < 1000; ++i)
    batch.emplace_back("counter-" + std::to_string(i), 1);
  ASSERT_TRUE(a.store()->IncrementBatch(batch).ok());
  b.StartMerger({a.Address()});
  ASSERT_TRUE(WaitUntil([&] { return b.store()->size() == 1000; }));
  const std::string bytes_metric =
      "dist_counter_peer_pulled_bytes_total{" + PeerLabel(a.Address()) + "}";
  const double full = b.Metric(bytes_metric);
  EXPECT_GT(full, 1000 * 30);
  const uint64_t rounds_before = StatusOf(b.merger(), a.Address()).rounds;
  ASSERT_TRUE(WaitUntil([&] {
    return StatusOf(b.merger(), a.Address()).rounds >= rounds_before + 10;
  }));
  const double bytes = b.Metric(bytes_metric) - full;
  const uint64_t rounds =
      StatusOf(b.merger(), a.Address()).rounds - rounds_before;
  EXPECT_LT(bytes / rounds, 300)
      << bytes << " bytes in " << rounds << " rounds";

  // One change moves one counter.
  ASSERT_TRUE(a.store()->Increment("counter-7", 5).ok());
  ASSERT_TRUE(WaitUntil([&] { return b.Value("counter-7") == "6"; }));
  EXPECT_EQ(b.Metric("dist_counter_peer_pulled_counters_total{" +
                     PeerLabel(a.Address()) + "}"),
            1001);
}

TEST(MergerTest, RereadsAPeerThatRestartedWithAShorterLog) {
  LocalNode a("1"), b("2");
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(a.store()->Increment("k" + std::to_string(i), 1).ok());
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(a.store()->Increment("k0", 1).ok());
  b.StartMerger({a.Address()});
  ASSERT_TRUE(WaitUntil([&] { return b.Value("k0") == "201"; }));
  // After its restart, a's change log starts over below b's cursor.
  a.Restart();
  ASSERT_TRUE(a.store()->Increment("after-restart", 4).ok());
  ASSERT_TRUE(WaitUntil([&] { return b.Value("after-restart") == "4"; }));
  EXPECT_EQ(b.Value("k0"), "201");
}

TEST(MergerTest, SkipsItsOwnAddressWithoutAsking) {
  LocalNode a("1"), b("2");
  MergerOptions options = LocalNode::Fast();
  options.port = b.port();
  b.StartMerger(
      {"localhost:" + std::to_string(b.port()), b.Address(), a.Address()},
      options);
  ASSERT_TRUE(WaitUntil([&] {
    return b.merger()->ConnectedNodes() ==
           std::vector<std::string>{a.Address()};
  }));
  const std::vector<PeerStatus> statuses = b.merger()->PeerStatuses();
  ASSERT_EQ(statuses.size(), 3u);
  EXPECT_TRUE(statuses[0].self);
  EXPECT_TRUE(statuses[1].self);
  EXPECT_FALSE(statuses[2].self);
  EXPECT_EQ(statuses[0].rounds + statuses[1].rounds, 0u);
  std::vector<std::string> unreachable;
  EXPECT_TRUE(b.merger()->RefreshCounter("x", &unreachable).ok());
  EXPECT_TRUE(unreachable.empty());
}

TEST(MergerTest, SkipsItsHostNameWhenListeningOnEveryAddress) {
  // docker-compose: every node listens on 0.0.0.0:7777 and is listed as
  // "<its hostname>:7777"; other hosts on the same port are peers.
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  LocalNode b("2");
  MergerOptions options = LocalNode::Fast();
  options.bind = "0.0.0.0";
  options.port = b.port();
  const std::string port = std::to_string(b.port());
  b.StartMerger({std::string(host) + ":" + port, "127.0.0.2:" + port,
                 "other-host.invalid:" + port},
                options);
  const std::vector<PeerStatus> statuses = b.merger()->PeerStatuses();
  ASSERT_EQ(statuses.size(), 3u);
  EXPECT_TRUE(statuses[0].self);
  EXPECT_TRUE(statuses[1].self);  // all of 127/8 is ours on 0.0.0.0
  EXPECT_FALSE(statuses[2].self);
  std::vector<std::string> unreachable;
  EXPECT_TRUE(b.merger()->RefreshCounter("x", &unreachable).IsUnavailable());
  EXPECT_EQ(unreachable,
            std::vector<std::string>{"other-host.invalid:" + port});
}

TEST(MergerTest, RecognisesItselfFromAPeersReply) {
  LocalNode b("2");
  MergerOptions options = LocalNode::Fast();
  options.port = 0;  // unknown: only the reply can tell
  b.StartMerger({b.Address()}, options);
  ASSERT_TRUE(
      WaitUntil([&] { return StatusOf(b.merger(), b.Address()).self; }));
  EXPECT_TRUE(b.merger()->ConnectedNodes().empty());
  std::vector<std::string> unreachable;
  EXPECT_TRUE(b.merger()->RefreshCounter("x", &unreachable).ok());
  EXPECT_EQ(b.Metric("dist_counter_duplicate_challenge_id_total"), 0);
}

TEST(MergerTest, ReportsADuplicateChallengeIdAndKeepsTheNodesApart) {
  LocalNode a("same"), b("same");
  ASSERT_NE(a.store()->actor_id(), b.store()->actor_id());
  a.StartMerger({b.Address()});
  b.StartMerger({a.Address()});
  ASSERT_TRUE(a.store()->Increment("x", 5).ok());
  ASSERT_TRUE(b.store()->Increment("x", 7).ok());
  ASSERT_TRUE(WaitUntil([&] {
    return a.Value("x") == "12" && b.Value("x") == "12";
  })) << a.Value("x")
      << " " << b.Value("x");
  EXPECT_EQ(a.Metric("dist_counter_duplicate_challenge_id_total"), 1);
  EXPECT_EQ(b.Metric("dist_counter_duplicate_challenge_id_total"), 1);
}

// A fake peer whose change log is one page holding `counters`.
std::unique_ptr<FakePeer> PeerWithChanges(const std::string& node_json,
                                          const std::string& counters) {
  auto peer = std::make_unique<FakePeer>([=](const std::string& target) {
    if (target.rfind("/internal/changes", 0) != 0) {
      return JsonReply("{}");
    }
    return JsonReply("{\"node\":" + node_json +
                     ",\"instance\":77,\"reset\":true,\"next\":1,"
                     "\"more\":false,\"counters\":" +
                     counters + "}");
  });
  EXPECT_TRUE(peer->Start());
  return peer;
}

TEST(MergerTest, NeverTakesItsCurrentActorsCountFromAPeerWhenNotAbove) {
  LocalNode b("2");
  ASSERT_TRUE(b.store()->Increment("c", 2).ok());
  const std::string own = b.store()->actor_id();
  auto peer = PeerWithChanges(
      R"({"challenge_id":"9","node_id":"99999999","actor":"9.1.99999999"})",
      R"([{"name":"c","state":{")" + own +
          R"(":{"p":1,"n":0},"9.1.99999999":{"p":5,"n":1}}}])");
  b.StartMerger({peer->Address()});
  ASSERT_TRUE(WaitUntil([&] { return b.Value("c") == "6"; })) << b.Value("c");
  PnCounter state;
  ASSERT_TRUE(b.store()->Get("c", &state).ok());
  EXPECT_EQ(state.actors().at(own).p, 2u);
  EXPECT_EQ(b.store()->actor_id(), own);
}

// Carries requests to in-process Apis by address, without HTTP.
class ApiTransport : public PeerTransport {
 public:
  void Add(const std::string& address, Api* api) { apis_[address] = api; }
  int requests() const { return requests_; }

  Status Get(const std::string& address, const std::string& target,
             int /*timeout_ms*/, size_t /*max_reply_bytes*/,
             PeerReply* reply) override {
    ++requests_;
    auto it = apis_.find(address);
    if (it == apis_.end()) return Status::Unavailable(address + ": down");
    ApiRequest request;
    request.method = "GET";
    request.client = "127.0.0.1";
    const size_t question = target.find('?');
    request.path = target.substr(0, question);
    std::string query =
        question == std::string::npos ? "" : target.substr(question + 1);
    while (!query.empty()) {  // the changes query has plain numbers
      const size_t amp = query.find('&');
      const std::string pair = query.substr(0, amp);
      const size_t eq = pair.find('=');
      request.query[pair.substr(0, eq)] = pair.substr(eq + 1);
      query = amp == std::string::npos ? "" : query.substr(amp + 1);
    }
    ApiReply served;
    it->second->Handle(request, &served);
    reply->http_status = served.status;
    reply->body = served.body;
    return Status::OK();
  }

 private:
  std::map<std::string, Api*> apis_;
  int requests_ = 0;
};

TEST(MergerTest, PullOnceCarriesItsRequestsThroughTheTransport) {
  LocalNode a("1"), b("2");
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(b.store()->Increment("c" + std::to_string(i), i + 1).ok());
  }
  ApiTransport transport;
  transport.Add("b:7777", b.api());
  ASSERT_TRUE(a.store()->SetPeers({"b:7777", "gone:7777"}).ok());
  MergerOptions options;
  options.transport = &transport;
  options.page_limit = 2;  // three pages in one round
  Merger merger(options, a.store());
  EXPECT_TRUE(merger.PullOnce("b:7777").ok());
  EXPECT_EQ(transport.requests(), 3);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(a.Value("c" + std::to_string(i)), std::to_string(i + 1));
  }
  EXPECT_TRUE(merger.PullOnce("gone:7777").IsUnavailable());
  EXPECT_EQ(StatusOf(&merger, "gone:7777").failures, 1);
  EXPECT_TRUE(merger.PullOnce("other:7777").IsNotFound());
}

// Replaces directory `to` with a copy of `from`.
void CopyOver(const std::string& from, const std::string& to) {
  std::filesystem::remove_all(to);
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
}

// Found by the simulator (scripts/sim.sh --restores_behind). A node whose data
// directory is put back from a copy taken at a clean stop starts at the
// incarnation of the copy, below incarnations it used since. Peers hold
// those later actors; the node refuses them as "this node at a later
// incarnation" (own_actor) and never converges, and a crash then makes it
// reuse them with lower counts. Disabled until that is fixed.
TEST(MergerTest, DISABLED_ANodePutBackBehindIncarnationsItUsedSinceConverges) {
  LocalNode a("1"), b("2");
  ASSERT_TRUE(a.store()->Increment("c", 1).ok());
  const std::string copy = a.DataDir() + ".copy";
  const std::string crash = a.DataDir() + ".crash";
  a.Close();
  CopyOver(a.DataDir(), copy);  // at a clean stop: incarnation kept
  a.Open();
  // A crash (the files as they are) and a restart: a new incarnation.
  CopyOver(a.DataDir(), crash);
  a.Close();
  CopyOver(crash, a.DataDir());
  a.Open();
  ASSERT_TRUE(a.store()->Increment("c", 5).ok());
  b.StartMerger({a.Address()});
  ASSERT_TRUE(WaitUntil([&] { return b.Value("c") == "6"; })) << b.Value("c");
  // The operator puts the copy back.
  a.Close();
  CopyOver(copy, a.DataDir());
  a.Open();
  a.StartMerger({b.Address()});
  EXPECT_TRUE(WaitUntil([&] { return a.Value("c") == "6"; })) << a.Value("c");
}

// Found by the simulator. A node put back from a copy taken at a clean
// stop keeps the copy's incarnation, below the counts peers hold for it.
// Its clients' increments before its first pull go to that actor and are
// acknowledged; the pull then moves the node, and the peer's larger totals
// of the old actor merge over them: the +2 is lost (the value is 6).
// Disabled until that is fixed.
TEST(MergerTest, DISABLED_IncrementsOfANodePutBackBeforeItsFirstPullAreKept) {
  LocalNode a("1"), b("2");
  ASSERT_TRUE(a.store()->Increment("c", 1).ok());
  const std::string copy = a.DataDir() + ".copy";
  a.Close();
  CopyOver(a.DataDir(), copy);  // at a clean stop: incarnation kept
  a.Open();
  ASSERT_TRUE(a.store()->Increment("c", 5).ok());
  b.StartMerger({a.Address()});
  ASSERT_TRUE(WaitUntil([&] { return b.Value("c") == "6"; })) << b.Value("c");
  b.merger()->Stop();
  a.Close();
  CopyOver(copy, a.DataDir());
  a.Open();
  ASSERT_TRUE(a.store()->Increment("c", 2).ok());  // acknowledged
  a.StartMerger({b.Address()});
  EXPECT_TRUE(WaitUntil([&] { return a.Value("c") == "8"; })) << a.Value("c");
}

TEST(MergerTest, APeerHoldingMoreForItsCurrentActorMovesItToANewIncarnation) {
  LocalNode b("2");
  ASSERT_TRUE(b.store()->Increment("c", 2).ok());
  const std::string old = b.store()->actor_id();
  // The peer claims 1000 increments under our current actor, which this
  // process started: forged (or a copy of this node). New increments under
  // it would be hidden behind that on the peer.
  auto peer = PeerWithChanges(
      R"({"challenge_id":"9","node_id":"99999999","actor":"9.1.99999999"})",
      R"([{"name":"c","state":{")" + old +
          R"(":{"p":1000,"n":0},"9.1.99999999":{"p":5,"n":1}}}])");
  b.StartMerger({peer->Address()});
  // Moved; the claim for an incarnation this process started is never
  // taken (an earlier run's would merge: see backup_cluster_test).
  ASSERT_TRUE(WaitUntil([&] { return b.Value("c") == "6"; })) << b.Value("c");
  ASSERT_TRUE(WaitUntil([&] { return b.store()->actor_id() != old; }));
  ASSERT_TRUE(b.store()->Increment("c", 1).ok());
  EXPECT_EQ(b.Value("c"), "7");
  PnCounter state;
  ASSERT_TRUE(b.store()->Get("c", &state).ok());
  EXPECT_EQ(state.actors().at(old).p, 2u);
  EXPECT_EQ(state.actors().at(b.store()->actor_id()).p, 1u);
  EXPECT_EQ(b.Metric("dist_counter_incarnation_moves_total"), 1);
}

// A fake peer that claims, for counter "c", 1000 more increments than
// `node` holds under its current actor, whatever that is when asked (in
// its change log and in its answer to a refresh), next to an honest actor.
std::unique_ptr<FakePeer> ForgerOf(LocalNode* node, std::atomic<int>* pulls,
                                   std::atomic<int>* refreshes) {
  auto peer = std::make_unique<FakePeer>([=](const std::string& target) {
    PeerIdentity identity;
    identity.challenge_id = "9";
    identity.node_id = "99999999";
    identity.actor = "9.1.99999999";
    identity.instance = 77;
    const std::string actor = node->store()->actor_id();
    PnCounter held;
    (void)node->store()->Get("c", &held);
    const auto it = held.actors().find(actor);
    const uint64_t p = it == held.actors().end() ? 0 : it->second.p;
    CounterChange change;
    change.name = "c";
    change.state.SetActor(actor, ActorCounts{p + 1000, 0});
    change.state.SetActor("9.1.99999999", ActorCounts{5, 1});
    if (target.rfind("/internal/changes", 0) == 0) {
      ++*pulls;
      return JsonReply(EncodeChangesPage(identity, /*reset=*/true, 1,
                                         /*more=*/false, {change}));
    }
    ++*refreshes;
    return JsonReply(EncodeCounterReply(identity, "c", change.state));
  });
  EXPECT_TRUE(peer->Start());
  return peer;
}

TEST(MergerTest, ARefreshNeverMovesTheNode) {
  LocalNode b("2");
  ASSERT_TRUE(b.store()->Increment("c", 2).ok());
  const std::string own = b.store()->actor_id();
  std::atomic<int> pulls{0}, refreshes{0};
  auto forger = ForgerOf(&b, &pulls, &refreshes);
  ASSERT_TRUE(b.store()->SetPeers({forger->Address()}).ok());
  Merger merger(LocalNode::Fast(), b.store());  // not started: no pulls
  for (int i = 0; i < 50; ++i) {
    std::vector<std::string> unreachable;
    ASSERT_TRUE(merger.RefreshCounter("c", &unreachable).ok());
  }
  EXPECT_EQ(refreshes.load(), 50);
  EXPECT_EQ(pulls.load(), 0);
  EXPECT_EQ(b.store()->actor_id(), own);
  EXPECT_EQ(b.Metric("dist_counter_incarnation_moves_total"), 0);
  // The honest actor merged, the claim for ours did not.
  EXPECT_EQ(b.Value("c"), "6");
}

TEST(MergerTest, APeerForgingEveryNewActorMovesTheNodeOnce) {
  LocalNode b("2");
  ASSERT_TRUE(b.store()->Increment("c", 2).ok());
  int64_t acknowledged = 2;
  const std::string first = b.store()->actor_id();
  std::atomic<int> pulls{0}, refreshes{0};
  auto forger = ForgerOf(&b, &pulls, &refreshes);
  b.StartMerger({forger->Address()});
  // The first claim is believed: one move (the store's first is never
  // delayed).
  ASSERT_TRUE(WaitUntil([&] { return b.store()->actor_id() != first; }));
  const std::string second = b.store()->actor_id();
  // Then the peer claims more for the new actor at every pull and refresh,
  // while clients increment: refused, the node stays where it is.
  const int pulls_after_move = pulls.load();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(b.store()->Increment("c", 1).ok());
    ++acknowledged;
    std::vector<std::string> unreachable;
    ASSERT_TRUE(b.merger()->RefreshCounter("c", &unreachable).ok());
  }
  ASSERT_TRUE(WaitUntil([&] { return pulls.load() >= pulls_after_move + 20; }));
  ASSERT_TRUE(WaitUntil([&] {
    return b.Metric("dist_counter_incarnation_moves_refused_total") >= 20;
  }));
  EXPECT_EQ(b.store()->actor_id(), second);
  EXPECT_EQ(b.Metric("dist_counter_incarnation_moves_total"), 1);
  // Every acknowledged increment counts (plus the honest actor's 5 - 1).
  EXPECT_EQ(b.Value("c"), std::to_string(acknowledged + 4));
  PnCounter state;
  ASSERT_TRUE(b.store()->Get("c", &state).ok());
  EXPECT_EQ(state.actors().at(second).p, 100u);
  EXPECT_EQ(state.actors().size(), 3u);  // first, second, the honest one
}

// A peer's reset reaches this node's own actor: its baselines are taken
// when its totals are within ours (the peer learnt them from us); a claim
// of higher totals is still refused.
TEST(MergerTest, TakesAPeersResetOfItsOwnActorButNoHigherTotals) {
  LocalNode b("2");
  ASSERT_TRUE(b.store()->Increment("c", 5).ok());
  ASSERT_TRUE(b.store()->Increment("d", 5).ok());
  const std::string own = b.store()->actor_id();
  auto peer = PeerWithChanges(
      R"({"challenge_id":"9","node_id":"99999999","actor":"9.1.99999999"})",
      R"([{"name":"c","state":{")" + own +
          R"(":{"p":4,"n":0,"bp":4,"bn":0},"9.1.99999999":{"p":3,"n":0}}},)"
          R"({"name":"d","state":{")" +
          own + R"(":{"p":6,"n":0,"bp":6,"bn":0}}}])");
  b.StartMerger({peer->Address()});
  // c: 5 - 4 (the peer's reset saw 4 of our 5) + 3.
  ASSERT_TRUE(WaitUntil([&] { return b.Value("c") == "4"; })) << b.Value("c");
  PnCounter state;
  ASSERT_TRUE(b.store()->Get("c", &state).ok());
  EXPECT_EQ(state.actors().at(own), (ActorCounts{5, 0, 4, 0}));
  // d: the peer claims more than we ever counted: refused.
  ASSERT_TRUE(WaitUntil([&] {
    return b.Metric("dist_counter_peer_rejected_counters_total{" +
                    PeerLabel(peer->Address()) + ",reason=\"own_actor\"}") >= 1;
  }));
  EXPECT_EQ(b.Value("d"), "5");
}

TEST(MergerTest, RefusesToMergeACopyOfItself) {
  LocalNode b("2");
  // Our node id from another store instance: a copied data directory.
  auto peer = PeerWithChanges(
      R"({"challenge_id":"2","node_id":")" + b.store()->node_id() +
          R"(","actor":"2.5.)" + b.store()->node_id() + R"("})",
      R"([{"name":"stolen","state":{"x":{"p":5,"n":1}}}])");
  b.StartMerger({peer->Address()});
  ASSERT_TRUE(WaitUntil(
      [&] { return StatusOf(b.merger(), peer->Address()).failures >= 2; }));
  EXPECT_FALSE(b.Has("stolen"));
  EXPECT_FALSE(StatusOf(b.merger(), peer->Address()).self);
}

TEST(MergerTest, GarbageAndHungPeersNeitherDisturbNorDelayTheOthers) {
  LocalNode a("1"), b("2");
  auto garbage = std::make_unique<FakePeer>([](const std::string&) {
    return JsonReply(
        // No "next": the page's framing is broken, so nothing of it counts.
        R"({"node":{"challenge_id":"g","node_id":"g","actor":"g"},"instance":5,)"
        R"("reset":true,"more":false,"counters":[)"
        R"({"name":"poison","state":{"x":{"p":1,"n":0}}},)"
        R"({"name":"bad","state":{"x":{"p":-1,"n":0}}}]})");
  });
  ASSERT_TRUE(garbage->Start());
  FakeReply silent;
  silent.hang = true;
  auto hung = std::make_unique<FakePeer>(
      [silent](const std::string&) { return silent; });
  ASSERT_TRUE(hung->Start());
  MergerOptions options = LocalNode::Fast();
  options.peer_timeout_ms = 5000;  // the hung peer holds its worker long
  b.StartMerger({garbage->Address(), hung->Address(), a.Address()}, options);

  for (int i = 1; i <= 20; ++i) {
    ASSERT_TRUE(a.store()->Increment("x", 1).ok());
    const std::string want = std::to_string(i);
    ASSERT_TRUE(WaitUntil([&] { return b.Value("x") == want; })) << want;
  }
  EXPECT_FALSE(b.Has("poison"));
  EXPECT_FALSE(b.Has("bad"));
  EXPECT_GT(StatusOf(b.merger(), garbage->Address()).failures, 0);
  EXPECT_GT(b.Metric("dist_counter_peer_rejected_replies_total{" +
                     PeerLabel(garbage->Address()) + "}"),
            0);
  EXPECT_EQ(b.merger()->ConnectedNodes(),
            std::vector<std::string>{a.Address()});
}

TEST(MergerTest, RefreshCounterMergesWhatAnswersAndNamesWhatDoesNot) {
  LocalNode a("1"), b("2");
  FakeReply silent;
  silent.hang = true;
  auto hung = std::make_unique<FakePeer>(
      [silent](const std::string&) { return silent; });
  ASSERT_TRUE(hung->Start());
  const std::string dead = "127.0.0.1:" + std::to_string(test::FreePort());
  MergerOptions options = LocalNode::Fast();
  options.merge_interval_ms = 3600 * 1000;  // only refreshes move data
  options.max_backoff_ms = options.merge_interval_ms;
  ASSERT_TRUE(a.store()->Increment("c", 9).ok());
  ASSERT_TRUE(a.store()->Increment("other", 1).ok());
  b.StartMerger({hung->Address(), a.Address(), dead}, options);

  std::vector<std::string> unreachable;
  Status s = b.merger()->RefreshCounter("c", &unreachable);
  EXPECT_TRUE(s.IsUnavailable());
  EXPECT_EQ(unreachable, (std::vector<std::string>{hung->Address(), dead}));
  EXPECT_EQ(b.Value("c"), "9");  // a answered and was merged

  b.merger()->SetPeers({a.Address()});
  ASSERT_TRUE(a.store()->Increment("c", 1).ok());
  unreachable.clear();
  EXPECT_TRUE(b.merger()->RefreshCounter("c", &unreachable).ok());
  EXPECT_TRUE(unreachable.empty());
  EXPECT_EQ(b.Value("c"), "10");
  // A counter nobody has stays unknown: the refresh creates nothing.
  EXPECT_TRUE(b.merger()->RefreshCounter("nowhere", &unreachable).ok());
  EXPECT_EQ(b.Value("nowhere"), "0");
  EXPECT_FALSE(b.Has("nowhere"));
  EXPECT_EQ(b.Metric("dist_counter_consistent_refreshes_total{result=\"ok\"}"),
            2);
}

TEST(MergerTest, RefreshCounterWithoutPeersSucceeds) {
  LocalNode b("2");
  b.StartMerger({});
  std::vector<std::string> unreachable;
  EXPECT_TRUE(b.merger()->RefreshCounter("c", &unreachable).ok());
  EXPECT_TRUE(unreachable.empty());
}

TEST(MergerTest, PicksUpAPeerThatComesUpLate) {
  const uint16_t port = test::FreePort();
  LocalNode b("2");
  b.StartMerger({"127.0.0.1:" + std::to_string(port)});
  const std::string address = "127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(
      WaitUntil([&] { return StatusOf(b.merger(), address).failures >= 5; }));
  EXPECT_TRUE(b.merger()->ConnectedNodes().empty());
  EXPECT_EQ(b.Metric("dist_counter_peer_up{" + PeerLabel(address) + "}"), 0);

  LocalNode a("1", port);
  ASSERT_TRUE(a.store()->Increment("late", 3).ok());
  ASSERT_TRUE(WaitUntil([&] { return b.Value("late") == "3"; }));
  ASSERT_TRUE(
      WaitUntil([&] { return StatusOf(b.merger(), address).connected; }));
  EXPECT_EQ(StatusOf(b.merger(), address).failures, 0);
  EXPECT_EQ(b.Metric("dist_counter_peer_up{" + PeerLabel(address) + "}"), 1);
}

TEST(MergerTest, SetPeersAddsAndRemovesWorkers) {
  LocalNode a("1"), c("3"), b("2");
  b.StartMerger({a.Address()});
  ASSERT_TRUE(a.store()->Increment("from-a", 1).ok());
  ASSERT_TRUE(c.store()->Increment("from-c", 1).ok());
  ASSERT_TRUE(WaitUntil([&] { return b.Has("from-a"); }));
  EXPECT_FALSE(b.Has("from-c"));

  b.merger()->SetPeers({c.Address()});
  ASSERT_TRUE(WaitUntil([&] { return b.Has("from-c"); }));
  ASSERT_TRUE(WaitUntil([&] {
    return b.merger()->ConnectedNodes() ==
           std::vector<std::string>{c.Address()};
  }));
  ASSERT_TRUE(a.store()->Increment("from-a-later", 1).ok());
  // c does not have it and a is no longer pulled; give it a few rounds.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(b.Has("from-a-later"));
  b.merger()->SetPeers({});
  EXPECT_TRUE(b.merger()->PeerStatuses().empty());
}

TEST(MergerTest, StopsPromptlyWhileAPeerHangs) {
  FakeReply silent;
  silent.hang = true;
  auto hung = std::make_unique<FakePeer>(
      [silent](const std::string&) { return silent; });
  ASSERT_TRUE(hung->Start());
  LocalNode b("2");
  MergerOptions options = LocalNode::Fast();
  options.peer_timeout_ms = 600000;  // only the abort can end the pull
  b.StartMerger({hung->Address()}, options);
  ASSERT_TRUE(WaitUntil([&] { return hung->requests() > 0; }));
  b.merger()->Stop();  // returns: the pull in progress is abandoned
  b.merger()->Stop();
  EXPECT_TRUE(b.merger()->ConnectedNodes().empty());
}

TEST(MergerTest, StopCancelsARefreshInProgressAndEveryLaterOne) {
  std::atomic<int> counter_requests{0};
  FakeReply silent;
  silent.hang = true;
  FakePeer hung([&](const std::string& target) {
    if (target.rfind("/internal/counter/", 0) == 0) ++counter_requests;
    return silent;
  });
  ASSERT_TRUE(hung.Start());
  LocalNode b("2");
  MergerOptions options = LocalNode::Fast();
  options.peer_timeout_ms = 60000;  // only the cancel can end the refresh
  b.StartMerger({hung.Address()}, options);

  std::atomic<bool> done{false};
  Status status;
  std::vector<std::string> unreachable;
  std::thread refresh([&] {
    status = b.merger()->RefreshCounter("c", &unreachable);
    done = true;
  });
  EXPECT_TRUE(WaitUntil([&] { return counter_requests.load() > 0; }));
  b.merger()->Stop();
  EXPECT_TRUE(WaitUntil([&] { return done.load(); }, 5000));
  refresh.join();
  EXPECT_TRUE(status.IsUnavailable()) << status.ToString();
  EXPECT_EQ(unreachable, std::vector<std::string>{hung.Address()});

  // Later refreshes do not ask at all.
  const int asked = counter_requests.load();
  unreachable.clear();
  EXPECT_TRUE(b.merger()->RefreshCounter("c", &unreachable).IsUnavailable());
  EXPECT_EQ(unreachable, std::vector<std::string>{hung.Address()});
  EXPECT_EQ(counter_requests.load(), asked);
}

TEST(MergerTest, CancelRefreshesLeavesThePullsRunning) {
  LocalNode a("1"), b("2");
  b.StartMerger({a.Address()});
  b.merger()->CancelRefreshes();
  std::vector<std::string> unreachable;
  EXPECT_TRUE(b.merger()->RefreshCounter("c", &unreachable).IsUnavailable());
  EXPECT_EQ(unreachable, std::vector<std::string>{a.Address()});
  ASSERT_TRUE(a.store()->Increment("c", 3).ok());
  EXPECT_TRUE(WaitUntil([&] { return b.Value("c") == "3"; }));
}

// A state of `actors` actors named <prefix>0, <prefix>1, ...
PnCounter StateWith(int actors, const std::string& prefix = "actor-") {
  PnCounter state;
  for (int i = 0; i < actors; ++i) {
    state.SetActor(prefix + std::to_string(i), ActorCounts{1, 0});
  }
  return state;
}

std::string ChangeJson(const std::string& name, const PnCounter& state) {
  return R"({"name":")" + name + R"(","state":)" + EncodeCounter(state) + "}";
}

constexpr char kFakeNode[] =
    R"({"challenge_id":"9","node_id":"99999999","actor":"9.1.99999999"})";

// A changes reply of fake node 9, instance 77.
std::string FakePage(bool reset, uint64_t next, bool more,
                     const std::string& counters) {
  return std::string(R"({"node":)") + kFakeNode + R"(,"instance":77,"reset":)" +
         (reset ? "true" : "false") + R"(,"next":)" + std::to_string(next) +
         R"(,"more":)" + (more ? "true" : "false") + R"(,"counters":)" +
         counters + "}";
}

// The number of entries of directory `path` (but . and ..), or -1.
int EntryCount(const char* path) {
  int count = 0;
  DIR* dir = opendir(path);
  if (dir == nullptr) return -1;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count;
}

// The number of threads of this process.
int ThreadCount() { return EntryCount("/proc/self/task"); }
// The number of open descriptors of this process (one is the listing's).
int DescriptorCount() { return EntryCount("/proc/self/fd"); }

TEST(MergerTest, OversizedCountersAreRefusedAndTheRestOfTheirPageMerged) {
  LocalNode b("2");
  const std::string page =
      "[" + ChangeJson("before", StateWith(1)) + "," +
      ChangeJson("many-actors", StateWith(2000)) + "," +
      ChangeJson("between", StateWith(2)) + "," +
      ChangeJson("many-bytes", StateWith(500, std::string(100, 'a'))) + "," +
      ChangeJson("after", StateWith(3)) + "]";
  std::mutex mu;
  std::vector<std::string> targets;
  FakePeer peer([&](const std::string& target) {
    std::lock_guard<std::mutex> lock(mu);
    targets.push_back(target);
    if (target.find("since=0&") != std::string::npos) {
      return JsonReply(FakePage(true, 5, false, page));
    }
    return JsonReply(FakePage(false, 5, false, "[]"));
  });
  ASSERT_TRUE(peer.Start());
  MergerOptions options = LocalNode::Fast();
  options.max_actors_per_counter = 1000;
  options.max_counter_bytes = 32 << 10;
  b.StartMerger({peer.Address()}, options);
  ASSERT_TRUE(WaitUntil([&] { return b.Has("after"); }));
  EXPECT_EQ(b.Value("before"), "1");
  EXPECT_EQ(b.Value("between"), "2");
  EXPECT_EQ(b.Value("after"), "3");
  EXPECT_FALSE(b.Has("many-actors"));
  EXPECT_FALSE(b.Has("many-bytes"));
  const std::string label = PeerLabel(peer.Address());
  EXPECT_EQ(b.Metric("dist_counter_peer_rejected_counters_total{" + label +
                     ",reason=\"too_many_actors\"}"),
            1);
  EXPECT_EQ(b.Metric("dist_counter_peer_rejected_counters_total{" + label +
                     ",reason=\"too_large\"}"),
            1);
  // The cursor moved past them: the next pull asks for what follows.
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(mu);
    for (const std::string& t : targets) {
      if (t.find("instance=77&since=5&") != std::string::npos) return true;
    }
    return false;
  }));
}

TEST(MergerTest, ABadNameOrActorIdRefusesOnlyItsCounterAndTheCursorMoves) {
  LocalNode b("2");
  const std::string page =
      "[" + ChangeJson("before", StateWith(1)) + "," +
      ChangeJson("\xff", StateWith(1)) + "," +  // not UTF-8
      ChangeJson("long-actor", StateWith(1, std::string(kMaxIdBytes, 'a'))) +
      "," + R"({"name":"bad-shape","state":{"x":{"p":1}}})" + "," +
      ChangeJson("after", StateWith(3)) + "]";
  std::mutex mu;
  std::vector<std::string> targets;
  FakePeer peer([&](const std::string& target) {
    std::lock_guard<std::mutex> lock(mu);
    targets.push_back(target);
    if (target.find("since=0&") != std::string::npos) {
      return JsonReply(FakePage(true, 5, false, page));
    }
    return JsonReply(FakePage(false, 5, false, "[]"));
  });
  ASSERT_TRUE(peer.Start());
  b.StartMerger({peer.Address()});
  ASSERT_TRUE(WaitUntil([&] { return b.Has("after"); }));
  EXPECT_EQ(b.Value("before"), "1");
  EXPECT_EQ(b.Value("after"), "3");
  EXPECT_FALSE(b.Has("\xff"));
  EXPECT_FALSE(b.Has("long-actor"));
  EXPECT_FALSE(b.Has("bad-shape"));
  const std::string label = PeerLabel(peer.Address());
  for (const char* reason : {"bad_name", "bad_actor", "bad_state"}) {
    EXPECT_EQ(b.Metric("dist_counter_peer_rejected_counters_total{" + label +
                       ",reason=\"" + reason + "\"}"),
              1)
        << reason;
  }
  // The cursor moved past them: the next pull asks for what follows.
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(mu);
    for (const std::string& t : targets) {
      if (t.find("instance=77&since=5&") != std::string::npos) return true;
    }
    return false;
  }));
  EXPECT_EQ(StatusOf(b.merger(), peer.Address()).failures, 0);
}

TEST(MergerTest, NamesAndActorIdsThatAreNotUtf8AreNeverServedToPeers) {
  LocalNode a("1"), b("2");
  // As older versions stored them (from clients and peers).
  PnCounter odd = StateWith(1);
  odd.SetActor("\xfe\xff", ActorCounts{7, 0});
  ASSERT_TRUE(a.store()->Merge("\xff", StateWith(2), nullptr).ok());
  ASSERT_TRUE(a.store()->Merge("odd-actor", odd, nullptr).ok());
  ASSERT_TRUE(a.store()->Increment("plain", 4).ok());
  test::HttpClient http;
  const test::HttpResponse changes = http.Request(
      "GET", "http://" + a.Address() + "/internal/changes?since=0&limit=100");
  ASSERT_EQ(changes.status, 200) << changes.error;
  rapidjson::Document doc;
  EXPECT_TRUE(ParseJson(changes.body, kMaxWireJsonDepth, &doc).ok())
      << changes.body;
  const test::HttpResponse one = http.Request(
      "GET", "http://" + a.Address() + "/internal/counter/odd-actor");
  ASSERT_EQ(one.status, 200) << one.error;
  EXPECT_TRUE(ParseJson(one.body, kMaxWireJsonDepth, &doc).ok()) << one.body;

  b.StartMerger({a.Address()});
  ASSERT_TRUE(WaitUntil([&] { return b.Has("plain") && b.Has("odd-actor"); }));
  EXPECT_EQ(b.Value("odd-actor"), "1");  // without the actor \xfe\xff
  EXPECT_FALSE(b.Has("\xff"));
  EXPECT_EQ(StatusOf(b.merger(), a.Address()).failures, 0);
}

TEST(MergerTest, AMergeThatWouldGrowACounterPastTheBoundIsRefused) {
  LocalNode b("2");
  ASSERT_TRUE(b.store()->Merge("c", StateWith(8, "old-"), nullptr).ok());
  auto peer =
      PeerWithChanges(kFakeNode, "[" + ChangeJson("c", StateWith(5, "new-")) +
                                     "," + ChangeJson("d", StateWith(5)) + "]");
  MergerOptions options = LocalNode::Fast();
  options.max_actors_per_counter = 10;
  b.StartMerger({peer->Address()}, options);
  ASSERT_TRUE(WaitUntil([&] { return b.Has("d"); }));
  ASSERT_TRUE(WaitUntil([&] {
    return b.Metric("dist_counter_peer_rejected_counters_total{" +
                    PeerLabel(peer->Address()) +
                    ",reason=\"too_many_actors\"}") >= 1;
  }));
  EXPECT_EQ(b.Value("c"), "8");  // 8 + 5 actors > 10: nothing merged
}

TEST(MergerTest, ServedPagesAreSizedByBytesAndSkipAStateLargerThanAPage) {
  LocalNode a("1"), b("2");
  ASSERT_TRUE(a.store()->Increment("first", 1).ok());
  // About 150 KB: larger than a page of 16 KiB.
  ASSERT_TRUE(a.store()->Merge("huge", StateWith(5000), nullptr).ok());
  std::vector<std::pair<std::string, int64_t>> batch;
  for (int i = 0; i < 300; ++i) batch.emplace_back("c" + std::to_string(i), 1);
  ASSERT_TRUE(a.store()->IncrementBatch(batch).ok());
  for (int i = 0; i < 300; i += 3) {
    ASSERT_TRUE(
        a.store()
            ->Merge("c" + std::to_string(i), StateWith(20, "pad-"), nullptr)
            .ok());
  }

  PeerClientOptions client_options;
  client_options.page_bytes = 16 << 10;
  PeerClient client(a.Address(), client_options);
  ChangesCursor cursor;
  size_t pages = 0, counters = 0, rejected = 0;
  uint64_t largest_reply = 0;
  for (bool more = true; more && pages < 1000; ++pages) {
    const uint64_t before = client.bytes_received();
    ChangesPage page;
    ASSERT_TRUE(client.FetchChanges(cursor, 1000, &page).ok());
    largest_reply = std::max(largest_reply, client.bytes_received() - before);
    counters += page.counters.size();
    rejected += page.rejected.size();
    for (const RejectedCounter& r : page.rejected) {
      EXPECT_EQ(r.name, "huge");
      EXPECT_GT(r.bytes, client_options.page_bytes);
    }
    cursor = page.next;
    more = page.more;
  }
  EXPECT_GT(pages, 3u);
  EXPECT_EQ(counters, 301u);
  EXPECT_EQ(rejected, 1u);
  EXPECT_LE(largest_reply, client_options.page_bytes + 1024);

  // A merger pulling with such pages gets everything else.
  MergerOptions options = LocalNode::Fast();
  options.page_bytes = 16 << 10;
  b.StartMerger({a.Address()}, options);
  ASSERT_TRUE(WaitUntil([&] { return b.store()->size() == 301; }))
      << b.store()->size();
  EXPECT_FALSE(b.Has("huge"));
  EXPECT_EQ(b.Metric("dist_counter_peer_rejected_counters_total{" +
                     PeerLabel(a.Address()) + ",reason=\"too_large\"}"),
            1);
}

TEST(MergerTest, ARepliedPageLargerThanTheCapIsRefused) {
  LocalNode b("2");
  std::string counters = "[";
  for (int i = 0; i < 2000; ++i) {
    counters += std::string(i > 0 ? "," : "") +
                ChangeJson("n" + std::to_string(i), StateWith(1));
  }
  counters += "]";
  auto peer = PeerWithChanges(kFakeNode, counters);
  MergerOptions options = LocalNode::Fast();
  options.page_bytes = 4 << 10;  // the cap is 2 pages + 64 KiB
  options.page_limit = 5000;
  b.StartMerger({peer->Address()}, options);
  ASSERT_TRUE(WaitUntil([&] {
    return b.Metric("dist_counter_peer_rejected_replies_total{" +
                    PeerLabel(peer->Address()) + "}") >= 2;
  }));
  EXPECT_EQ(b.store()->size(), 0u);
  EXPECT_NE(StatusOf(b.merger(), peer->Address()).last_error.find("larger"),
            std::string::npos);
}

TEST(MergerTest, APeerThatAlwaysHasMoreGetsABoundedShareOfEachRound) {
  LocalNode b("2");
  std::atomic<uint64_t> served{0};
  FakePeer peer([&](const std::string&) {
    const uint64_t n = ++served;
    return JsonReply(FakePage(
        n == 1, n, true,
        "[" + ChangeJson("x" + std::to_string(n), StateWith(1)) + "]"));
  });
  ASSERT_TRUE(peer.Start());
  MergerOptions options = LocalNode::Fast();
  options.max_round_bytes = 1;  // one page per round
  b.StartMerger({peer.Address()}, options);
  ASSERT_TRUE(WaitUntil(
      [&] { return StatusOf(b.merger(), peer.Address()).rounds >= 5; }));
  b.merger()->Stop();
  const uint64_t rounds = StatusOf(b.merger(), peer.Address()).rounds;
  EXPECT_LE(static_cast<uint64_t>(peer.requests()), rounds + 1);
  EXPECT_TRUE(b.Has("x1"));
}

TEST(MergerTest, TakesItsOwnActorsOnlyForEarlierIncarnations) {
  // A challenge id with dots: actor ids are read from the right.
  LocalNode b("2.x");
  ASSERT_TRUE(b.store()->Increment("c", 2).ok());
  const std::string node = b.store()->node_id();
  const uint64_t inc = b.store()->incarnation();
  ASSERT_GE(inc, 1u);
  auto own = [&](const std::string& incarnation) {
    return "2.x." + incarnation + "." + node;
  };
  PnCounter sent;
  const uint64_t kMax = UINT64_MAX;
  sent.SetActor(own(std::to_string(inc - 1)), ActorCounts{5, 0});  // ok
  // Not above ours (a larger count would move us to a new incarnation):
  // taken, since it can only raise baselines (a peer's reset), never P/N.
  sent.SetActor(own(std::to_string(inc)), ActorCounts{1, 0});
  sent.SetActor(own(std::to_string(inc + 1)), ActorCounts{kMax, 0});
  sent.SetActor(own(std::to_string(inc + 1000)), ActorCounts{kMax, 0});
  sent.SetActor(own("0" + std::to_string(inc + 1)), ActorCounts{7, 0});
  sent.SetActor(own("x"), ActorCounts{7, 0});
  sent.SetActor(own("99999999999999999999999"), ActorCounts{7, 0});
  sent.SetActor("2." + std::to_string(inc + 1) + "." + node,
                ActorCounts{3, 0});  // challenge "2": another node's
  sent.SetActor("9.1.99999999", ActorCounts{1, 0});
  auto peer = PeerWithChanges(kFakeNode, "[" + ChangeJson("c", sent) + "]");
  b.StartMerger({peer->Address()});
  ASSERT_TRUE(WaitUntil([&] { return b.Value("c") == "11"; })) << b.Value("c");
  PnCounter state;
  ASSERT_TRUE(b.store()->Get("c", &state).ok());
  EXPECT_EQ(state.actors().count(own(std::to_string(inc + 1))), 0u);
  EXPECT_EQ(state.actors().count(own(std::to_string(inc + 1000))), 0u);
  EXPECT_EQ(state.actors().at(b.store()->actor_id()).p, 2u);
  EXPECT_EQ(state.actors().at(own(std::to_string(inc - 1))).p, 5u);
  EXPECT_EQ(b.Metric("dist_counter_peer_rejected_counters_total{" +
                     PeerLabel(peer->Address()) + ",reason=\"own_actor\"}"),
            5);
  // Our next increments still work.
  ASSERT_TRUE(b.store()->Increment("c", 1).ok());
}

TEST(MergerTest, ThreadsAndDescriptorsDoNotGrowWithThePeerCount) {
  LocalNode b("2");
  const int before = ThreadCount();
  const int descriptors_before = DescriptorCount();
  ASSERT_GT(before, 0);
  const std::string port = std::to_string(test::FreePort());
  std::vector<std::string> peers;
  for (int i = 2; i < 202; ++i) {
    peers.push_back("127.0.0." + std::to_string(i) + ":" + port);
  }
  MergerOptions options = LocalNode::Fast();
  options.pull_threads = 4;
  b.StartMerger(peers, options);
  ASSERT_TRUE(WaitUntil([&] {
    int tried = 0;
    for (const PeerStatus& s : b.merger()->PeerStatuses()) {
      tried += s.failures > 0 ? 1 : 0;
    }
    return tried == 200;
  }));
  EXPECT_LE(ThreadCount(), before + 4 + 2);
  // Peers that are down hold no connection or curl handle meanwhile.
  EXPECT_LE(DescriptorCount(), descriptors_before + 4 * 3 + 8);
}

TEST(MergerTest, RemovedPeersLeaveNoMetricSeries) {
  LocalNode a("1"), b("2");
  b.StartMerger({a.Address()});
  const std::string port = std::to_string(test::FreePort());
  for (int round = 0; round < 10; ++round) {
    std::vector<std::string> peers = {a.Address()};
    for (int i = 0; i < 20; ++i) {
      peers.push_back("127.0." + std::to_string(round + 1) + "." +
                      std::to_string(i + 1) + ":" + port);
    }
    b.merger()->SetPeers(peers);
  }
  b.merger()->SetPeers({a.Address()});
  const std::string text = b.metrics()->Render();
  size_t series = 0, others = 0;
  for (size_t at = text.find("peer=\""); at != std::string::npos;
       at = text.find("peer=\"", at + 1)) {
    ++series;
    if (text.compare(at + 6, a.Address().size() + 1, a.Address() + "\"") != 0)
      ++others;
  }
  EXPECT_EQ(others, 0u) << text;
  EXPECT_GT(series, 5u);  // a's own series stay
}

}  // namespace
}  // namespace dist_counter
