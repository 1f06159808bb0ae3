// Tests of HttpServer (src/api/http_server.h): a real Pistache server on an
// ephemeral loopback port over a real Api and CounterStore, driven by curl
// and by raw sockets.

#include "api/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/cluster_view.h"
#include "api/routes.h"
#include "store/counter_store.h"
#include "store/fault_file_system.h"
#include "testing/gated_cluster_view.h"
#include "testing/http_client.h"
#include "testing/node_process.h"
#include "testing/wait_until.h"
#include "util/crc32.h"
#include "util/metrics.h"

namespace dist_counter {
namespace {

using test::HttpClient;
using test::HttpClientOptions;
using test::HttpRequest;
using test::HttpResponse;
using Clock = std::chrono::steady_clock;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return s;
}

// A raw TCP connection to 127.0.0.1:port, for what curl will not do.
class RawConnection {
 public:
  // With `receive_buffer` > 0, the socket's receive buffer is that small.
  explicit RawConnection(uint16_t port, int receive_buffer = 0) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (receive_buffer > 0) {
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer,
                 sizeof(receive_buffer));
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    connected_ = fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr*>(&addr),
                                     sizeof(addr)) == 0;
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  ~RawConnection() {
    if (fd_ >= 0) close(fd_);
  }

  bool connected() const { return connected_; }

  // From now on each read of at most 4 KiB is followed by a pause of
  // `pause_us`: a slow reader.
  void set_read_pause_us(int pause_us) { read_pause_us_ = pause_us; }

  // Shuts our write side down: the server reads EOF after what was sent.
  void ShutdownWrite() { shutdown(fd_, SHUT_WR); }

  bool Send(const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n =
          send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads until the peer closes or `timeout_ms` passes. Returns what was
  // read; *closed says whether the peer closed.
  std::string ReadUntilClosed(int timeout_ms, bool* closed) {
    *closed = Fill(timeout_ms, [](const std::string&) { return 0; });
    return Take(pending_.size());
  }

  // Reads one reply's head (through the blank line), or what came before
  // the peer closed or `timeout_ms` passed. Later bytes stay for the next
  // read.
  std::string ReadHead(int timeout_ms) {
    Fill(timeout_ms, &HeadSize);
    const size_t size = HeadSize(pending_);
    return Take(size != 0 ? size : pending_.size());
  }

  // Reads one reply (head and a Content-Length body), as ReadHead() does.
  std::string ReadReply(int timeout_ms) {
    Fill(timeout_ms, &ReplySize);
    const size_t size = ReplySize(pending_);
    return Take(size != 0 ? size : pending_.size());
  }

 private:
  // The size of the head at the start of `data`, or 0 if incomplete.
  static size_t HeadSize(const std::string& data) {
    const size_t end = data.find("\r\n\r\n");
    return end == std::string::npos ? 0 : end + 4;
  }

  // The size of the reply at the start of `data`, or 0 if incomplete.
  static size_t ReplySize(const std::string& data) {
    const size_t head = HeadSize(data);
    if (head == 0) return 0;
    const std::string lower = Lower(data.substr(0, head));
    size_t length = 0;
    const size_t cl = lower.find("content-length:");
    if (cl != std::string::npos) length = std::stoul(lower.substr(cl + 15));
    return data.size() >= head + length ? head + length : 0;
  }

  std::string Take(size_t size) {
    std::string out = pending_.substr(0, size);
    pending_.erase(0, size);
    return out;
  }

  // Reads into pending_ until `complete(pending_)` is non-zero, the peer
  // closes (returns true) or `timeout_ms` passes.
  template <typename Complete>
  bool Fill(int timeout_ms, Complete complete) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (complete(pending_) == 0 && Clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - Clock::now())
                            .count();
      if (poll(&p, 1, static_cast<int>(std::max<int64_t>(left, 1))) <= 0) {
        continue;
      }
      char buf[4096];
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return true;
      pending_.append(buf, static_cast<size_t>(n));
      if (read_pause_us_ > 0) {
        std::this_thread::sleep_for(std::chrono::microseconds(read_pause_us_));
      }
    }
    return false;
  }

  std::string pending_;  // read but not yet returned
  int read_pause_us_ = 0;
  int fd_ = -1;
  bool connected_ = false;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions store_options;
    store_options.data_dir = dir_.Sub("db");
    store_options.challenge_id = "1";
    store_options.flush_interval_ms = 600000;
    store_options.metrics = &metrics_;
    Status s = CounterStore::Open(store_options, &store_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    api_ =
        std::make_unique<Api>(ApiOptions(), store_.get(), nullptr, &metrics_);
    StartServer(LoopbackOptions());
  }

  // Options for a server on an ephemeral port of 127.0.0.1.
  static HttpServerOptions LoopbackOptions() {
    HttpServerOptions options;
    options.bind = "127.0.0.1";
    options.port = 0;
    return options;
  }

  // Stops the server and starts a new one with `options`.
  void StartServer(const HttpServerOptions& options) {
    server_.reset();
    Status s = HttpServer::Start(options, api_.get(), &server_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_NE(server_->port(), 0);
  }

  // Starts a server with `options` over an Api whose GET /counters pages
  // may be megabytes: large replies that are cheap to ask for.
  void StartServerWithLargePages(const HttpServerOptions& options) {
    server_.reset();
    ApiOptions api_options;
    api_options.max_list_bytes = 8 << 20;
    api_ = std::make_unique<Api>(api_options, store_.get(), nullptr, &metrics_);
    StartServer(options);
  }

  // Restarts the server on a new port, giving clients `timeout_ms` to send a
  // request's headers, and as long again for its body.
  void RestartWithTimeouts(int timeout_ms) {
    HttpServerOptions options = LoopbackOptions();
    options.header_timeout_ms = timeout_ms;
    options.body_timeout_ms = timeout_ms;
    options.keepalive_timeout_ms = timeout_ms;
    StartServer(options);
  }

  // Replaces the store with a durable one (increments are answered from
  // its commit thread) and the Api with one that has `cluster` (consistent
  // reads are answered from the Api's threads), and restarts the server
  // with `threads` reactors. The store's disk is faults_.
  void UseDurableStoreAndCluster(ClusterView* cluster, bool durable = true,
                                 int threads = 2) {
    server_.reset();
    api_.reset();
    store_.reset();
    StoreOptions store_options;
    store_options.data_dir = dir_.Sub("durable");
    store_options.challenge_id = "1";
    store_options.flush_interval_ms = 600000;
    store_options.durable = durable;
    store_options.TEST_env = faults_.env();
    Status s = CounterStore::Open(store_options, &store_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    api_ = std::make_unique<Api>(ApiOptions(), store_.get(), cluster, nullptr);
    HttpServerOptions options = LoopbackOptions();
    options.threads = threads;
    StartServer(options);
  }

  // Creates `count` counters named "l<index>" padded to 190 bytes (POST
  // /counters, in batches under the body limit) and returns the body of
  // kListPath's reply, which lists them all: about 193 bytes per counter.
  std::string MakeLongNamedCounters(int count) {
    for (int first = 0; first < count; first += 300) {
      std::string body = "{";
      for (int i = first; i < std::min(count, first + 300); ++i) {
        if (i > first) body += ",";
        std::string name = "l" + std::to_string(100000 + i);
        name.resize(190, 'x');
        body += "\"" + name + "\":1";
      }
      body += "}";
      EXPECT_EQ(HttpRequest("POST", Url("/counters"), body).status, 204);
    }
    const HttpResponse list = HttpRequest("GET", Url(kListPath));
    EXPECT_EQ(list.status, 200);
    EXPECT_GT(list.body.size(), static_cast<size_t>(count) * 190);
    return list.body;
  }
  static constexpr char kListPath[] = "/counters?prefix=l&limit=10000";

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
  }

  test::TempDir dir_;
  Metrics metrics_;
  FaultEnv faults_;  // the durable store's disk; outlives it
  std::unique_ptr<CounterStore> store_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<HttpServer> server_;  // stopped first
};

