// PeerClient and CounterFanout against fake peers on loopback: valid
// replies are read exactly; garbage, truncated, mistyped, inconsistent,
// huge and hanging replies all end in a non-OK Status with nothing
// returned, and never in a crash or an endless wait.

#include "cluster/peer_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "cluster/fake_peer.h"
#include "cluster/peer_clients_environment.h"
#include "cluster/peer_transport.h"
#include "testing/node_process.h"
#include "testing/wait_until.h"

namespace dist_counter {
namespace {

using test::FakePeer;
using test::FakeReply;
using test::HttpReply;
using test::JsonReply;

const auto* const kCurl =
    ::testing::AddGlobalTestEnvironment(new test::PeerClientsEnvironment);

constexpr char kNode[] =
    R"({"challenge_id":"7","node_id":"0000abcd","actor":"7.1.0000abcd"})";

// The JSON object {"node":<kNode>,<fields>}: a reply whose node is valid.
std::string Envelope(const std::string& fields) {
  return std::string(R"({"node":)") + kNode + "," + fields + "}";
}

std::string ChangesBody(const std::string& counters, uint64_t instance = 42,
                        bool reset = true, uint64_t next = 2,
                        bool more = false) {
  return Envelope(R"("instance":)" + std::to_string(instance) + R"(,"reset":)" +
                  (reset ? "true" : "false") + R"(,"next":)" +
                  std::to_string(next) + R"(,"more":)" +
                  (more ? "true" : "false") + R"(,"counters":)" + counters);
}

const char kTwoCounters[] =
    R"([{"name":"a","state":{"7.1.0000abcd":{"p":5,"n":2}}},)"
    R"({"name":"b c","state":{"x":{"p":18446744073709551615,"n":0}}}])";

PeerClientOptions FastOptions() {
  PeerClientOptions options;
  options.connect_timeout_ms = 300;
  options.timeout_ms = 300;
  return options;
}

// Starts a fake peer that always answers `reply`.
std::unique_ptr<FakePeer> Serving(const FakeReply& reply) {
  auto peer =
      std::make_unique<FakePeer>([reply](const std::string&) { return reply; });
  EXPECT_TRUE(peer->Start());
  return peer;
}

Status FetchChangesFrom(const FakeReply& reply, ChangesPage* page,
                        ChangesCursor cursor = ChangesCursor(),
                        size_t limit = 100,
                        PeerClientOptions options = FastOptions()) {
  auto peer = Serving(reply);
  PeerClient client(peer->Address(), options);
  return client.FetchChanges(cursor, limit, page);
}

Status FetchChangesBody(const std::string& body) {
  ChangesPage page;
  page.next.since = 12345;  // must stay untouched on failure
  Status s = FetchChangesFrom(JsonReply(body), &page);
  EXPECT_EQ(page.next.since, 12345u) << body;
  EXPECT_TRUE(page.counters.empty()) << body;
  return s;
}

TEST(PeerClientTest, ReadsAValidChangesPage) {
  ChangesPage page;
  ASSERT_TRUE(
      FetchChangesFrom(JsonReply(ChangesBody(kTwoCounters)), &page).ok());
  EXPECT_EQ(page.node.challenge_id, "7");
  EXPECT_EQ(page.node.node_id, "0000abcd");
  EXPECT_EQ(page.node.actor, "7.1.0000abcd");
  EXPECT_EQ(page.node.instance, 42u);
  EXPECT_TRUE(page.reset);
  EXPECT_FALSE(page.more);
  EXPECT_EQ(page.next.instance, 42u);
  EXPECT_EQ(page.next.since, 2u);
  ASSERT_EQ(page.counters.size(), 2u);
  EXPECT_EQ(page.counters[0].name, "a");
  EXPECT_EQ(page.counters[0].state.DebugString(), "{7.1.0000abcd:+5-2}");
  EXPECT_EQ(page.counters[1].name, "b c");
  EXPECT_EQ(page.counters[1].state.ValueString(), "18446744073709551615");
}

TEST(PeerClientTest, SendsTheCursorLimitAndPageBytes) {
  std::string seen;
  std::mutex mu;
  FakePeer peer([&](const std::string& target) {
    std::lock_guard<std::mutex> lock(mu);
    seen = target;
    return JsonReply(ChangesBody("[]", 42, false, 9));
  });
  ASSERT_TRUE(peer.Start());
  PeerClientOptions options = FastOptions();
  options.page_bytes = 5000;
  PeerClient client(peer.Address(), options);
  ChangesPage page;
  ASSERT_TRUE(client.FetchChanges({42, 9}, 17, &page).ok());
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen,
            "/internal/changes?instance=42&since=9&limit=17&max_bytes=5000");
  EXPECT_FALSE(page.reset);
  EXPECT_EQ(page.next.since, 9u);
}

TEST(PeerClientTest, ReusesOneConnectionForManyRequests) {
  FakePeer peer(
      [](const std::string&) { return JsonReply(ChangesBody("[]")); });
  ASSERT_TRUE(peer.Start());
  PeerClient client(peer.Address(), FastOptions());
  for (int i = 0; i < 5; ++i) {
    ChangesPage page;
    ASSERT_TRUE(client.FetchChanges(ChangesCursor(), 10, &page).ok());
  }
  EXPECT_EQ(peer.requests(), 5);
  EXPECT_EQ(peer.connections(), 1);
  EXPECT_GT(client.bytes_received(), 5 * ChangesBody("[]").size() - 1);
}

TEST(PeerClientTest, RejectsRepliesThatAreNotJsonObjects) {
  for (const std::string& body : std::vector<std::string>{
           "", "hello", "null", "[]", "42", "\"str\"", "{", "{}}", "{} {}",
           "{\"node\":", std::string(1, '\0')}) {
    Status s = FetchChangesBody(body);
    EXPECT_TRUE(s.IsCorruption()) << body << " -> " << s.ToString();
  }
}

TEST(PeerClientTest, RejectsTruncatedJson) {
  const std::string full = ChangesBody(kTwoCounters);
  for (size_t cut : {full.size() - 1, full.size() / 2, size_t{10}}) {
    Status s = FetchChangesBody(full.substr(0, cut));
    EXPECT_TRUE(s.IsCorruption()) << cut << " -> " << s.ToString();
  }
}

TEST(PeerClientTest, RejectsAReplyCutShortOfItsContentLength) {
  FakeReply reply;
  const std::string body = ChangesBody(kTwoCounters);
  reply.raw =
      "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body.substr(0, 40);
  reply.close = true;
  ChangesPage page;
  EXPECT_FALSE(FetchChangesFrom(reply, &page).ok());
  EXPECT_TRUE(page.counters.empty());
}

TEST(PeerClientTest, RejectsWrongTypesInTheEnvelope) {
  std::vector<std::string> bad = {
      // node
      R"({"instance":1,"reset":true,"next":0,"more":false,"counters":[]})",
      R"({"node":"x","instance":1,"reset":true,"next":0,"more":false,"counters":[]})",
      R"({"node":{"challenge_id":7,"node_id":"a","actor":"b"},"instance":1,"reset":true,"next":0,"more":false,"counters":[]})",
      R"({"node":{"challenge_id":"7","node_id":"","actor":"b"},"instance":1,"reset":true,"next":0,"more":false,"counters":[]})",
      R"({"node":{"challenge_id":"7","node_id":"a"},"instance":1,"reset":true,"next":0,"more":false,"counters":[]})",
  };
  // instance, reset, next, more, counters (after a valid node)
  const std::vector<std::string> bad_fields = {
      R"("instance":"1","reset":true,"next":0,"more":false,"counters":[])",
      R"("instance":0,"reset":true,"next":0,"more":false,"counters":[])",
      R"("instance":-1,"reset":true,"next":0,"more":false,"counters":[])",
      R"("instance":1.5,"reset":true,"next":0,"more":false,"counters":[])",
      R"("instance":18446744073709551616,"reset":true,"next":0,"more":false,"counters":[])",
      R"("instance":1,"reset":1,"next":0,"more":false,"counters":[])",
      R"("instance":1,"reset":true,"next":-3,"more":false,"counters":[])",
      R"("instance":1,"reset":true,"next":0,"more":"false","counters":[])",
      R"("instance":1,"reset":true,"next":0,"more":false,"counters":{})",
      R"("instance":1,"reset":true,"next":0,"more":false)",
  };
  for (const std::string& fields : bad_fields) bad.push_back(Envelope(fields));
  for (const std::string& body : bad) {
    Status s = FetchChangesBody(body);
    EXPECT_TRUE(s.IsCorruption()) << body << " -> " << s.ToString();
  }
}

TEST(PeerClientTest, RefusesBadCounterEntriesOneByOne) {
  const std::string long_name(201, 'n');
  const std::string long_actor(300, 'a');
  // Each entry is refused alone, for the reason given; the page still
  // counts (its cursor moves).
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"(1)", "bad_state"},
      {R"({"state":{}})", "bad_name"},
      {R"({"name":"","state":{}})", "bad_name"},
      {R"({"name":"a/b","state":{}})", "bad_name"},
      {R"({"name":"a\u0000b","state":{}})", "bad_name"},
      {R"({"name":")" + long_name + R"(","state":{}})", "bad_name"},
      {R"({"name":5,"state":{}})", "bad_name"},
      {"{\"name\":\"\xff\",\"state\":{}}", "bad_name"},
      {R"({"name":"a"})", "bad_state"},
      {R"({"name":"a","state":[]})", "bad_state"},
      {R"({"name":"a","state":{"x":{"p":"1","n":0}}})", "bad_state"},
      {R"({"name":"a","state":{"x":{"p":-1,"n":0}}})", "bad_state"},
      {R"({"name":"a","state":{"x":{"p":1.0,"n":0}}})", "bad_state"},
      {R"({"name":"a","state":{"x":{"p":18446744073709551616,"n":0}}})",
       "bad_state"},
      {R"({"name":"a","state":{"x":{"p":1}}})", "bad_state"},
      {R"({"name":"a","state":{"x":{"p":1,"n":0,"q":0}}})", "bad_state"},
      {R"({"name":"a","state":{"x":{"p":1,"q":0}}})", "bad_state"},
      {R"({"name":"a","state":{"x":5}})", "bad_state"},
      {R"({"name":"a","state":{"":{"p":1,"n":0}}})", "bad_state"},
      {R"({"name":"a","state":{"x":{"p":1,"n":0},"x":{"p":9,"n":0}}})",
       "bad_state"},
      {R"({"name":"a","state":{")" + long_actor + R"(":{"p":1,"n":0}}})",
       "bad_actor"},
      {R"({"name":"a","state":{"\udc00":{"p":1,"n":0}}})", "bad_actor"},
  };
  for (const auto& [entry, reason] : bad) {
    const std::string counters =
        R"([{"name":"ok","state":{"x":{"p":1,"n":0}}},)" + entry + "]";
    ChangesPage page;
    Status s = FetchChangesFrom(JsonReply(ChangesBody(counters)), &page);
    ASSERT_TRUE(s.ok()) << entry << " -> " << s.ToString();
    EXPECT_EQ(page.next.since, 2u) << entry;
    ASSERT_EQ(page.counters.size(), 1u) << entry;
    EXPECT_EQ(page.counters[0].name, "ok");
    ASSERT_EQ(page.rejected.size(), 1u) << entry;
    EXPECT_EQ(page.rejected[0].reason, reason) << entry;
  }
}

TEST(PeerClientTest, RejectsInconsistentCursors) {
  ChangesPage page;
  // Continuing (no reset) another instance than the one asked about.
  EXPECT_TRUE(FetchChangesFrom(JsonReply(ChangesBody("[]", 43, false, 9)),
                               &page, {42, 5})
                  .IsCorruption());
  // Moving the cursor backwards.
  EXPECT_TRUE(FetchChangesFrom(JsonReply(ChangesBody("[]", 42, false, 4)),
                               &page, {42, 5})
                  .IsCorruption());
  // "more" without progress would loop forever.
  EXPECT_TRUE(FetchChangesFrom(JsonReply(ChangesBody("[]", 42, false, 5, true)),
                               &page, {42, 5})
                  .IsCorruption());
  EXPECT_TRUE(
      FetchChangesFrom(JsonReply(ChangesBody(kTwoCounters, 42, false, 5, true)),
                       &page, {42, 5})
          .IsCorruption());
  // More counters than asked for.
  EXPECT_TRUE(FetchChangesFrom(JsonReply(ChangesBody(kTwoCounters)), &page,
                               ChangesCursor(), /*limit=*/1)
                  .IsCorruption());
  EXPECT_TRUE(page.counters.empty());
  // A reset may move the cursor anywhere.
  EXPECT_TRUE(
      FetchChangesFrom(JsonReply(ChangesBody(kTwoCounters, 43, true, 2)), &page,
                       {42, 50})
          .ok());
  EXPECT_EQ(page.next.instance, 43u);
}