// Expects the JSON headers every reply carries on `r`.
void ExpectJsonHeaders(const HttpResponse& r) {
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(Lower(r.Header("content-type")).rfind("application/json", 0), 0u)
      << r.Header("content-type") << " for " << r.body;
  ASSERT_FALSE(r.Header("x-sfn-crc32").empty()) << r.body;
  EXPECT_EQ(r.Header("x-sfn-crc32"), std::to_string(Crc32(r.body))) << r.body;
}

// A raw reply split into its parts.
struct RawReply {
  int status = 0;
  std::string head;  // status line and headers, lowercased
  std::string body;
};

RawReply SplitReply(const std::string& raw) {
  RawReply r;
  const size_t end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return r;
  r.status = std::atoi(raw.c_str() + 9);
  r.head = Lower(raw.substr(0, end + 2));
  r.body = raw.substr(end + 4);
  return r;
}

// Expects `raw` to be our JSON error with `status`, Content-Type,
// X-SFN-CRC32 and "Connection: close".
void ExpectJsonError(const std::string& raw, int status) {
  const RawReply r = SplitReply(raw);
  EXPECT_EQ(r.status, status) << raw;
  EXPECT_NE(r.head.find("\r\ncontent-type: application/json\r\n"),
            std::string::npos)
      << raw;
  EXPECT_NE(
      r.head.find("\r\nx-sfn-crc32: " + std::to_string(Crc32(r.body)) + "\r\n"),
      std::string::npos)
      << raw;
  EXPECT_NE(r.head.find("\r\nconnection: close\r\n"), std::string::npos) << raw;
  EXPECT_EQ(r.body.rfind("{\"message\":\"", 0), 0u) << raw;
  EXPECT_NE(r.body.find("\",\"type\":\""), std::string::npos) << raw;
}

TEST_F(HttpServerTest, EveryJsonReplyHasContentTypeAndCrc32) {
  ASSERT_EQ(HttpRequest("POST", Url("/counter/c"), "4").status, 204);
  struct Case {
    const char* method;
    const char* path;
    std::string body;
    long status;
  };
  const std::vector<Case> cases = {
      {"GET", "/ping", "", 200},
      {"POST", "/ping", "", 200},
      {"GET", "/config", "", 200},
      {"GET", "/counter/c/value", "", 200},
      {"GET", "/counter/c/consistent_value", "", 200},
      {"GET", "/counter/c", "", 200},
      {"GET", "/counters", "", 200},
      {"GET", "/internal/counter/c", "", 200},
      {"GET", "/internal/changes", "", 200},
      {"POST", "/counter/c", "abc", 400},
      {"POST", "/config", "[", 400},
      {"GET", "/counter/unknown", "", 404},
      {"GET", "/nope", "", 404},
      {"PUT", "/counter/c", "", 405},
      {"DELETE", "/counter/unknown", "", 404},
      {"POST", "/counter/c", std::string(70 * 1024, '1'), 413},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.method) + " " + c.path);
    HttpResponse r = HttpRequest(c.method, Url(c.path), c.body);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.status, c.status) << r.body;
    EXPECT_FALSE(r.body.empty());
    ExpectJsonHeaders(r);
  }
  HttpResponse r = HttpRequest("GET", Url("/counter/c/value"));
  EXPECT_EQ(r.body, "4");
}

TEST_F(HttpServerTest, NoContentRepliesHaveNoBody) {
  HttpResponse r = HttpRequest("POST", Url("/counter/c"), "1");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.Header("x-sfn-crc32"), std::to_string(Crc32("")));
}

// A keyed POST to `path` with `body`, as raw bytes.
std::string KeyedPost(const std::string& path, const std::string& body,
                      const std::string& key) {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nIdempotency-Key: " + key +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         body;
}

TEST_F(HttpServerTest, AReusedKeyIs422UnprocessableContentOnTheWire) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(KeyedPost("/counter/a", "5", "k")));
  std::string raw = c.ReadReply(10000);
  EXPECT_EQ(raw.rfind("HTTP/1.1 204 No Content\r\n", 0), 0u) << raw;
  EXPECT_EQ(Lower(raw).find("idempotent-replayed"), std::string::npos) << raw;
  ASSERT_TRUE(c.Send(KeyedPost("/counter/a", "5", "k")));
  raw = c.ReadReply(10000);
  EXPECT_EQ(raw.rfind("HTTP/1.1 204 No Content\r\n", 0), 0u) << raw;
  EXPECT_NE(raw.find("\r\nIdempotent-Replayed: true\r\n"), std::string::npos)
      << raw;
  ASSERT_TRUE(c.Send(KeyedPost("/counter/a", "6", "k")));
  raw = c.ReadReply(10000);
  EXPECT_EQ(raw.rfind("HTTP/1.1 422 Unprocessable Content\r\n", 0), 0u) << raw;
  EXPECT_NE(raw.find("IdempotencyKeyReused"), std::string::npos) << raw;
}

// POST /counter/a with "\n5", then POST /counter/a%0A with "5", one key:
// the second is another request (422), not an acknowledged no-op.
TEST_F(HttpServerTest, TheNewlineFingerprintPairIsRefusedOnTheWire) {
  const std::map<std::string, std::string> key = {{"Idempotency-Key", "k"}};
  EXPECT_EQ(HttpRequest("POST", Url("/counter/a"), "\n5", key).status, 204);
  HttpResponse r = HttpRequest("POST", Url("/counter/a%0A"), "5", key);
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(HttpRequest("GET", Url("/counter/a/value")).body, "5");
  EXPECT_EQ(HttpRequest("GET", Url("/counter/a%0A/value")).body, "0");
}

// One reactor, a hung disk: keyed increments, batches and durable resets
// wait for their sync off the reactor, which goes on answering /ping; each
// is answered once the disk is back.
TEST_F(HttpServerTest, WritesWaitingOnTheDiskDoNotHoldTheReactor) {
  UseDurableStoreAndCluster(nullptr, /*durable=*/true, /*threads=*/1);
  ASSERT_EQ(HttpRequest("POST", Url("/counter/r"), "4").status, 204);
  faults_.fs()->SetFault(Fault::kStall);
  std::vector<std::unique_ptr<RawConnection>> writers;
  const std::vector<std::string> requests = {
      KeyedPost("/counter/c", "1", "k1"),
      KeyedPost("/counters", R"({"a":1})", "k2"),
      "POST /counters HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n"
      R"({"b":1})",
      "DELETE /counter/r HTTP/1.1\r\nHost: x\r\n\r\n",
  };
  for (const std::string& request : requests) {
    writers.push_back(std::make_unique<RawConnection>(server_->port()));
    ASSERT_TRUE(writers.back()->connected());
    ASSERT_TRUE(writers.back()->Send(request));
  }
  for (int i = 0; i < 3; ++i) {
    HttpResponse r = HttpRequest("GET", Url("/ping"), "", {}, 10000);
    EXPECT_EQ(r.status, 200) << r.error;
  }
  faults_.fs()->SetFault(Fault::kNone);
  for (auto& writer : writers) {
    const std::string raw = writer->ReadReply(20000);
    EXPECT_EQ(raw.rfind("HTTP/1.1 204 No Content\r\n", 0), 0u) << raw;
  }
  EXPECT_EQ(HttpRequest("GET", Url("/counter/c/value")).body, "1");
  EXPECT_EQ(HttpRequest("GET", Url("/counter/a/value")).body, "1");
  EXPECT_EQ(HttpRequest("GET", Url("/counter/b/value")).body, "1");
  EXPECT_EQ(HttpRequest("GET", Url("/counter/r/value")).body, "0");
}

TEST_F(HttpServerTest, MetricsAreServedAsText) {
  ASSERT_EQ(HttpRequest("GET", Url("/ping")).status, 200);
  HttpResponse r = HttpRequest("GET", Url("/metrics"));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Lower(r.Header("content-type")).rfind("text/plain", 0), 0u)
      << r.Header("content-type");
  EXPECT_NE(r.body.find("dist_counter_http_requests_total{route=\"ping\","
                        "status=\"200\"} 1"),
            std::string::npos)
      << r.body;
}

TEST_F(HttpServerTest, Http11ConnectionsAreKeptAlive) {
  HttpClientOptions options;
  options.reuse_connection = true;
  HttpClient client(options);
  HttpResponse first = client.Request("GET", Url("/ping"));
  ASSERT_TRUE(first.ok()) << first.error;
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.num_connects, 1);
  EXPECT_EQ(Lower(first.Header("connection")), "keep-alive");
  HttpResponse second = client.Request("POST", Url("/counter/k"), "1");
  ASSERT_TRUE(second.ok()) << second.error;
  EXPECT_EQ(second.status, 204);
  EXPECT_EQ(second.num_connects, 0) << "the second request reconnected";
  HttpResponse third = client.Request("GET", Url("/nope"));
  EXPECT_EQ(third.status, 404);
  EXPECT_EQ(third.num_connects, 0) << "an error reply closed the connection";
}

TEST_F(HttpServerTest, ManyRequestsShareOneRawConnection) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        c.Send("POST /counter/raw HTTP/1.1\r\nHost: x\r\n"
               "Content-Length: 1\r\n\r\n1"));
    const std::string reply = c.ReadReply(10000);
    EXPECT_EQ(reply.rfind("HTTP/1.1 204", 0), 0u) << reply;
  }
  EXPECT_EQ(HttpRequest("GET", Url("/counter/raw/value")).body, "3");
}

TEST_F(HttpServerTest, ConnectionCloseIsHonoured) {
  HttpClientOptions options;
  options.reuse_connection = true;
  HttpClient client(options);
  HttpResponse r =
      client.Request("GET", Url("/ping"), "", {{"Connection", "close"}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Lower(r.Header("connection")), "close");
  r = client.Request("GET", Url("/ping"));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.num_connects, 1);

  // The server itself closes the connection after the reply.
  RawConnection c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(
      c.Send("GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  bool closed = false;
  const std::string reply = c.ReadUntilClosed(20000, &closed);
  EXPECT_TRUE(closed) << reply;
  EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply;
  EXPECT_NE(reply.find("{\"status\":\"OK\"}"), std::string::npos) << reply;
}

TEST_F(HttpServerTest, Http10IsAnsweredAndClosedUnlessKeepAliveIsAsked) {
  HttpClientOptions options;
  options.http10 = true;
  HttpClient client(options);
  HttpResponse r = client.Request("POST", Url("/counter/old"), "5");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 204);
  r = client.Request("GET", Url("/counter/old/value"));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "5");
  ExpectJsonHeaders(r);

  RawConnection c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send("GET /ping HTTP/1.0\r\n\r\n"));
  bool closed = false;
  std::string reply = c.ReadUntilClosed(20000, &closed);
  EXPECT_TRUE(closed) << reply;
  EXPECT_NE(reply.find(" 200 "), std::string::npos) << reply;
  EXPECT_NE(reply.find("{\"status\":\"OK\"}"), std::string::npos) << reply;

  RawConnection k(server_->port());
  ASSERT_TRUE(k.connected());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(k.Send("GET /ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    reply = k.ReadReply(10000);
    EXPECT_NE(reply.find(" 200 "), std::string::npos) << i << ": " << reply;
    EXPECT_NE(Lower(reply).find("connection: keep-alive"), std::string::npos)
        << reply;
  }
}