TEST(PeerClientTest, RejectsDeeplyNestedJsonWithoutCrashing) {
  const std::string deep(200000, '[');
  EXPECT_TRUE(FetchChangesBody(deep).IsCorruption());
  EXPECT_TRUE(FetchChangesBody(deep + std::string(200000, ']')).IsCorruption());
  std::string nested_state = "{\"x\":";
  for (int i = 0; i < 100000; ++i) nested_state += "{\"p\":";
  EXPECT_TRUE(FetchChangesBody(ChangesBody("[{\"name\":\"a\",\"state\":" +
                                           nested_state + "}]"))
                  .IsCorruption());
}

TEST(PeerClientTest, RejectsRepliesLargerThanTheCap) {
  PeerClientOptions options = FastOptions();
  options.timeout_ms = 5000;
  options.max_reply_bytes = 1 << 20;
  ChangesPage page;
  // With a Content-Length...
  FakeReply reply;
  reply.raw = "HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n";
  reply.filler_bytes = 100 << 20;
  Status s = FetchChangesFrom(reply, &page, ChangesCursor(), 100, options);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  // ... and without one, until the connection closes.
  reply.raw = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
  reply.close = true;
  s = FetchChangesFrom(reply, &page, ChangesCursor(), 100, options);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  // A valid reply just under the cap is fine.
  std::string counters = "[";
  for (int i = 0; i < 5000; ++i) {
    if (i > 0) counters += ",";
    counters += R"({"name":"n)" + std::to_string(i) +
                R"(","state":{"x":{"p":1,"n":0}}})";
  }
  counters += "]";
  ASSERT_LT(ChangesBody(counters).size(), options.max_reply_bytes);
  s = FetchChangesFrom(JsonReply(ChangesBody(counters)), &page, ChangesCursor(),
                       5000, options);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(page.counters.size(), 5000u);
}