TEST_F(HttpServerTest, HeadRepliesHaveNoBody) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send("HEAD /ping HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string head = c.ReadHead(10000);
  EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  // On the same connection, the next reply comes right after the head.
  ASSERT_TRUE(c.Send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string reply = c.ReadReply(10000);
  EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply;
  EXPECT_NE(reply.find("\r\n\r\n{\"status\":\"OK\"}"), std::string::npos)
      << reply;
}

TEST_F(HttpServerTest, AOneMebibyteBodyGets413AndTheServerGoesOn) {
  const std::string big(1 << 20, '7');
  HttpResponse r = HttpRequest("POST", Url("/counter/big"), big);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 413);
  ExpectJsonHeaders(r);
  EXPECT_NE(r.body.find("\"type\":\"PayloadTooLarge\""), std::string::npos)
      << r.body;
  r = HttpRequest("POST", Url("/counters"), "{\"a\":\"" + big + "\"}");
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(HttpRequest("GET", Url("/ping")).status, 200);
  EXPECT_EQ(HttpRequest("POST", Url("/counter/big"), "1").status, 204);
  EXPECT_EQ(HttpRequest("GET", Url("/counter/big/value")).body, "1");
}

TEST_F(HttpServerTest, HugeBodiesGet413WithoutBeingReadAndTheServerGoesOn) {
  const std::string huge(5 << 20, '7');
  HttpResponse r = HttpRequest("POST", Url("/counter/huge"), huge);
  // curl may see the reply, or fail sending the rest of the body once the
  // server closed; either way no success.
  EXPECT_NE(r.status, 204) << r.body;
  // Announced but not sent: the 413 comes at once.
  RawConnection c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(
      c.Send("POST /counter/huge HTTP/1.1\r\nContent-Length: 5242880\r\n\r\n"
             "77"));
  bool closed = false;
  const std::string reply = c.ReadUntilClosed(20000, &closed);
  EXPECT_TRUE(closed);
  ExpectJsonError(reply, 413);
  EXPECT_NE(reply.find("\"type\":\"PayloadTooLarge\""), std::string::npos);
  EXPECT_EQ(HttpRequest("GET", Url("/ping")).status, 200);
  EXPECT_EQ(HttpRequest("GET", Url("/counter/huge/value")).body, "0");
}

TEST_F(HttpServerTest, ConcurrentIncrementsSumExactly) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HttpClientOptions options;
      options.reuse_connection = (t % 2 == 0);  // half reuse, half reconnect
      HttpClient client(options);
      for (int i = 0; i < kPerThread; ++i) {
        const std::string delta = (i % 4 == 3) ? "-1" : "+2";
        HttpResponse r = client.Request("POST", Url("/counter/hot"), delta);
        if (r.status != 204) failures.fetch_add(1);
        r = client.Request("POST", Url("/counter/t" + std::to_string(t)), "1");
        if (r.status != 204) failures.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  // Per thread: 150 x +2 and 50 x -1.
  EXPECT_EQ(HttpRequest("GET", Url("/counter/hot/value")).body,
            std::to_string(kThreads * (150 * 2 - 50)));
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(
        HttpRequest("GET", Url("/counter/t" + std::to_string(t) + "/value"))
            .body,
        std::to_string(kPerThread));
  }
}

TEST_F(HttpServerTest, IdleAndHalfSentRequestsDoNotBlockOthers) {
  HttpServerOptions options = LoopbackOptions();
  options.threads = 1;
  StartServer(options);

  std::vector<std::unique_ptr<RawConnection>> stalled;
  for (int i = 0; i < 4; ++i) {
    stalled.push_back(std::make_unique<RawConnection>(server_->port()));
    ASSERT_TRUE(stalled.back()->connected());
  }
  // Nothing on stalled[0]; half a request line, half the headers, and half
  // a body on the others.
  ASSERT_TRUE(stalled[1]->Send("POST /counter/sl"));
  ASSERT_TRUE(stalled[2]->Send("POST /counter/slow HTTP/1.1\r\nHost: x\r\n"));
  ASSERT_TRUE(
      stalled[3]->Send("POST /counter/slow HTTP/1.1\r\nHost: x\r\n"
                       "Content-Length: 10\r\n\r\n12"));
  HttpClientOptions client_options;
  client_options.timeout_ms = 20000;
  for (int i = 0; i < 20; ++i) {
    HttpClient client(client_options);
    HttpResponse r = client.Request("POST", Url("/counter/fast"), "1");
    ASSERT_TRUE(r.ok()) << i << ": " << r.error;
    ASSERT_EQ(r.status, 204) << i;
  }
  EXPECT_EQ(HttpRequest("GET", Url("/counter/fast/value")).body, "20");
  EXPECT_EQ(HttpRequest("GET", Url("/counter/slow/value")).body, "0");
}

TEST_F(HttpServerTest, SlowClientsAreTimedOut) {
  RestartWithTimeouts(/*timeout_ms=*/200);

  RawConnection headers(server_->port());
  ASSERT_TRUE(headers.connected());
  ASSERT_TRUE(headers.Send("GET /ping HTTP/1.1\r\nHost: x\r\n"));
  RawConnection body(server_->port());
  ASSERT_TRUE(body.connected());
  ASSERT_TRUE(
      body.Send("POST /counter/slow HTTP/1.1\r\nHost: x\r\n"
                "Content-Length: 10\r\n\r\n12"));
  for (RawConnection* c : {&headers, &body}) {
    bool closed = false;
    const std::string reply = c->ReadUntilClosed(30000, &closed);
    EXPECT_TRUE(closed) << "a slow client kept its connection: " << reply;
    ExpectJsonError(reply, 408);
    EXPECT_NE(reply.find("\"type\":\"RequestTimeout\""), std::string::npos)
        << reply;
  }
  // Idle keep-alive connections (and new ones that send nothing) close
  // without a reply.
  RawConnection idle(server_->port());
  ASSERT_TRUE(idle.connected());
  bool closed = false;
  EXPECT_EQ(idle.ReadUntilClosed(30000, &closed), "");
  EXPECT_TRUE(closed);
  RawConnection kept(server_->port());
  ASSERT_TRUE(kept.connected());
  ASSERT_TRUE(kept.Send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(SplitReply(kept.ReadReply(20000)).status, 200);
  EXPECT_EQ(kept.ReadUntilClosed(30000, &closed), "");
  EXPECT_TRUE(closed);
  EXPECT_EQ(HttpRequest("GET", Url("/ping")).status, 200);
  EXPECT_EQ(HttpRequest("GET", Url("/counter/slow/value")).body, "0");
}

// What the parser refuses gets our JSON error with the status that says
// why, then the connection closes; nothing reaches the Api.
TEST_F(HttpServerTest, MalformedRequestsGetJsonErrorsAndTheServerGoesOn) {
  RestartWithTimeouts(/*timeout_ms=*/200);
  struct Case {
    std::string request;
    int status;
  };
  const std::vector<Case> bad = {
      {"GARBAGE\r\n\r\n", 400},
      {"\x16\x03\x01\x00\xa5\x01\x00\x00", 400},  // a TLS hello
      {"FOO /ping HTTP/1.1\r\nHost: x\r\n\r\n", 501},
      {"GET /ping HTTP/9.9\r\nHost: x\r\n\r\n", 505},
      {"GET /ping\r\n\r\n", 400},
      {"POST /counter/x HTTP/1.1\r\nContent-Length: abc\r\n\r\n1", 400},
      {"POST /counter/x HTTP/1.1\r\nContent-Length: -5\r\n\r\n1", 400},
      {"POST /counter/x HTTP/1.1\r\nContent-Length: 99999999999999999999"
       "\r\n\r\n1",
       400},
      {"POST /counter/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
       "zz\r\n1\r\n0\r\n\r\n",
       411},
      {"POST /counter/x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n1", 411},
      {"POST /counter/x HTTP/1.1\r\nContent-Length: 1\r\n"
       "Transfer-Encoding: chunked\r\n\r\n1\r\n1\r\n0\r\n\r\n",
       400},
      {"GET /ping HTTP/1.1\r\nNoColonHere\r\n\r\n", 400},
      {std::string("GET /pi\0ng HTTP/1.1\r\n\r\n", 24), 400},
      {"POST /counter/x HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') +
           "\r\nContent-Length: 1\r\n\r\n1",
       431},
      // An incomplete request line waits for the header timeout.
      {"POST /counter/x HT", 408},
  };
  for (const Case& c : bad) {
    SCOPED_TRACE(c.request.substr(0, 60));
    RawConnection conn(server_->port());
    ASSERT_TRUE(conn.connected());
    ASSERT_TRUE(conn.Send(c.request));
    bool closed = false;
    const std::string reply = conn.ReadUntilClosed(20000, &closed);
    EXPECT_TRUE(closed);
    ExpectJsonError(reply, c.status);
    HttpResponse r = HttpRequest("GET", Url("/ping"));
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.status, 200);
  }
  EXPECT_EQ(HttpRequest("GET", Url("/counter/x/value")).body, "0");
}

TEST_F(HttpServerTest, PathsAndQueriesAreDecodedOnce) {
  // "%25" is a literal '%': decoding twice would reject or alter the name.
  HttpResponse r = HttpRequest("POST", Url("/counter/100%2525"), "1");
  EXPECT_EQ(r.status, 204) << r.body;
  PnCounter state;
  EXPECT_TRUE(store_->Get("100%25", &state).ok());
  r = HttpRequest("POST", Url("/counter/%E2%9C%93%20ok"), "2");
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_TRUE(store_->Get("\xe2\x9c\x93 ok", &state).ok());
  EXPECT_EQ(HttpRequest("GET", Url("/counter/%E2%9C%93%20ok/value")).body, "2");
  EXPECT_EQ(HttpRequest("POST", Url("/counter/a%2Fb"), "1").status, 400);

  r = HttpRequest("GET", Url("/counters?prefix=100%2525"));
  EXPECT_EQ(r.body, "{\"counters\":[\"100%25\"],\"next_start_after\":null}");
  r = HttpRequest("GET", Url("/counters?prefix=%E2%9C%93+o&limit=5"));
  EXPECT_EQ(r.body,
            "{\"counters\":[\"\xe2\x9c\x93 ok\"],\"next_start_after\":null}");
}

TEST_F(HttpServerTest, ShutdownStopsServingAndIsIdempotent) {
  const std::string url = Url("/ping");
  ASSERT_EQ(HttpRequest("GET", url).status, 200);
  server_->Shutdown();
  server_->Shutdown();
  HttpResponse r = HttpRequest("GET", url, "", {}, 5000);
  EXPECT_FALSE(r.ok()) << r.status << " " << r.body;
}

TEST_F(HttpServerTest, StartFailsOnAPortInUse) {
  HttpServerOptions options = LoopbackOptions();
  options.port = server_->port();
  std::unique_ptr<HttpServer> second;
  Status s = HttpServer::Start(options, api_.get(), &second);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_EQ(second, nullptr);
  EXPECT_EQ(HttpRequest("GET", Url("/ping")).status, 200);
}

TEST_F(HttpServerTest, StartRejectsBadOptions) {
  HttpServerOptions options = LoopbackOptions();
  options.threads = 0;
  std::unique_ptr<HttpServer> server;
  EXPECT_TRUE(
      HttpServer::Start(options, api_.get(), &server).IsInvalidArgument());
  options.threads = 1;
  options.max_connections = 0;
  EXPECT_TRUE(
      HttpServer::Start(options, api_.get(), &server).IsInvalidArgument());
  options.max_connections = 10;
  options.bind = "not an address";
  Status s = HttpServer::Start(options, api_.get(), &server);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(server, nullptr);
}