TEST(PeerClientTest, RefusesAnAnnouncedOversizedReplyBeforeItsBody) {
  // The default cap is about two pages, far below the 64 MB it once was.
  EXPECT_LE(PeerClientOptions().max_reply_bytes, 4u << 20);
  PeerClientOptions options = FastOptions();
  options.timeout_ms = 5000;  // only the announced size ends this early
  FakeReply reply;
  reply.raw = "HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n";
  reply.hang = true;  // the body never comes
  ChangesPage page;
  Status s = FetchChangesFrom(reply, &page, ChangesCursor(), 100, options);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST(PeerClientTest, GivesUpOnAPeerThatNeverAnswers) {
  FakeReply silent;
  silent.hang = true;
  ChangesPage page;
  EXPECT_TRUE(FetchChangesFrom(silent, &page).IsUnavailable());

  FakeReply headers_only;
  headers_only.raw = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"no";
  headers_only.hang = true;
  EXPECT_TRUE(FetchChangesFrom(headers_only, &page).IsUnavailable());
  EXPECT_TRUE(page.counters.empty());
}

TEST(PeerClientTest, AbortFlagEndsAWaitEarly) {
  FakeReply silent;
  silent.hang = true;
  auto peer = Serving(silent);
  std::atomic<bool> abort{false};
  PeerClientOptions options = FastOptions();
  options.timeout_ms = 600000;  // only the abort can end it
  options.abort = &abort;
  PeerClient client(peer->Address(), options);
  // Aborts once the request reached the peer: the client is then waiting.
  std::thread aborter([&abort, &peer] {
    test::WaitUntil([&peer] { return peer->requests() >= 1; });
    abort = true;
  });
  ChangesPage page;
  Status s = client.FetchChanges(ChangesCursor(), 10, &page);
  aborter.join();
  EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
}

TEST(PeerClientTest, ReportsRefusedConnectionsAsUnavailable) {
  const uint16_t port = test::FreePort();  // nothing listens there
  PeerClient client("127.0.0.1:" + std::to_string(port), FastOptions());
  ChangesPage page;
  EXPECT_TRUE(client.FetchChanges(ChangesCursor(), 10, &page).IsUnavailable());
  PeerIdentity node;
  PnCounter state;
  EXPECT_TRUE(client.FetchCounter("a", &node, &state).IsUnavailable());
}

TEST(PeerClientTest, MapsHttpErrors) {
  ChangesPage page;
  FakeReply reply;
  reply.raw = HttpReply(503, R"({"message":"busy","type":"Unavailable"})");
  EXPECT_TRUE(FetchChangesFrom(reply, &page).IsUnavailable());
  reply.raw = HttpReply(404, R"({"message":"no","type":"NotFound"})");
  EXPECT_TRUE(FetchChangesFrom(reply, &page).IsCorruption());
  reply.raw =
      "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\n"
      "Content-Length: 0\r\n\r\n";
  EXPECT_TRUE(FetchChangesFrom(reply, &page).IsCorruption());
}

TEST(PeerClientTest, RejectsRepliesThatAreNotHttp) {
  for (const std::string& raw : std::vector<std::string>{
           "garbage\r\n\r\n", "SSH-2.0-OpenSSH_9.2\r\n", "\x16\x03\x01\x02",
           "HTTP/1.1 abc\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n"}) {
    FakeReply reply;
    reply.raw = raw;
    reply.close = true;
    ChangesPage page;
    Status s = FetchChangesFrom(reply, &page);
    EXPECT_FALSE(s.ok()) << raw;
    EXPECT_TRUE(page.counters.empty());
  }
}

TEST(PeerClientTest, ChecksTheCrcHeaderWhenPresent) {
  const std::string body = ChangesBody(kTwoCounters);
  ChangesPage page;
  FakeReply reply;
  reply.raw = HttpReply(200, body, "X-SFN-CRC32: 12345\r\n");
  EXPECT_TRUE(FetchChangesFrom(reply, &page).IsCorruption());
  reply.raw = HttpReply(200, body, "X-SFN-CRC32: banana\r\n");
  EXPECT_TRUE(FetchChangesFrom(reply, &page).IsCorruption());
  EXPECT_TRUE(page.counters.empty());
}

TEST(PeerClientTest, FetchesOneCounter) {
  std::string seen;
  std::mutex mu;
  FakePeer peer([&](const std::string& target) {
    std::lock_guard<std::mutex> lock(mu);
    seen = target;
    return JsonReply(Envelope(R"("name":"a b/c","state":{"x":{"p":3,"n":1}})"));
  });
  ASSERT_TRUE(peer.Start());
  PeerClient client(peer.Address(), FastOptions());
  PeerIdentity node;
  PnCounter state;
  // A '/' is not a valid name, so the reply's name cannot match either.
  EXPECT_TRUE(client.FetchCounter("a b/c", &node, &state).IsCorruption());
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(seen, "/internal/counter/a%20b%2Fc");
  }
}