TEST_F(HttpServerTest, ConnectionsBeyondTheLimitGetA503AndAreClosed) {
  HttpServerOptions options = LoopbackOptions();
  options.max_connections = 2;
  options.metrics = &metrics_;
  StartServer(options);

  std::vector<std::unique_ptr<RawConnection>> open;
  for (int i = 0; i < 2; ++i) {
    open.push_back(std::make_unique<RawConnection>(server_->port()));
    ASSERT_TRUE(open.back()->connected());
    ASSERT_TRUE(open.back()->Send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(open.back()->ReadReply(5000).rfind("HTTP/1.1 200", 0), 0u);
  }
  RawConnection extra(server_->port());
  ASSERT_TRUE(extra.connected());
  bool closed = false;
  const std::string reply = extra.ReadUntilClosed(5000, &closed);
  EXPECT_TRUE(closed) << reply;
  EXPECT_EQ(reply.rfind("HTTP/1.1 503", 0), 0u) << reply;
  const std::string body =
      "{\"message\":\"too many connections\",\"type\":\"Unavailable\"}";
  EXPECT_NE(reply.find("\r\n\r\n" + body), std::string::npos) << reply;
  EXPECT_NE(reply.find("X-SFN-CRC32: " + std::to_string(Crc32(body))),
            std::string::npos)
      << reply;
  EXPECT_NE(
      metrics_.Render().find("dist_counter_http_connections_refused_total 1\n"),
      std::string::npos)
      << metrics_.Render();
  // The connections kept still work, and a slot freed is taken again.
  ASSERT_TRUE(open[0]->Send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(open[0]->ReadReply(5000).rfind("HTTP/1.1 200", 0), 0u);
  open.pop_back();
  EXPECT_TRUE(test::WaitUntil(
      [&] { return HttpRequest("GET", Url("/ping")).status == 200; }));
}

TEST_F(HttpServerTest, AfterStopAcceptingNewRequestsGet503ShuttingDown) {
  HttpClientOptions options;
  options.reuse_connection = true;
  HttpClient kept(options);
  ASSERT_EQ(kept.Request("GET", Url("/ping")).status, 200);

  server_->StopAccepting();
  const std::string body =
      "{\"message\":\"shutting down\",\"type\":\"Unavailable\"}";
  // On a new connection, and on one kept alive from before.
  HttpResponse fresh = HttpRequest("GET", Url("/ping"));
  EXPECT_EQ(fresh.status, 503) << fresh.error;
  EXPECT_EQ(fresh.body, body);
  ExpectJsonHeaders(fresh);
  HttpResponse again = kept.Request("POST", Url("/counter/late"), "1");
  EXPECT_EQ(again.status, 503) << again.error;
  EXPECT_EQ(again.body, body);
  ExpectJsonHeaders(again);
  EXPECT_EQ(Lower(again.Header("connection")), "close");
  PnCounter state;
  EXPECT_TRUE(store_->Get("late", &state).IsNotFound());
  server_->Shutdown();
}

TEST_F(HttpServerTest, RepliesOwedWhenAcceptingStopsAreStillSent) {
  test::GatedClusterView cluster;
  server_.reset();
  api_ = std::make_unique<Api>(ApiOptions(), store_.get(), &cluster, &metrics_);
  StartServer(LoopbackOptions());
  ASSERT_EQ(HttpRequest("POST", Url("/counter/c"), "3").status, 204);

  HttpResponse owed;
  std::thread reader(
      [&] { owed = HttpRequest("GET", Url("/counter/c/consistent_value")); });
  cluster.WaitForWaiters(1);
  server_->StopAccepting();
  EXPECT_EQ(HttpRequest("GET", Url("/ping")).status, 503);
  cluster.Open();
  reader.join();
  EXPECT_EQ(owed.status, 200) << owed.error;
  EXPECT_EQ(owed.body, "3");
  server_->Shutdown();
  api_.reset();  // before `cluster` goes away
}

// What the replies to a pipelined sequence must be, in order.
struct Expected {
  int status;
  std::string body;   // checked when not "*"
  bool head = false;  // a reply to HEAD: its Content-Length has no body
};

// Reads one reply per entry of `expected` from `c` and checks them in order.
void ExpectReplies(RawConnection* c, const std::vector<Expected>& expected) {
  for (size_t i = 0; i < expected.size(); ++i) {
    const std::string raw =
        expected[i].head ? c->ReadHead(20000) : c->ReadReply(20000);
    const RawReply r = SplitReply(raw);
    ASSERT_EQ(r.status, expected[i].status) << "reply " << i << ": " << raw;
    if (expected[i].body != "*") {
      EXPECT_EQ(r.body, expected[i].body) << "reply " << i;
    }
  }
}

std::string Post(const std::string& path, const std::string& body,
                 const std::string& extra = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string Get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n";
}

// Appends `rounds` rounds of GET `list_path` (answered `list`), an
// increment of counter z and a read of it to *batch, and their replies to
// *expected (z starts at 0).
void AppendListRounds(const std::string& list_path, const std::string& list,
                      int rounds, std::string* batch,
                      std::vector<Expected>* expected) {
  for (int i = 1; i <= rounds; ++i) {
    *batch +=
        Get(list_path) + Post("/counter/z", "1") + Get("/counter/z/value");
    expected->push_back({200, list});
    expected->push_back({204, ""});
    expected->push_back({200, std::to_string(i)});
  }
}

TEST_F(HttpServerTest, PipelinedRequestsAreAllAnsweredInOrder) {
  test::GatedClusterView cluster;
  UseDurableStoreAndCluster(&cluster);
  const std::string ping = "{\"status\":\"OK\"}";
  // 16 requests in one write: increments, reads, a durable increment
  // (answered from the commit thread), a consistent read held at the
  // gate (answered from the Api's thread after everything behind it is
  // ready), a 404, and last a 413 that ends the connection.
  std::string batch;
  batch += Post("/counter/p", "1");                   // 1
  batch += Get("/counter/p/value");                   // 2
  batch += Post("/counter/d", "5");                   // 3 durable
  batch += Get("/counter/p/consistent_value");        // 4 gated
  batch += Post("/counter/q", "2");                   // 5
  batch += Get("/counter/q/value");                   // 6
  batch += Get("/nope");                              // 7
  batch += "HEAD /ping HTTP/1.1\r\nHost: x\r\n\r\n";  // 8
  batch += Post("/counter/q", "3");                   // 9
  batch += Get("/counter/q/value");                   // 10
  batch += Get("/ping");                              // 11
  batch += Post("/counter/d", "1");                   // 12 durable
  batch += Post("/counter/q", "x");                   // 13 bad delta
  batch += Get("/counter/q/value");                   // 14
  batch += Get("/counter/missing");                   // 15
  batch += "POST /counter/q HTTP/1.1\r\nContent-Length: 70000\r\n\r\n" +
           std::string(70000, '1');  // 16 too large
  RawConnection c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(batch));
  cluster.WaitForWaiters(1);
  // Before the gate opens only the replies before the held read come. (A
  // read may run before a durable increment ahead of it is synced, so
  // reads of incremented counters are checked by status only.)
  ExpectReplies(&c, {{204, ""}, {200, "*"}, {204, ""}});
  EXPECT_EQ(c.ReadReply(300), "") << "a reply overtook the held read";
  cluster.Open();
  ExpectReplies(&c, {{200, "1"},
                     {204, ""},
                     {200, "*"},
                     {404, "*"},
                     {200, "", /*head=*/true},
                     {204, ""},
                     {200, "*"},
                     {200, ping},
                     {204, ""},
                     {400, "*"},
                     {200, "*"},
                     {404, "*"}});
  bool closed = false;
  const std::string last = c.ReadUntilClosed(20000, &closed);
  EXPECT_TRUE(closed);
  ExpectJsonError(last, 413);
  EXPECT_EQ(HttpRequest("GET", Url("/counter/d/value")).body, "6");
  EXPECT_EQ(HttpRequest("GET", Url("/counter/q/value")).body, "5");
  server_.reset();
  api_.reset();  // before `cluster` goes away
}

TEST_F(HttpServerTest, APipelinedSequenceSplitAnywhereIsAnsweredInOrder) {
  const std::string sequence = Post("/counter/split", "+2") +
                               Get("/counter/split/value") + Get("/ping") +
                               Post("/counter/split", "-1");
  for (size_t at = 1; at < sequence.size(); ++at) {
    SCOPED_TRACE(at);
    RawConnection c(server_->port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.Send(sequence.substr(0, at)));
    // Give the server a chance to read the first part on its own.
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    ASSERT_TRUE(c.Send(sequence.substr(at)));
    const int before = static_cast<int>(at - 1);  // net +1 per round
    ExpectReplies(&c, {{204, ""},
                       {200, std::to_string(before + 2)},
                       {200, "{\"status\":\"OK\"}"},
                       {204, ""}});
  }
  EXPECT_EQ(HttpRequest("GET", Url("/counter/split/value")).body,
            std::to_string(sequence.size() - 1));
}

TEST_F(HttpServerTest, ManyMorePipelinedRequestsThanInFlightAreAllAnswered) {
  test::GatedClusterView cluster;
  UseDurableStoreAndCluster(&cluster, /*durable=*/false);
  // A held read first: the 199 behind it wait, in bounded numbers, until
  // it is answered; then every one is answered in order.
  std::string batch = Get("/counter/m/consistent_value");
  for (int i = 0; i < 199; ++i) batch += Post("/counter/m", "1");
  batch += Get("/counter/m/value");
  RawConnection c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(batch));
  cluster.WaitForWaiters(1);
  EXPECT_EQ(c.ReadReply(300), "");
  cluster.Open();
  std::vector<Expected> expected = {{200, "*"}};
  for (int i = 0; i < 199; ++i) expected.push_back({204, ""});
  expected.push_back({200, "199"});
  ExpectReplies(&c, expected);
  server_.reset();
  api_.reset();  // before `cluster` goes away
}

TEST_F(HttpServerTest, RepliesTheSocketCannotTakeAtOnceStillComeInOrder) {
  StartServerWithLargePages(LoopbackOptions());
  // 2000 counters with long names: each list reply is about 100 KB, and 40
  // of them, unread by a client with a small receive buffer, fill the
  // socket's buffers many times over.
  for (int batch = 0; batch < 2; ++batch) {
    std::string body = "{";
    for (int i = 0; i < 1000; ++i) {
      if (i > 0) body += ",";
      body += "\"" + std::string(36, 'n') + std::to_string(batch * 1000 + i) +
              "\":1";
    }
    body += "}";
    ASSERT_EQ(HttpRequest("POST", Url("/counters"), body).status, 204);
  }
  const std::string list =
      HttpRequest("GET", Url("/counters?prefix=n&limit=5000")).body;
  ASSERT_GT(list.size(), 80000u);
  std::string batch;
  std::vector<Expected> expected;
  AppendListRounds("/counters?prefix=n&limit=5000", list, 40, &batch,
                   &expected);
  RawConnection c(server_->port(), /*receive_buffer=*/4096);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(batch));
  // Let the server fill the socket before anything is read.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ExpectReplies(&c, expected);
}

TEST_F(HttpServerTest, ExpectContinueGets100ContinueBeforeTheBody) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(
      c.Send("POST /counter/ec HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
             "Content-Length: 1\r\n\r\n"));
  EXPECT_EQ(c.ReadHead(20000), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(c.Send("7"));
  ExpectReplies(&c, {{204, ""}});
  EXPECT_EQ(HttpRequest("GET", Url("/counter/ec/value")).body, "7");
}

TEST_F(HttpServerTest, ConnectionCloseInAPipelineEndsItAfterItsReply) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(Post("/counter/cc", "1") +
                     Post("/counter/cc", "1", "Connection: close\r\n") +
                     Post("/counter/cc", "1")));
  ExpectReplies(&c, {{204, ""}});
  bool closed = false;
  const std::string last = c.ReadUntilClosed(20000, &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(SplitReply(last).status, 204) << last;
  EXPECT_NE(SplitReply(last).head.find("\r\nconnection: close\r\n"),
            std::string::npos)
      << last;
  EXPECT_EQ(last.find("HTTP/1.1", 1), std::string::npos) << last;
  EXPECT_EQ(HttpRequest("GET", Url("/counter/cc/value")).body, "2");
}

TEST_F(HttpServerTest, AHalfClosedClientGetsItsSynchronousReplies) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(Post("/counter/half", "4") + Get("/counter/half/value")));
  c.ShutdownWrite();
  ExpectReplies(&c, {{204, ""}, {200, "4"}});
  bool closed = false;
  EXPECT_EQ(c.ReadUntilClosed(20000, &closed), "");
  EXPECT_TRUE(closed);

  // HTTP/1.0 the way `printf ... | nc -N` sends it.
  RawConnection old(server_->port());
  ASSERT_TRUE(old.connected());
  ASSERT_TRUE(old.Send("GET /ping HTTP/1.0\r\n\r\n"));
  old.ShutdownWrite();
  const std::string reply = old.ReadUntilClosed(20000, &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(SplitReply(reply).status, 200) << reply;
  EXPECT_EQ(SplitReply(reply).body, "{\"status\":\"OK\"}") << reply;
}

TEST_F(HttpServerTest, AHalfClosedClientGetsRepliesAnsweredLater) {
  test::GatedClusterView cluster;
  UseDurableStoreAndCluster(&cluster);
  ASSERT_EQ(HttpRequest("POST", Url("/counter/h"), "3").status, 204);
  RawConnection c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(Post("/counter/h", "1") +
                     Get("/counter/h/consistent_value") +
                     Post("/counter/h", "1")));
  c.ShutdownWrite();
  cluster.WaitForWaiters(1);
  // Let the server see the end of the input while the read is held.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  cluster.Open();
  ExpectReplies(&c, {{204, ""}, {200, "*"}, {204, ""}});
  bool closed = false;
  EXPECT_EQ(c.ReadUntilClosed(20000, &closed), "");
  EXPECT_TRUE(closed);
  EXPECT_EQ(HttpRequest("GET", Url("/counter/h/value")).body, "5");
  server_.reset();
  api_.reset();  // before `cluster` goes away
}

TEST_F(HttpServerTest, AHalfClosedClientGetsRepliesBeyondTheInFlightBound) {
  test::GatedClusterView cluster;
  UseDurableStoreAndCluster(&cluster, /*durable=*/false);
  std::string batch = Get("/counter/hb/consistent_value");
  for (int i = 0; i < 99; ++i) batch += Post("/counter/hb", "1");
  RawConnection c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(batch));
  c.ShutdownWrite();
  cluster.WaitForWaiters(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  cluster.Open();
  std::vector<Expected> expected = {{200, "*"}};
  for (int i = 0; i < 99; ++i) expected.push_back({204, ""});
  ExpectReplies(&c, expected);
  bool closed = false;
  EXPECT_EQ(c.ReadUntilClosed(20000, &closed), "");
  EXPECT_TRUE(closed);
  EXPECT_EQ(HttpRequest("GET", Url("/counter/hb/value")).body, "99");
  server_.reset();
  api_.reset();  // before `cluster` goes away
}