TEST(PeerClientTest, CounterRepliesMustNameTheCounterAskedFor) {
  FakePeer peer([](const std::string& target) {
    const std::string name =
        target == "/internal/counter/mine" ? "mine" : "other";
    return JsonReply(
        Envelope(R"("name":")" + name + R"(","state":{"x":{"p":3,"n":1}})"));
  });
  ASSERT_TRUE(peer.Start());
  PeerClient client(peer.Address(), FastOptions());
  PeerIdentity node;
  PnCounter state;
  ASSERT_TRUE(client.FetchCounter("mine", &node, &state).ok());
  EXPECT_EQ(state.DebugString(), "{x:+3-1}");
  EXPECT_EQ(node.node_id, "0000abcd");
  EXPECT_TRUE(client.FetchCounter("yours", &node, &state).IsCorruption());
  EXPECT_EQ(state.DebugString(), "{x:+3-1}");  // untouched
}

// A transport that answers every request with one reply (or failure) and
// records what was asked.
class CannedTransport : public PeerTransport {
 public:
  Status status;
  PeerReply reply;
  std::vector<std::string> asked;  // "address target"

  Status Get(const std::string& address, const std::string& target,
             int /*timeout_ms*/, size_t /*max_reply_bytes*/,
             PeerReply* out) override {
    asked.push_back(address + " " + target);
    if (!status.ok()) return status;
    *out = reply;
    return Status::OK();
  }
};