TEST_F(HttpServerTest, RepliesCarryOurHeadersInOrder) {
  // The order the README shows (and Pistache used to send).
  RawConnection c(server_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(Get("/ping")));
  const RawReply r = SplitReply(c.ReadReply(20000));
  EXPECT_EQ(r.head,
            "http/1.1 200 ok\r\ncontent-type: application/json\r\n"
            "x-sfn-crc32: " +
                std::to_string(Crc32("{\"status\":\"OK\"}")) +
                "\r\nconnection: keep-alive\r\ncontent-length: 15\r\n");
}

// The gauge of open client connections of a server given `metrics`.
int64_t OpenConnections(Metrics* metrics) {
  return metrics->Gauge("dist_counter_http_connections")->load();
}

TEST_F(HttpServerTest, ANonReadingClientIsHeldToItsReplyBudget) {
  const size_t budget = 256 << 10;
  HttpServerOptions options = LoopbackOptions();
  options.connection_reply_bytes = budget;
  StartServerWithLargePages(options);
  const std::string list = MakeLongNamedCounters(1000);  // about 190 KB
  // 32 rounds of a list, an increment and a read: 6 MB of replies, far
  // more than the socket's buffers hold while the client reads nothing.
  std::string batch;
  std::vector<Expected> expected;
  AppendListRounds(kListPath, list, 32, &batch, &expected);
  RawConnection c(server_->port(), /*receive_buffer=*/4096);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(batch));
  // The server fills the socket, queues up to the budget, then stops.
  ASSERT_TRUE(test::WaitUntil(
      [&] { return server_->TEST_QueuedReplyBytes() >= budget; }));
  // Another client is answered meanwhile.
  const HttpResponse ping = HttpRequest("GET", Url("/ping"));
  EXPECT_EQ(ping.status, 200) << ping.error;
  // Requests stopped being taken: what is queued stays within the budget
  // and the reply that crossed it (a margin of one more reply).
  EXPECT_LE(server_->TEST_PeakQueuedReplyBytes(), budget + 2 * list.size());
  ExpectReplies(&c, expected);
  EXPECT_EQ(HttpRequest("GET", Url("/counter/z/value")).body, "32");
  EXPECT_TRUE(
      test::WaitUntil([&] { return server_->TEST_QueuedReplyBytes() == 0; }));
}

TEST_F(HttpServerTest, NonReadingClientsAreHeldToTheTotalReplyBudget) {
  const size_t total = 512 << 10;
  HttpServerOptions options = LoopbackOptions();
  options.connection_reply_bytes = 64 << 20;  // only the total binds
  options.total_reply_bytes = total;
  StartServerWithLargePages(options);
  const std::string list = MakeLongNamedCounters(1000);
  std::string batch;
  for (int i = 0; i < 16; ++i) batch += Get(kListPath);
  std::vector<std::unique_ptr<RawConnection>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<RawConnection>(server_->port(), 4096));
    ASSERT_TRUE(clients.back()->connected());
    ASSERT_TRUE(clients.back()->Send(batch));
  }
  ASSERT_TRUE(test::WaitUntil(
      [&] { return server_->TEST_QueuedReplyBytes() >= total; }));
  const HttpResponse ping = HttpRequest("GET", Url("/ping"));
  EXPECT_EQ(ping.status, 200) << ping.error;
  // The total, plus at most one reply per connection (each may go on while
  // it has nothing queued) and the one that crossed the total.
  EXPECT_LE(server_->TEST_PeakQueuedReplyBytes(),
            total + (clients.size() + 1) * list.size());
  for (const auto& c : clients) {
    ExpectReplies(c.get(), std::vector<Expected>(16, {200, list}));
  }
  EXPECT_TRUE(
      test::WaitUntil([&] { return server_->TEST_QueuedReplyBytes() == 0; }));
}

TEST_F(HttpServerTest, AClientThatReadsNothingIsClosedAfterTheWriteTimeout) {
  HttpServerOptions options = LoopbackOptions();
  options.write_timeout_ms = 300;
  options.metrics = &metrics_;
  StartServerWithLargePages(options);
  const std::string list = MakeLongNamedCounters(1000);
  std::string batch;
  for (int i = 0; i < 16; ++i) batch += Get(kListPath);
  RawConnection c(server_->port(), /*receive_buffer=*/4096);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(batch));
  ASSERT_TRUE(
      test::WaitUntil([&] { return server_->TEST_QueuedReplyBytes() > 0; }));
  // Closed, and its replies dropped.
  EXPECT_TRUE(test::WaitUntil([&] {
    return OpenConnections(&metrics_) == 0 &&
           server_->TEST_QueuedReplyBytes() == 0;
  }));
  bool closed = false;
  const std::string got = c.ReadUntilClosed(20000, &closed);
  EXPECT_TRUE(closed);
  EXPECT_LT(got.size(), 16 * list.size());
  // A client that reads is served as before.
  EXPECT_EQ(HttpRequest("GET", Url(kListPath)).body, list);
}

TEST_F(HttpServerTest, AHalfClosedSlowReaderGetsTenMegabytesThenEof) {
  HttpServerOptions options = LoopbackOptions();
  // Shorter than the whole read: only time without progress counts.
  options.write_timeout_ms = 1000;
  StartServerWithLargePages(options);
  const std::string list = MakeLongNamedCounters(1000);  // about 190 KB
  std::string batch;
  std::string want;
  for (int i = 0; i < 52; ++i) {
    batch += Get(kListPath);
    want += list;
  }
  ASSERT_GT(want.size(), 10u * 1000 * 1000);
  RawConnection c(server_->port(), /*receive_buffer=*/4096);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(batch));
  c.ShutdownWrite();
  c.set_read_pause_us(500);
  std::string bodies;
  for (int i = 0; i < 52; ++i) {
    const RawReply r = SplitReply(c.ReadReply(60000));
    ASSERT_EQ(r.status, 200) << "reply " << i;
    bodies += r.body;
  }
  EXPECT_TRUE(bodies == want) << bodies.size() << " of " << want.size();
  bool closed = false;
  EXPECT_EQ(c.ReadUntilClosed(20000, &closed), "");
  EXPECT_TRUE(closed);
}

}  // namespace
}  // namespace dist_counter