TEST(PeerClientTest, ATransportCarriesTheRequestsAndTheSameChecksRun) {
  CannedTransport transport;
  PeerClientOptions options = FastOptions();
  options.transport = &transport;
  PeerClient client("peer:7777", options);
  ChangesPage page;
  transport.reply = PeerReply{200, ChangesBody(kTwoCounters)};
  ASSERT_TRUE(client.FetchChanges(ChangesCursor(), 100, &page).ok());
  EXPECT_EQ(page.counters.size(), 2u);
  ASSERT_EQ(transport.asked.size(), 1u);
  EXPECT_EQ(
      transport.asked[0],
      "peer:7777 " + ChangesTarget(ChangesCursor(), 100, options.page_bytes));
  EXPECT_EQ(client.bytes_received(), transport.reply.body.size());

  transport.reply = PeerReply{503, "{}"};
  EXPECT_TRUE(client.FetchChanges(ChangesCursor(), 100, &page).IsUnavailable());
  transport.reply = PeerReply{404, "{}"};
  EXPECT_TRUE(client.FetchChanges(ChangesCursor(), 100, &page).IsCorruption());
  transport.reply = PeerReply{200, "not json"};
  EXPECT_TRUE(client.FetchChanges(ChangesCursor(), 100, &page).IsCorruption());
  transport.reply =
      PeerReply{200, std::string(options.max_reply_bytes + 1, ' ')};
  EXPECT_TRUE(client.FetchChanges(ChangesCursor(), 100, &page).IsCorruption());
  transport.status = Status::Unavailable("peer:7777: timed out");
  EXPECT_TRUE(client.FetchChanges(ChangesCursor(), 100, &page).IsUnavailable());
}

TEST(CounterFanoutTest, ATransportIsAskedForEveryPeerInTurn) {
  CannedTransport transport;
  transport.reply =
      PeerReply{200, Envelope(R"("name":"a","state":{"x":{"p":3,"n":1}})")};
  PeerClientOptions options = FastOptions();
  options.transport = &transport;
  CounterFanout fanout(options);
  std::vector<CounterFanout::Result> results;
  fanout.FetchCounter({"p1:7777", "p2:7777"}, "a", &results);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.state.ValueString(), "2");
  }
  EXPECT_EQ(transport.asked.size(), 2u);
}

TEST(CounterFanoutTest, AsksEveryPeerAtOnceAndReportsEach) {
  auto good = std::make_unique<FakePeer>([](const std::string&) {
    return JsonReply(Envelope(R"("name":"c","state":{"x":{"p":3,"n":1}})"));
  });
  ASSERT_TRUE(good->Start());
  FakeReply silent;
  silent.hang = true;
  auto hung = Serving(silent);
  auto garbage = Serving(JsonReply("{\"node\":[]}"));
  const std::string dead = "127.0.0.1:" + std::to_string(test::FreePort());

  CounterFanout fanout(FastOptions());
  std::vector<CounterFanout::Result> results;
  const std::vector<std::string> peers = {hung->Address(), good->Address(),
                                          garbage->Address(), dead};
  for (int round = 0; round < 3; ++round) {
    fanout.FetchCounter(peers, "c", &results);
    ASSERT_EQ(results.size(), 4u);
    EXPECT_EQ(results[0].address, hung->Address());
    EXPECT_TRUE(results[0].status.IsUnavailable())
        << results[0].status.ToString();
    EXPECT_TRUE(results[1].status.ok()) << results[1].status.ToString();
    EXPECT_EQ(results[1].state.DebugString(), "{x:+3-1}");
    EXPECT_TRUE(results[2].status.IsCorruption())
        << results[2].status.ToString();
    EXPECT_TRUE(results[3].status.IsUnavailable())
        << results[3].status.ToString();
  }
  // The good peer's connection is kept between calls.
  EXPECT_EQ(good->requests(), 3);
  EXPECT_EQ(good->connections(), 1);

  fanout.FetchCounter({}, "c", &results);
  EXPECT_TRUE(results.empty());
}

}  // namespace
}  // namespace dist_counter
